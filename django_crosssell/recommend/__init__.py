"""The recommendation service: the only place with recommendation queries.

Template tags, the REST API and the admin call these functions; see :mod:`.service` for the
query budget and caching.
"""

from .service import (
    downgrade_for,
    format_price,
    product_key,
    recommend_for_cart,
    recommend_for_product,
    tier_offers,
    upgrade_for,
)
from .types import (
    BOUGHT_TOGETHER,
    CURATED,
    DOWNGRADE,
    FALLBACK,
    SOURCES,
    UPGRADE,
    Recommendation,
    TierOffer,
)

__all__ = [
    "BOUGHT_TOGETHER",
    "CURATED",
    "DOWNGRADE",
    "FALLBACK",
    "SOURCES",
    "UPGRADE",
    "Recommendation",
    "TierOffer",
    "downgrade_for",
    "format_price",
    "product_key",
    "recommend_for_cart",
    "recommend_for_product",
    "tier_offers",
    "upgrade_for",
]
