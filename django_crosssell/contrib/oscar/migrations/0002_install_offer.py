"""Install the site offer through which Oscar charges django-crosssell's bundle discounts.

A data migration so that ``migrate`` is the whole setup; ``manage.py
crosssell_oscar_install_offer`` repairs it later. Reversing removes the offer.
"""

from django.db import migrations


def install(apps, schema_editor):
    from django_crosssell.contrib.oscar.offers import install_offer

    install_offer(
        apps.get_model("offer", "ConditionalOffer"),
        apps.get_model("offer", "Condition"),
        apps.get_model("offer", "Benefit"),
    )


def uninstall(apps, schema_editor):
    from django_crosssell.contrib.oscar.offers import OFFER_SLUG

    offer = apps.get_model("offer", "ConditionalOffer").objects.filter(slug=OFFER_SLUG).first()
    if offer is not None:
        condition, benefit = offer.condition, offer.benefit
        offer.delete()
        condition.delete()
        benefit.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crosssell_oscar", "0001_initial"),
        ("offer", "0013_range_excluded_categories"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
