"""Price formatting for widgets; hosts replace it with ``CROSSSELL['PRICE_FORMATTER']``."""

from decimal import Decimal

from django.utils.formats import number_format


def format_price(amount: Decimal | int | float | None) -> str:
    if amount is None:
        return ""
    return number_format(amount, decimal_pos=None, use_l10n=True, force_grouping=True)
