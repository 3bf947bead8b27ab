"""``{% load shop_extras %}``: presentation helpers of the example shop's templates."""

from __future__ import annotations

from django import template

from example_shop.shop.formatting import yen as _yen

register = template.Library()


@register.filter
def yen(amount: int | float | None) -> str:
    """Prices through the same formatter the crosssell widgets use, so both read alike."""
    if amount in (None, ""):
        return ""
    return _yen(amount)


@register.filter
def product_image(product) -> str:
    """The product's image, the same one its recommendation cards show (the adapter's)."""
    from django_crosssell.adapter import get_adapter

    return get_adapter().image_url(product)
