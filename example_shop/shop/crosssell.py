"""The example shop's django-crosssell adapter: images, add-to-cart and bundle pages.

Prices, availability and categories come from the settings (the default adapter); what the
settings cannot say (where a card's button posts, which image a product has) is here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.templatetags.static import static
from django.urls import reverse

from django_crosssell.adapter import CrossSellAdapter

from .placeholders import STATIC_DIR


@lru_cache(maxsize=1)
def _shipped_images() -> frozenset[str]:
    """Slugs with a placeholder image (read once: the files ship with the code)."""
    return frozenset(path.stem for path in STATIC_DIR.glob("*.svg"))


class ShopAdapter(CrossSellAdapter):
    def image_url(self, product: Any) -> str:
        slug = product.slug if product.slug in _shipped_images() else "placeholder"
        return static(f"shop/products/{slug}.svg")

    def add_to_cart_url(self, product: Any) -> str:
        return reverse("shop:cart_add", args=[product.pk])

    def add_many_to_cart_url(self) -> str:
        return reverse("shop:cart_add_many")

    def bundle_url(self, rule: Any) -> str:
        return reverse("shop:bundle", args=[rule.slug])
