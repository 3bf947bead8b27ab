"""What a product page will show: each widget's items with their source and reason.

For the admin ("what will this product page show?"): it calls the same services the
template tags call (:func:`~.service.recommend_for_product`, :func:`~.tiers.tier_offers`,
``bundles.offers_for_product``) with the same arguments as the default tags, so staff see
what customers see, price band and availability included, and no query of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext, gettext_lazy

from .. import bundles
from ..products import product_key
from .service import recommend_for_product
from .tiers import tier_offers
from .types import BOUGHT_TOGETHER, CURATED, DOWNGRADE, FALLBACK, UPGRADE

#: How the admin names each ``Recommendation.source``.
SOURCE_LABELS = {
    CURATED: gettext_lazy("staff link"),
    BOUGHT_TOGETHER: gettext_lazy("bought together"),
    FALLBACK: gettext_lazy("bestseller"),
    UPGRADE: gettext_lazy("next tier up"),
    DOWNGRADE: gettext_lazy("next tier down"),
}

#: Partners "frequently bought together" shows (the tag's ``TOGETHER_PARTNERS``).
TOGETHER_PARTNERS = 2


@dataclass
class PreviewItem:
    product: Any
    source: str
    reason: str

    @property
    def source_label(self) -> str:
        return str(SOURCE_LABELS.get(self.source, self.source))


@dataclass
class WidgetPreview:
    tag: str
    title: str
    items: list[PreviewItem] = field(default_factory=list)
    note: str = ""


def product_page(product: Any) -> list[WidgetPreview]:
    """The widgets of a product page in the example shop's order, empty ones included."""
    also = recommend_for_product(product)
    offers = tier_offers(product)
    skip = {product_key(o.product) for o in offers.values() if o is not None}
    together = [
        rec
        for rec in recommend_for_product(product, kind="cross_sell", limit=TOGETHER_PARTNERS + 2)
        if rec.source != FALLBACK and product_key(rec.product) not in skip
    ][:TOGETHER_PARTNERS]
    widgets = [
        WidgetPreview(
            "frequently_bought_together",
            gettext("Frequently bought together"),
            [PreviewItem(rec.product, rec.source, rec.reason) for rec in together],
        ),
        WidgetPreview(
            "also_recommended",
            gettext("You may also like"),
            [PreviewItem(rec.product, rec.source, rec.reason) for rec in also],
        ),
    ]
    for direction, tag, title in (
        (UPGRADE, "upgrade_prompt", gettext("The next model up")),
        (DOWNGRADE, "downgrade_offer", gettext("A lower-priced model")),
    ):
        offer = offers[direction]
        items = [PreviewItem(offer.product, direction, offer.reason)] if offer else []
        widgets.append(WidgetPreview(tag, title, items))
    bundle_items = [
        PreviewItem(offer.product, offer.rule.get_kind_display(), offer.message)
        for offer in bundles.offers_for_product(product)
    ]
    widgets.append(WidgetPreview("bundle_offers", gettext("Bundle offers"), bundle_items))
    return widgets
