"""The recommendation service: the only place with recommendation queries.

Template tags, the REST API and the admin call these functions. :mod:`.queries` holds the
queries and their budget, :mod:`.caching` the cached results, :mod:`.service` products and
carts, :mod:`.tiers` upsell and downsell.
"""

from .personal import buy_again, recommend_for_customer
from .service import recommend_for_cart, recommend_for_product
from .tiers import downgrade_for, tier_offers, upgrade_for
from .types import (
    BOUGHT_TOGETHER,
    BUY_AGAIN,
    CURATED,
    DOWNGRADE,
    FALLBACK,
    FOR_YOU,
    SIMILAR,
    SOURCES,
    UPGRADE,
    Recommendation,
    TierOffer,
)

__all__ = [
    "BOUGHT_TOGETHER",
    "BUY_AGAIN",
    "CURATED",
    "DOWNGRADE",
    "FALLBACK",
    "FOR_YOU",
    "SIMILAR",
    "SOURCES",
    "UPGRADE",
    "Recommendation",
    "TierOffer",
    "buy_again",
    "downgrade_for",
    "recommend_for_cart",
    "recommend_for_customer",
    "recommend_for_product",
    "tier_offers",
    "upgrade_for",
]
