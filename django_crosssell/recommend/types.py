"""Result types of the recommendation service.

They are frozen dataclasses holding plain values and the product instance, so a list of them
pickles into the cache as it is and every caller (template tags, REST API, admin) reads the
same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: Values of :attr:`Recommendation.source`.
CURATED = "curated"
BOUGHT_TOGETHER = "bought_together"
FALLBACK = "fallback"
UPGRADE = "upgrade"
DOWNGRADE = "downgrade"
#: Content neighbours of a product without co-purchase partners (cold start).
SIMILAR = "similar"
FOR_YOU = "for_you"
BUY_AGAIN = "buy_again"
SOURCES = (CURATED, BOUGHT_TOGETHER, FALLBACK, UPGRADE, DOWNGRADE, SIMILAR, FOR_YOU, BUY_AGAIN)


@dataclass(frozen=True)
class Recommendation:
    """One recommended product with why it is shown.

    ``score`` is on the scale of its ``source``: 1.0 for curated links, the affinity score for
    ``bought_together`` (summed over the cart for a cart), the name similarity (0-1, times
    the category boost) for ``similar``, the number of orders for ``fallback`` bestsellers,
    and the price ratio for tier offers. ``position`` starts at 1.
    """

    product: Any
    score: float
    source: str
    reason: str
    position: int


@dataclass(frozen=True)
class TierOffer:
    """The next tier up (``direction="upgrade"``) or down (``"downgrade"``) on a ladder.

    ``price_difference`` is what the upgrade costs more, or what the downgrade saves: positive
    in both directions, so templates never print a minus sign.
    """

    product: Any
    label: str
    pitch: str
    rank: int
    ladder: str
    ladder_slug: str
    price: Decimal
    current_price: Decimal
    price_difference: Decimal
    direction: str
    reason: str

    def as_recommendation(self, position: int = 1) -> Recommendation:
        """The offer in the shape of the other recommendations (for custom markup and APIs)."""
        ratio = float(self.price / self.current_price) if self.current_price else 0.0
        return Recommendation(
            product=self.product,
            score=ratio,
            source=self.direction,
            reason=self.reason,
            position=position,
        )
