"""A real browser: product page -> recommendation click -> add to cart -> checkout, and the
order is attributed to the serve and position that was clicked; the dashboard shows it.
Staff and crawlers browsing the same page are not counted.

Playwright drives Debian's chromium with a desktop Chrome user agent (headless Chromium
announces itself as ``HeadlessChrome``, which the crawler list rightly excludes).
"""

from __future__ import annotations

import re

import pytest

from django_crosssell.models import Event, OrderAttribution, OrderRecord, Serve
from example_shop.tests.test_browser import coffee_shop  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture
def browser(chromium):  # the fixture of example_shop/tests/browser.py (conftest)
    return chromium


def context(browser, agent=DESKTOP):
    return browser.new_context(
        viewport={"width": 1200, "height": 900}, locale="ja-JP", user_agent=agent
    )


def test_a_recommendation_click_is_attributed_in_the_browser(
    live_server,
    coffee_shop,  # noqa: F811  (the fixture imported above)
    browser,
    django_user_model,
):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.jp", "pw-boss")
    by_pk = {product.pk: product for product in coffee_shop.values()}
    shopper = context(browser)
    page = shopper.new_page()
    page.goto(live_server.url + coffee_shop["blend"].get_absolute_url())
    widget = page.locator('[data-crosssell-widget="also_recommended"]')
    widget.get_by_role("heading", name="こちらもおすすめ").wait_for()
    serve_id = widget.get_attribute("data-crosssell-serve")
    assert serve_id and re.fullmatch(r"[0-9a-f]{32}", serve_id)

    second = widget.locator("[data-crosssell-item]").nth(1)
    key = second.get_attribute("data-crosssell-item")
    position = second.get_attribute("data-crosssell-position")
    clicked = by_pk[int(key)]
    second.locator("a").first.click()
    page.wait_for_url(re.compile(re.escape(clicked.get_absolute_url()) + r"\?cs="))
    page.get_by_role("button", name="カートに入れる", exact=True).click()
    page.wait_for_url(re.compile(r"/cart/$"))
    page.get_by_role("link", name="レジに進む").click()
    page.get_by_role("button", name=re.compile("注文を確定")).click()
    page.wait_for_url(re.compile(r"/checkout/complete/$"))
    shopper.close()

    # a crawler and a member of staff see the same page: nothing is counted for them
    bot = context(browser, GOOGLEBOT)
    bot.new_page().goto(live_server.url + coffee_shop["blend"].get_absolute_url())
    bot.close()
    staff = context(browser)
    staff_page = staff.new_page()
    staff_page.goto(live_server.url + "/admin/login/?next=/admin/django_crosssell/dailyrollup/")
    staff_page.fill("#id_username", "boss")
    staff_page.fill("#id_password", "pw-boss")
    staff_page.click("input[type=submit]")
    staff_page.wait_for_url(re.compile(r"/admin/django_crosssell/dailyrollup/$"))
    html = staff_page.content()
    staff_page.goto(live_server.url + coffee_shop["blend"].get_absolute_url())
    staff.close()

    assert admin.is_staff
    serve = Serve.objects.get(pk=serve_id)
    click = Event.objects.get(type="click")
    assert (click.serve_id, click.position, click.product) == (serve.pk, int(position), key)
    assert Event.objects.filter(type="add_to_cart", serve=serve).exists()
    direct = OrderAttribution.objects.get(kind="direct")
    assert (direct.serve_id, direct.position, direct.product) == (serve.pk, int(position), key)
    assert direct.revenue == clicked.price and direct.same_session
    assert OrderRecord.objects.count() == 1
    # only the shopper's pages were served: the product page and the clicked product's page
    assert Serve.objects.filter(placement="also_recommended").count() == 2
    # the dashboard (opened by staff after the order) shows the attributed revenue
    assert "クロスセルの成果" in html
    revenue = f"{clicked.price}"
    assert re.search(r"<td>\s*" + re.escape(revenue) + r"(\.0+)?\s*</td>", html), revenue
