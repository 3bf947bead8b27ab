"""From seeing to buying, in a real browser at desktop and phone widths (issue 16).

A customer adds a recommended product from its card, everything "frequently bought
together" in one action and a fixed set as a bundle, and the cart holds exactly those
units with the set's discount. Everything works without JavaScript (the forms post and
redirect back); the test runs with it and also checks that the total follows the boxes.
Screenshots of the product and cart pages at both widths go to ``docs/``.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from django_crosssell.models import BundleItem, BundleRule, TierLadder, TierStep
from django_crosssell.recompute import run_recompute
from example_shop.shop.models import Category, Product
from example_shop.tests.browser import DOCS, open_page
from example_shop.tests.helpers import place_orders

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=[1280, 390], ids=["desktop", "phone"])
def width(request) -> int:
    return request.param


@pytest.fixture
def browser_page(chromium, width):
    yield from open_page(chromium, width, is_mobile=width < 500, has_touch=width < 500)


@pytest.fixture
def coffee_shop() -> dict[str, Product]:
    """A coffee corner from the demo catalogue (its slugs, so the shipped images show), with
    orders that really go together, a ladder, and a recompute."""
    coffee = Category.objects.create(name="コーヒー", slug="coffee", position=1)
    kitchen = Category.objects.create(name="キッチン", slug="kitchen", position=2)
    specs = {
        "blend": ("beans-house-blend", "ハウスブレンド 200g", coffee, 1280),
        "premium": ("beans-ethiopia", "エチオピア イルガチェフェ 200g", coffee, 1680),
        "filter": ("filter-paper-100", "ペーパーフィルター 100枚", kitchen, 380),
        "dripper": ("dripper-set", "ハンドドリップ スターターセット", kitchen, 3980),
        "mug": ("mug-hasami-indigo", "波佐見焼マグカップ 藍", kitchen, 2400),
        "kettle": ("kettle-drip", "ドリップケトル 1.0L", kitchen, 4480),
        "mill": ("mill-hand", "手挽きコーヒーミル", kitchen, 4980),
    }
    products = {
        key: Product.objects.create(
            name=name, slug=slug, category=category, price=price, stock=20, description=""
        )
        for key, (slug, name, category, price) in specs.items()
    }
    baskets = [
        (("blend", "filter"), 8),
        (("blend", "dripper", "filter"), 5),
        (("blend", "mug"), 4),
        (("blend", "mill"), 3),
        (("filter", "dripper", "kettle"), 3),
        (("dripper", "mug"), 3),
        (("premium", "filter"), 2),
    ]
    place_orders(products, baskets)
    ladder = TierLadder.objects.create(name="ブレンド", slug="blend")
    TierStep.objects.create(ladder=ladder, product=products["blend"], rank=1, label="定番")
    TierStep.objects.create(
        ladder=ladder, product=products["premium"], rank=2, label="シングルオリジン",
        pitch="華やかな香りと甘い余韻。",
    )  # fmt: skip
    run = run_recompute(min_co_count=2)
    assert run.is_current and run.pairs_written > 0
    return products


@pytest.fixture
def coffee_set(coffee_shop):
    """The set "blend + mug" for ¥3,300 instead of ¥3,680."""
    rule = BundleRule.objects.create(
        name="ブレンドとマグのセット",
        slug="blend-mug-set",
        kind=BundleRule.Kind.FIXED_SET,
        discount_type=BundleRule.DiscountType.FIXED_PRICE,
        value=Decimal("3300"),
    )
    BundleItem.objects.create(rule=rule, product=coffee_shop["blend"], quantity=1)
    BundleItem.objects.create(rule=rule, product=coffee_shop["mug"], quantity=1)
    return rule


def fits(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def cart_lines(page) -> dict[str, int]:
    """``{product name: quantity}`` read from the cart page as a customer sees it."""
    rows = page.locator(".cart-table tbody tr")
    lines = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        name = row.locator("th a").inner_text().strip()
        lines[name] = int(row.locator("input.qty-input").input_value())
    return lines


def test_add_from_a_card_all_bought_together_and_a_set(
    live_server,
    coffee_shop,
    coffee_set,
    browser_page,
    width,
):
    page = browser_page
    products = {p.pk: p for p in Product.objects.all()}
    blend = coffee_shop["blend"]
    url = live_server.url + blend.get_absolute_url()
    page.goto(url)
    assert fits(page), f"the product page scrolls sideways at {width} px"

    # 1. A recommended product, straight from its card.
    recommended = page.locator('[data-crosssell-widget="also_recommended"]')
    recommended.get_by_role("heading", name="こちらもおすすめ").wait_for()
    item = recommended.locator("[data-crosssell-item]").first
    picked = products[int(item.get_attribute("data-crosssell-item"))]
    assert item.locator("img.crosssell-card-image").is_visible()
    assert item.locator(f'a[href="{picked.get_absolute_url()}"]').count() == 1
    item.get_by_role("button", name=re.compile("カートに入れる")).click()
    page.wait_for_url(url)  # back on the page the customer was on
    assert f"「{picked.name}」をカートに追加しました。" in page.locator(".messages").inner_text()
    assert page.locator(".cart-link .badge").inner_text() == "1"

    # 2. Frequently bought together: the total follows the boxes, one button adds them all.
    together = page.locator('[data-crosssell-widget="frequently_bought_together"]')
    together.get_by_role("heading", name="よく一緒に購入されている商品").wait_for()
    boxes = together.locator('input[name="product"]')
    chosen = [products[int(value)] for value in boxes.evaluate_all("b => b.map(x => x.value)")]
    assert chosen[0] == blend and 2 <= len(chosen) <= 3
    total = together.locator("[data-crosssell-total]")
    assert total.inner_text() == f"¥{sum(p.price for p in chosen):,}"
    boxes.nth(1).uncheck()
    assert total.inner_text() == f"¥{sum(p.price for p in chosen) - chosen[1].price:,}"
    boxes.nth(1).check()
    if width == 1280:
        page.screenshot(path=str(DOCS / "product-page.png"), full_page=True)
    else:
        page.screenshot(path=str(DOCS / "product-page-phone.png"), full_page=True)
    together.get_by_role("button", name="まとめてカートに入れる").click()
    page.wait_for_url(url)
    assert f"{len(chosen)}点をカートに追加しました。" in page.locator(".messages").inner_text()

    # 3. The fixed set, as a set, at its price.
    offers = page.locator('[data-crosssell-widget="bundle_offers"]')
    offer = offers.locator('[data-crosssell-bundle="blend-mug-set"]').first
    assert "¥3,300" in offer.inner_text()
    offer.get_by_role("button", name=re.compile("セットでカートに入れる")).click()
    page.wait_for_url(url)

    # The cart holds exactly what was added, with the set's discount.
    page.goto(live_server.url + "/cart/")
    expected: dict[str, int] = {}
    for product in [picked, *chosen, blend, coffee_shop["mug"]]:
        expected[product.name] = expected.get(product.name, 0) + 1
    assert cart_lines(page) == expected
    subtotal = sum(
        quantity * next(p.price for p in products.values() if p.name == name)
        for name, quantity in expected.items()
    )
    discount = coffee_shop["blend"].price + coffee_shop["mug"].price - 3300
    totals = page.locator(".cart-summary .totals").inner_text()
    assert "ブレンドとマグのセット" in totals and f"−¥{discount:,}" in totals
    assert f"¥{subtotal - discount:,}" in page.locator(".totals dd.grand-total").inner_text()
    assert "割引\n¥0" not in totals
    assert fits(page), f"the cart page scrolls sideways at {width} px"
    name = "cart-page.png" if width == 1280 else "cart-page-phone.png"
    page.screenshot(path=str(DOCS / name), full_page=True)
