"""The demo shop's follow-up mail: two flows and replenishment profiles for consumables.

``seed_demo`` calls :func:`seed_followup`; it is idempotent (flows by slug, profiles per
product), so re-seeding keeps what staff changed in the admin.
"""

from __future__ import annotations

from django_crosssell.followup.consent import ConsentText
from django_crosssell.models import FollowUpFlow, ReplenishmentProfile

#: The wording next to the checkout checkbox; its version and hash go into the ledger.
CHECKOUT_CONSENT = ConsentText(
    "checkout-2026-12",
    "ご購入商品に合うおすすめや、消耗品の買い替え時期のお知らせをメールで受け取る"
    "（いつでも配信停止できます）",
)

#: Days one unit lasts, as the shop's staff know it (a 200 g bag of beans, 100 filters...).
STAFF_INTERVALS = {
    "beans-": 20,
    "filter-paper-": 50,
    "tea-sencha": 30,
    "tea-hojicha": 30,
    "tea-genmaicha": 40,
    "tea-matcha": 30,
}


def seed_followup(products: dict) -> tuple[int, int]:
    """Create the demo's flows and replenishment profiles; returns (flows, profiles)."""
    flows = [
        FollowUpFlow.objects.get_or_create(
            slug="after-payment",
            defaults={
                "name": "購入後のおすすめ（支払いから14日後）",
                "kind": FollowUpFlow.Kind.FOLLOW_UP,
                "trigger": FollowUpFlow.Trigger.PAID,
                "purpose": "cross_sell",
            },
        )[0],
        FollowUpFlow.objects.get_or_create(
            slug="restock",
            defaults={
                "name": "買い替え時期のお知らせ",
                "kind": FollowUpFlow.Kind.REPLENISHMENT,
                "trigger": FollowUpFlow.Trigger.PAID,
                "purpose": "replenishment",
            },
        )[0],
    ]
    profiles = 0
    for slug, product in products.items():
        days = next((d for prefix, d in STAFF_INTERVALS.items() if slug.startswith(prefix)), None)
        if days is None:
            continue
        _, created = ReplenishmentProfile.objects.get_or_create(
            product=product, defaults={"staff_interval_days": days}
        )
        profiles += created
    return len(flows), profiles
