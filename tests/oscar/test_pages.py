"""Oscar's own product and basket pages with the README's template overrides
(tests/oscar/templates): settings and template tags only, no other host code."""

import re
from decimal import Decimal

import pytest
from django.template import Context, Template

from django_crosssell import models as cs
from tests.oscar import shop as builders

pytestmark = pytest.mark.django_db


def card_ids(html):
    return [int(pk) for pk in re.findall(r'data-crosssell-product="(\d+)"', html)]


@pytest.fixture
def linked(shop):
    """Staff links from the T-shirt and the jeans, and a "T-shirt + jeans 10% off" set."""
    cs.ProductRelation.objects.create(source=shop.shirt, target=shop.jeans, position=1)
    cs.ProductRelation.objects.create(source=shop.shirt, target=shop.mug, position=2)
    cs.ProductRelation.objects.create(source=shop.jeans, target=shop.socks, position=1)
    rule = cs.BundleRule.objects.create(
        name="T-shirt and jeans", slug="shirt-jeans", kind="fixed_set",
        discount_type="percent", value=Decimal("10"),
    )  # fmt: skip
    cs.BundleItem.objects.create(rule=rule, product=shop.shirt, quantity=1)
    cs.BundleItem.objects.create(rule=rule, product=shop.jeans, quantity=1)
    return shop


@pytest.mark.parametrize("page", ["shirt", "medium"])
def test_the_product_page_of_a_parent_and_of_a_child(client, linked, page):
    product = getattr(linked, page)
    response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    section = html.split('data-crosssell-widget="also_recommended"', 1)[1]
    assert card_ids(section) == [linked.jeans.pk, linked.mug.pk]
    assert '<article class="product_pod crosssell-card"' in section
    assert "£49.99" in section and "£8.25" in section
    # The card's add-to-basket form posts to Oscar's basket:add with this visitor's token,
    # filled in per request (cached markup holds only a placeholder).
    assert "__crosssell_csrf_token__" not in section
    assert f'action="/basket/add/{linked.jeans.pk}/"' in section
    # A variant's page offers its parent's sets (at Oscar's "from" price of the parent).
    offers = html.split('data-crosssell-widget="bundle_offers"', 1)[1].split("</section>")[0]
    assert "Jeans" in offers and "£6.40" in offers  # 10% of 14.00 + 49.99


def test_a_card_adds_to_oscars_basket_with_csrf_enforced(linked):
    from django.test import Client

    for visitor in (Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)):
        html = visitor.get(linked.shirt.get_absolute_url()).content.decode()
        section = html.split('data-crosssell-widget="also_recommended"', 1)[1]
        form = re.search(
            rf'<form[^>]*action="/basket/add/{linked.jeans.pk}/".*?</form>', section, re.S
        ).group(0)
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form))
        assert fields["quantity"] == "1" and fields["csrfmiddlewaretoken"]
        response = visitor.post(f"/basket/add/{linked.jeans.pk}/", fields)
        assert response.status_code == 302
        basket = visitor.get("/basket/").context["basket"]
        assert [line.product for line in basket.all_lines()] == [linked.jeans]


def test_the_basket_page_shows_what_oscar_charges(client, linked):
    # Oscar's own add-to-basket views: a size of the T-shirt, and the jeans.
    for product in (linked.medium, linked.jeans):
        response = client.post(f"/basket/add/{product.pk}/", {"quantity": 1})
        assert response.status_code == 302
    response = client.get("/basket/")
    assert response.status_code == 200
    html = response.content.decode()
    progress = html.split('data-crosssell-widget="bundle_progress"', 1)[1].split("</section>")[0]
    assert "T-shirt and jeans" in progress and "−£6.25" in progress
    basket = response.context["basket"]
    assert basket.total_discount == Decimal("6.25")
    assert basket.total_incl_tax == Decimal("56.24")
    assert "£56.24" in html  # Oscar's basket totals
    together = html.split('data-crosssell-widget="bought_together"', 1)[1]
    assert linked.socks.pk in card_ids(together)
    assert not {linked.shirt.pk, linked.small.pk, linked.large.pk} & set(card_ids(together))


def test_a_card_override_can_use_oscars_render_product(linked):
    """The request is in the widget's context, so Oscar's own tags work in a card."""
    request = builders.request()
    request.session = {}
    request.basket = builders.basket()  # what Oscar's middleware gives every request
    html = Template(
        "{% load crosssell %}"
        '{% also_recommended product template="render_product/recommendations.html" %}'
    ).render(Context({"product": linked.shirt, "request": request}))
    assert card_ids(html) == [linked.jeans.pk, linked.mug.pk]
    assert html.count('class="product_pod"') == 2  # Oscar's partial, priced by Oscar
    assert "£49.99" in html and "Add to basket" in html
