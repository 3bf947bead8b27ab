"""Amounts of money: the one place that rounds, formats and serialises them.

Every amount the app shows (cards, tier prompts, bundle offers and progress, the admin
preview) or sends (the API) goes through here, so a price is the same string everywhere on
one site. Amounts are rounded to the shop's currency first (``CURRENCY_DECIMALS``, with
``ROUNDING``): a yen price stored as 6500.50 shows as 6,501 on a card and in a bundle, and
the API sends "6501" with the same text in its ``*_display`` field.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import app_settings

ZERO = Decimal(0)


def quantum() -> Decimal:
    """The smallest unit of the shop's currency (1 for yen, 0.01 for euro)."""
    return Decimal(1).scaleb(-int(app_settings.CURRENCY_DECIMALS))


def rounding_mode() -> str:
    mode = app_settings.ROUNDING
    if not isinstance(mode, str) or not mode.startswith("ROUND_") or not hasattr(decimal, mode):
        raise ImproperlyConfigured(
            f"CROSSSELL['ROUNDING'] must name a rounding mode of the decimal module, not {mode!r}."
        )
    return str(getattr(decimal, mode))


def to_decimal(value: Any) -> Decimal:
    """``value`` as a Decimal; floats through their shortest repr (0.1 stays 0.1)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, bool):
        raise TypeError("A boolean is not an amount of money.")
    return Decimal(value)


def round_money(amount: Any) -> Decimal:
    """``amount`` rounded to the shop's currency."""
    return to_decimal(amount).quantize(quantum(), rounding=rounding_mode())


@lru_cache(maxsize=8)
def _formatter(path: str) -> Any:
    return import_string(path)


def format_money(amount: Any) -> str:
    """An amount for people, rounded to the currency, through ``PRICE_FORMATTER``.

    ``None`` (a product without a price) formats as an empty string.
    """
    if amount is None:
        return ""
    return str(_formatter(app_settings.PRICE_FORMATTER)(round_money(amount)))


def money_string(amount: Any) -> str | None:
    """An amount for machines (the API): the rounded decimal as a string, exact in JSON."""
    if amount is None:
        return None
    return str(round_money(amount))


def format_percent(value: Any) -> str:
    """A percentage without trailing zeros: 10, 12.5."""
    return format(to_decimal(value).normalize(), "f")
