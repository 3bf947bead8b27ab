"""A real browser walks the example shop: recommendations, a click, the cart widget.

Playwright drives Debian's chromium (never a downloaded browser) against pytest-django's
``live_server``. The catalogue and orders are seeded here and the real affinity recompute
runs, so the widgets show what the engine found. The README's screenshots come from
``test_browser_buying.py``.
"""

from __future__ import annotations

import re

import pytest

from django_crosssell.models import TierLadder, TierStep
from django_crosssell.recompute import run_recompute
from example_shop.shop.models import Category, Product
from example_shop.tests.browser import DOCS, open_page
from example_shop.tests.helpers import place_orders

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(chromium):
    yield from open_page(chromium, 1200)


@pytest.fixture
def coffee_shop() -> dict[str, Product]:
    """A small coffee corner with orders that really go together, then a recompute."""
    coffee = Category.objects.create(name="コーヒー", slug="coffee", position=1)
    kitchen = Category.objects.create(name="キッチン用品", slug="kitchen", position=2)
    specs = {
        "blend": ("ハウスブレンド 200g", coffee, 1280, "自家焙煎の定番ブレンド。"),
        "premium": ("プレミアムブレンド 200g", coffee, 1680, "希少なゲイシャ種を配合。"),
        "filter": ("コーヒーフィルター 100枚", kitchen, 380, ""),
        "dripper": ("陶器ドリッパー", kitchen, 2200, ""),
        "mug": ("波佐見焼マグカップ", kitchen, 1500, ""),
        "pitcher": ("ミルクピッチャー", kitchen, 1800, ""),
        "canister": ("保存キャニスター", kitchen, 2400, ""),
    }
    products = {
        key: Product.objects.create(
            name=name, slug=key, category=category, price=price, stock=20, description=text
        )
        for key, (name, category, price, text) in specs.items()
    }
    baskets = [
        (("blend", "filter"), 8),
        (("blend", "dripper", "filter"), 5),
        (("blend", "mug"), 4),
        (("blend", "canister"), 3),
        (("filter", "dripper", "pitcher"), 3),
        (("dripper", "mug"), 3),
        (("premium", "filter"), 2),
    ]
    place_orders(products, baskets)
    ladder = TierLadder.objects.create(name="ブレンド", slug="blend")
    TierStep.objects.create(ladder=ladder, product=products["blend"], rank=1, label="ハウス")
    TierStep.objects.create(
        ladder=ladder,
        product=products["premium"],
        rank=2,
        label="プレミアム",
        pitch="華やかな香りと甘い余韻。特別な一杯に。",
    )
    run = run_recompute(min_co_count=2)
    assert run.is_current and run.pairs_written > 0
    return products


def test_recommendations_click_add_to_cart_and_the_cart_widget(live_server, coffee_shop, page):
    # The database work happens before Playwright starts (fixture order above): ORM calls
    # made while its event loop runs would open a second connection that nobody closes.
    by_pk = {product.pk: product for product in coffee_shop.values()}
    page.goto(live_server.url + coffee_shop["blend"].get_absolute_url())

    widget = page.locator('[data-crosssell-widget="also_recommended"]')
    heading = widget.get_by_role("heading", name="こちらもおすすめ")
    heading.wait_for()
    assert heading.is_visible()
    cards = widget.locator("[data-crosssell-product]")
    assert cards.count() >= 3
    assert str(coffee_shop["blend"].pk) not in cards.evaluate_all(
        "cards => cards.map(card => card.dataset.crosssellProduct)"
    )
    assert page.locator('[data-crosssell-widget="upgrade_prompt"]').is_visible()
    DOCS.mkdir(exist_ok=True)

    first = cards.first
    clicked_pk = int(first.get_attribute("data-crosssell-product"))
    clicked = by_pk[clicked_pk]
    first.locator("a").click()
    page.wait_for_url(re.compile(re.escape(clicked.get_absolute_url()) + "$"))
    assert page.get_by_role("heading", level=1).inner_text() == clicked.name

    page.locator(".purchase-box").get_by_role("button", name="カートに入れる").click()
    page.wait_for_url(re.compile(r"/cart/$"))
    assert page.locator(".cart-table").get_by_role("link", name=clicked.name).is_visible()

    together = page.locator('[data-crosssell-widget="bought_together"]')
    together.get_by_role("heading", name="よく一緒に購入されている商品").wait_for()
    shown = [
        int(pk)
        for pk in together.locator("[data-crosssell-product]").evaluate_all(
            "cards => cards.map(card => card.dataset.crosssellProduct)"
        )
    ]
    assert shown, "the cart widget shows partners of the cart"
    assert clicked_pk not in shown
