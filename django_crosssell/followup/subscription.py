"""The subscription ("定期購入") suggestion: regular repeat buyers, through the host's hook.

The app does not run subscriptions. Where a customer's repeat purchases of a product are
regular - at least ``SUBSCRIPTION_MIN_GAPS`` gaps whose coefficient of variation (standard
deviation / mean of the per-unit gaps) is at most ``SUBSCRIPTION_MAX_CV`` - it asks the
adapter's :meth:`~django_crosssell.adapter.CrossSellAdapter.subscription_offer` for a URL,
and the product page tag (``{% subscription_suggestion product %}``) and the replenishment
mail show it when there is one.

Imports ``adapter``, ``conf``, ``followup.intervals`` and ``followup.replenishment``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from django.db import models

from ..adapter import CrossSellAdapter, get_adapter
from ..conf import app_settings
from ..products import product_key
from .intervals import coefficient_of_variation, median, per_unit_gaps
from .replenishment import customer_history


@dataclass(frozen=True)
class Regularity:
    gaps: int
    days_per_unit: float
    cv: float
    #: Days between purchases at the customer's usual quantity.
    every_days: int


@dataclass(frozen=True)
class Suggestion:
    product: Any
    every_days: int
    url: str


def regularity(
    customer: Any, product: Any, *, adapter: CrossSellAdapter | None = None
) -> Regularity | None:
    """The customer's rhythm for ``product`` when it is regular enough, else None."""
    history = customer_history(customer, product_key(product), adapter=adapter)
    gaps = per_unit_gaps(history)
    if len(gaps) < int(app_settings.SUBSCRIPTION_MIN_GAPS):
        return None
    cv = coefficient_of_variation(gaps)
    days = median(gaps)
    if cv is None or days is None or cv > float(app_settings.SUBSCRIPTION_MAX_CV):
        return None
    usual = statistics.median_low([quantity for _, quantity in history]) or 1
    return Regularity(len(gaps), days, cv, max(1, round(days * usual)))


def suggestion(
    customer: Any, product: Any, *, adapter: CrossSellAdapter | None = None
) -> Suggestion | None:
    """The host's subscription offer for a regular buyer, or None."""
    adapter = adapter or get_adapter()
    found = regularity(customer, product, adapter=adapter)
    if found is None:
        return None
    if not isinstance(product, models.Model):
        product = adapter.products().filter(pk=product).first()
        if product is None:
            return None
    url = adapter.subscription_offer(customer, product, found.every_days)
    return Suggestion(product, found.every_days, str(url)) if url else None
