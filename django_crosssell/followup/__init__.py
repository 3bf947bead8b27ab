"""After the purchase: the thank-you widget, consent, follow-up and replenishment mail.

Modules (CONTRIBUTING.md lists what each may import):

* :mod:`.models` - the consent ledger, suppressions, flows, replenishment profiles and the
  outbox (imported into :mod:`django_crosssell.models`).
* :mod:`.consent` - record and read consent; suppressions; the CSV export.
* :mod:`.host` - the adapter's default answers about orders and customers.
* :mod:`.intervals` - pure interval statistics (medians, shrinkage, regularity).
* :mod:`.replenishment` - learning intervals from the orders; due dates.
* :mod:`.flows` - scheduling messages when an order is paid or delivered.
* :mod:`.audience` - the audience filter seam.
* :mod:`.measurement` - the measurement seam (serves, click links, holdout, revenue).
* :mod:`.sending` - the due scan, the send-time checks and the mail itself.
* :mod:`.unsubscribe` - signed one-click unsubscribe tokens.
* :mod:`.views`, :mod:`.urls` - the unsubscribe endpoint.
* :mod:`.subscription` - the "定期購入" suggestion through the adapter's hook.
* :mod:`.signals` - django-anymail's tracking signal, when anymail is installed.
* :mod:`.checks` - crosssell.E080... / W080...
* :mod:`.tasks` - thin Celery tasks; :mod:`.admin` - the admin.

This ``__init__`` imports nothing, so that :mod:`django_crosssell.models` can import
:mod:`.models` without loading the rest.
"""
