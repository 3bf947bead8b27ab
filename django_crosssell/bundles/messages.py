"""The sentences the bundle widgets show: nudges ("Add 1 more to get 10% off") and offers.

Translated when called (the msgids are the Japanese catalogue's; keep them identical). The
functions take the parts of a nudge or an offer rather than the objects, so this module
depends on no other bundle module.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Model
from django.utils.translation import gettext

from ..models import BundleRule
from ..money import format_money, format_percent, to_decimal

Kind = BundleRule.Kind
DiscountType = BundleRule.DiscountType


def _names(products: Iterable[Model]) -> str:
    return gettext(", ").join(str(p) for p in products)


def _what(rule: BundleRule | Any) -> dict[str, str]:
    value = to_decimal(rule.value)
    return {
        "percent": format_percent(value),
        "amount": format_money(value),
        "price": format_money(value),
    }


def nudge_message(rule: BundleRule, units: int, products: Iterable[Model], saving: Decimal) -> str:
    """What to add (``units``) and what it unlocks, in the active language; the widget lists
    ``products`` after it (kept in the signature for custom messages)."""
    params = {**_what(rule), "count": units, "saving": format_money(saving)}
    # Keyed by the choices, which are str: the model's plain ``discount_type`` string finds them.
    templates: dict[str, str]
    if rule.kind == Kind.FIXED_SET:
        # The missing items are listed (and linked) right after the sentence, so it does not
        # name them: a product name printed twice reads like a sales pitch.
        templates = {
            DiscountType.PERCENT: gettext("Complete the set for %(percent)s%% off:"),
            DiscountType.AMOUNT: gettext("Complete the set for %(amount)s off:"),
            DiscountType.FIXED_PRICE: gettext("Complete the set for the set price %(price)s:"),
        }
    else:
        templates = {
            DiscountType.PERCENT: gettext("Add %(count)d more to get %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Add %(count)d more for %(amount)s off"),
            DiscountType.FIXED_PRICE: gettext(
                "Add %(count)d more to get the bundle price %(price)s"
            ),
        }
    return str(templates[rule.discount_type]) % params


def offer_message(
    rule: BundleRule, units: int, partners: Iterable[Model], *, name_partners: bool = True
) -> str:
    """The offer of ``rule`` on a product page (with ``partners`` for a set).

    ``name_partners=False`` is the widget's headline: the widget lists the partners as links
    right under it, and a name printed twice reads like a sales pitch.
    """
    params = {**_what(rule), "count": units, "products": _names(partners)}
    templates: dict[str, str]  # keyed by the choices (str), as in nudge_message
    if rule.kind == Kind.FIXED_SET and not name_partners:
        templates = {
            DiscountType.PERCENT: gettext("With the items below: %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("With the items below: %(amount)s off"),
            DiscountType.FIXED_PRICE: gettext("With the items below: %(price)s for the set"),
        }
    elif rule.kind == Kind.FIXED_SET:
        templates = {
            DiscountType.PERCENT: gettext("Buy with %(products)s and get %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Buy with %(products)s for %(amount)s off"),
            DiscountType.FIXED_PRICE: gettext("Buy with %(products)s for %(price)s in total"),
        }
    elif rule.kind == Kind.MULTI_BUY:
        templates = {
            DiscountType.PERCENT: gettext("Buy %(count)d and get %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Buy %(count)d for %(amount)s off"),
            DiscountType.FIXED_PRICE: gettext("%(count)d for %(price)s"),
        }
    else:
        templates = {
            DiscountType.PERCENT: gettext("Any %(count)d eligible items: %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Any %(count)d eligible items: %(amount)s off"),
            DiscountType.FIXED_PRICE: gettext("Any %(count)d eligible items for %(price)s"),
        }
    return str(templates[rule.discount_type]) % params
