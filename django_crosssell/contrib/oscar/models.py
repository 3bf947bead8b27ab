"""The Oscar offer's condition and benefit: proxies of Oscar's own models.

Oscar loads a custom condition or benefit from the dotted path in its ``proxy_class``
column (``oscar.apps.offer.custom``); the site offer of :mod:`.offers` points at these two.
Both delegate to :mod:`.offers`, which asks ``bundles.evaluate``: the offer holds no rule
and no amount of its own. No tables: proxies only (migration 0001), plus the data migration
that installs the offer (0002).
"""

from typing import Any

from oscar.core.loading import get_model

from . import offers

# Through Oscar's loader, so a shop that forked the offer app gets its own models.
Benefit: Any = get_model("offer", "Benefit")
Condition: Any = get_model("offer", "Condition")


class BundleCondition(Condition):
    """Met when the basket earns a bundle discount under the current bundle rules."""

    name = "The basket earns a bundle discount (django-crosssell bundle rules)"
    description = name

    class Meta:
        proxy = True
        verbose_name = "django-crosssell bundle condition"
        verbose_name_plural = "django-crosssell bundle conditions"

    def is_satisfied(self, offer: Any, basket: Any) -> bool:
        evaluation, _lines = offers.evaluate_basket(basket, offer)
        return evaluation.total_discount > 0


class BundleBenefit(Benefit):
    """The discount ``bundles.evaluate`` gives the basket, booked on its lines."""

    name = "The bundle discounts of django-crosssell's bundle rules"
    description = name

    class Meta:
        proxy = True
        verbose_name = "django-crosssell bundle benefit"
        verbose_name_plural = "django-crosssell bundle benefits"

    def apply(self, basket: Any, condition: Any, offer: Any, **kwargs: Any) -> Any:
        return offers.apply(basket, offer)
