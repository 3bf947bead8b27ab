"""Bundle discounts charged by Oscar: one site offer that applies ``bundles.evaluate``.

Oscar charges discounts through offers: the ``Applicator`` applies every active offer to the
basket, an offer's benefit marks discounts on basket lines, and the basket total, the order
total and the order's discount lines follow from those. Bundle rules live in
django-crosssell, so one site offer, :data:`OFFER_SLUG`, whose condition and benefit are the
proxies of :mod:`.models`, hands the basket to :func:`evaluate_basket` (the adapter's
``cart_lines()`` and ``bundles.evaluate``, exactly what ``{% bundle_progress basket %}``
shows) and books the evaluation's ``total_discount`` on the lines (:func:`split`). There is no
second discount engine: Oscar is told the amount, never how to compute it.

The offer is installed by this app's migration and can be repaired with
``manage.py crosssell_oscar_install_offer``. It runs before the shop's own offers
(:data:`OFFER_PRIORITY`) and is exclusive, so its units are not discounted again by another
exclusive offer, and the basket the widget shows is the basket it evaluates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models

from django_crosssell import bundles
from django_crosssell.adapter import get_adapter
from django_crosssell.money import format_money

OFFER_SLUG = "crosssell-bundles"
OFFER_NAME = "Bundle discounts"
#: Higher runs first in Oscar; above the default 0 of the shop's own offers.
OFFER_PRIORITY = 100
BENEFIT_CLASS = "django_crosssell.contrib.oscar.models.BundleBenefit"
CONDITION_CLASS = "django_crosssell.contrib.oscar.models.BundleCondition"
ZERO = Decimal(0)


@dataclass
class BasketLine:
    """One Oscar basket line as the offer sees it: the units left for this offer."""

    line: Any
    key: Any  # canonical product key (a variant's parent)
    unit_price: Decimal
    quantity: int


def basket_lines(basket: Any, offer: Any = None) -> list[BasketLine]:
    """The basket's lines at the prices the widget uses, with the units still available
    to ``offer`` (all of them unless another offer ran first and consumed some)."""
    from .adapter import OscarAdapter

    adapter = get_adapter()
    if not isinstance(adapter, OscarAdapter):  # system check crosssell_oscar.W001 says so
        adapter = OscarAdapter()
    lines = adapter.oscar_lines(basket) or []
    canonical = adapter.canonical_ids([line.product for line in lines])
    found = []
    for line in lines:
        priced = adapter.cart_lines([line])  # one line at a time, to keep the line
        quantity = line.quantity if offer is None else line.quantity_without_offer_discount(offer)
        if priced and quantity > 0:
            key = canonical[line.product.pk]
            found.append(BasketLine(line, key, priced[0].unit_price, quantity))
    return found


def evaluate_basket(basket: Any, offer: Any = None) -> tuple[bundles.BundleEvaluation, list]:
    """``bundles.evaluate`` of the basket (the units available to ``offer``), and its lines.

    Oscar asks the condition and then the benefit; both get one evaluation, kept on the
    basket for its current offer applications and lines (a new request, or Oscar's
    ``reset_offer_applications()``, evaluates afresh).
    """
    lines = basket_lines(basket, offer)
    signature = tuple((item.line.pk, item.quantity, item.unit_price) for item in lines)
    cached = getattr(basket, "_crosssell_evaluation", None)
    if cached is not None and cached[0] is basket.offer_applications and cached[1] == signature:
        return cached[2], lines
    owner = getattr(basket, "owner", None)  # audience-restricted rules need the customer
    evaluation = bundles.evaluate(
        [bundles.CartLine(item.line.product, item.quantity, item.unit_price) for item in lines],
        user=owner if owner is not None and owner.is_authenticated else None,
    )
    basket._crosssell_evaluation = (basket.offer_applications, signature, evaluation)
    return evaluation, lines


def split(
    applied: Sequence[bundles.AppliedBundle], lines: Sequence[BasketLine]
) -> list[tuple[BasketLine, Decimal, int]]:
    """Each applied bundle's discount booked on the basket lines it covers.

    Returns ``(line, amount, units)`` per discounted line; the amounts add up exactly to the
    bundles' discounts, never exceed what a line costs, and are in the currency's units
    (they are sums and differences of prices and rounded discounts). A bundle's units are
    taken from its products' lines dearest first, as the evaluation's own bookkeeping does;
    whatever a line cannot take moves on to the bundle's other lines, then to any line.
    """
    room = [item.unit_price * item.quantity for item in lines]
    amounts = [ZERO] * len(lines)
    units = [0] * len(lines)
    order = sorted(range(len(lines)), key=lambda i: (-lines[i].unit_price, i))
    for bundle in applied:
        left = bundle.discount
        covered: list[int] = []
        for key, needed in bundle.units.items():
            for i in order:
                if needed <= 0:
                    break
                if lines[i].key != key:
                    continue
                taken = min(needed, lines[i].quantity - units[i])
                if taken <= 0:
                    continue
                needed -= taken
                units[i] += taken
                covered.append(i)
        spill = [i for i in order if lines[i].key in bundle.units and i not in covered]
        for i in [*covered, *spill, *order]:
            if left <= 0:
                break
            share = min(left, room[i])
            if share > 0:
                room[i] -= share
                amounts[i] += share
                left -= share
        if left > 0:
            raise ValueError(f"{bundle.rule} discounts more than the basket's lines cost")
    return [
        (lines[i], amounts[i], min(max(units[i], 1), lines[i].quantity))
        for i in range(len(lines))
        if amounts[i] > 0
    ]


def description(evaluation: bundles.BundleEvaluation) -> str:
    """What the offer application says it is: each bundle and its discount."""
    return "; ".join(
        f"{applied.name}: {format_money(applied.discount)}" for applied in evaluation.applied
    )


def apply(basket: Any, offer: Any) -> Any:
    """The benefit: book the evaluation's discount on the lines; Oscar's result for it."""
    from oscar.apps.offer.benefits import apply_discount
    from oscar.apps.offer.results import ZERO_DISCOUNT, BasketDiscount

    evaluation, lines = evaluate_basket(basket, offer)
    if evaluation.total_discount <= 0:
        return ZERO_DISCOUNT
    booked = ZERO
    for item, value, count in split(evaluation.applied, lines):
        apply_discount(item.line, value, count, offer, incl_tax=item.line.is_tax_known)
        booked += value
    # What the lines now carry: the evaluation's total_discount, by construction of split().
    result = BasketDiscount(booked)
    result.is_final = True  # everything is booked in one application
    result.description = description(evaluation)
    return result


def install_offer(
    offer_model: type[models.Model],
    condition_model: type[models.Model],
    benefit_model: type[models.Model],
) -> tuple[Any, bool]:
    """Create the site offer, or repair its condition and benefit; ``(offer, created)``.

    Takes the models so the data migration can pass its historical ones.
    """
    offer: Any = offer_model._default_manager.filter(slug=OFFER_SLUG).first()
    if offer is None:
        condition = condition_model._default_manager.create(proxy_class=CONDITION_CLASS)
        benefit = benefit_model._default_manager.create(proxy_class=BENEFIT_CLASS)
        offer = offer_model._default_manager.create(
            name=OFFER_NAME,
            slug=OFFER_SLUG,
            description=(
                "Charges the bundle discounts of django-crosssell's bundle rules (edit them "
                "in the Django admin). Installed by django_crosssell.contrib.oscar."
            ),
            offer_type="Site",
            status="Open",
            exclusive=True,
            priority=OFFER_PRIORITY,
            condition=condition,
            benefit=benefit,
        )
        return offer, True
    for related, path in ((offer.condition, CONDITION_CLASS), (offer.benefit, BENEFIT_CLASS)):
        if related.proxy_class != path:
            related.proxy_class = path
            related.save(update_fields=["proxy_class"])
    return offer, False
