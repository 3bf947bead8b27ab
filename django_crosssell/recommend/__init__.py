"""The recommendation service: the only place with recommendation queries.

Template tags, the REST API and the admin call these functions. :mod:`.queries` holds the
queries and their budget, :mod:`.caching` the cached results, :mod:`.service` products and
carts, :mod:`.tiers` upsell and downsell.
"""

from .service import recommend_for_cart, recommend_for_product
from .tiers import downgrade_for, tier_offers, upgrade_for
from .types import (
    BOUGHT_TOGETHER,
    CURATED,
    DOWNGRADE,
    FALLBACK,
    SIMILAR,
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
    "SIMILAR",
    "SOURCES",
    "UPGRADE",
    "Recommendation",
    "TierOffer",
    "downgrade_for",
    "recommend_for_cart",
    "recommend_for_product",
    "tier_offers",
    "upgrade_for",
]
