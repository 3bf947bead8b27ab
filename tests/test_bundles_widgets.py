"""The bundle widgets and the bundle admin (preview, duplicate action, filters)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from unittest import mock

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from django_crosssell import bundles
from django_crosssell.bundles import CartLine, offers
from django_crosssell.models import BundleRule
from django_crosssell.timeouts import overhead
from tests.factories import (
    BundleItemFactory,
    BundleRuleFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
)

pytestmark = pytest.mark.django_db

D = Decimal


def render(source: str, **context) -> str:
    return Template("{% load crosssell %}" + source).render(Context(context))


@pytest.fixture
def shirt_and_tie():
    shirt = ProductFactory(name="Shirt", price=D("5000"))
    tie = ProductFactory(name="Tie", price=D("1500"))
    rule = BundleRuleFactory(
        name="Shirt and tie",
        slug="shirt-and-tie",
        kind="fixed_set",
        discount_type="percent",
        value=D("10"),
        pitch="Office ready",
    )
    BundleItemFactory(rule=rule, product=shirt)
    BundleItemFactory(rule=rule, product=tie)
    return shirt, tie, rule


class TestBundleOffers:
    def test_lists_current_rules_with_the_saving(self, shirt_and_tie):
        shirt, tie, _rule = shirt_and_tie
        with override("ja"):
            html = render("{% bundle_offers product %}", product=shirt)
        assert "<section" in html and "<h2" in html
        assert "下の商品と一緒に買うと10%オフ" in html and html.count(">Tie<") == 1
        assert "（650引き）" in html
        assert "Office ready" in html
        assert f'href="{tie.get_absolute_url()}"' in html

    def test_renders_nothing_without_offers(self):
        assert render("{% bundle_offers product %}", product=ProductFactory()).strip() == ""

    def test_two_queries_cold_none_warm(self, shirt_and_tie, django_assert_num_queries):
        shirt, _tie, _rule = shirt_and_tie
        with django_assert_num_queries(2 + overhead()):  # the rules, the partners' availability
            assert "Tie" in render("{% bundle_offers product %}", product=shirt)
        with django_assert_num_queries(0):
            assert "Tie" in render("{% bundle_offers product %}", product=shirt)

    def test_query_count_does_not_grow_with_rules_and_partners(
        self, shirt_and_tie, django_assert_num_queries
    ):
        shirt, _tie, _rule = shirt_and_tie
        for i in range(8):
            partners = [ProductFactory(name=f"Partner {i}.{j}") for j in range(2)]
            rule = BundleRuleFactory(kind="fixed_set", value=D("5"), slug=f"set-{i}")
            for product in (shirt, *partners):
                BundleItemFactory(rule=rule, product=product)
            multi = BundleRuleFactory(
                kind="multi_buy", min_quantity=2, value=D("5"), slug=f"multi-{i}"
            )
            BundleItemFactory(rule=multi, product=shirt)
        with django_assert_num_queries(2 + overhead()):
            html = render("{% bundle_offers product %}", product=shirt)
        assert "Partner 7.1" in html
        with django_assert_num_queries(0):
            render("{% bundle_offers product %}", product=shirt)

    @pytest.mark.parametrize("change", [{"stock": 0}, {"is_active": False}])
    def test_a_set_with_an_unavailable_partner_is_not_offered(self, shirt_and_tie, change):
        shirt, tie, _rule = shirt_and_tie
        three = BundleRuleFactory(name="Three shirts", kind="multi_buy", min_quantity=3)
        BundleItemFactory(rule=three, product=shirt)
        for field, value in change.items():
            setattr(tie, field, value)
        tie.save()
        assert [o.rule.slug for o in bundles.offers_for_product(shirt)] == [three.slug]
        html = render("{% bundle_offers product %}", product=shirt)
        assert "Buy 3 and get 10% off" in html and "Tie" not in html
        tie.stock, tie.is_active = 5, True
        tie.save()  # back in stock: the product save invalidates the cached offers
        assert "Tie" in render("{% bundle_offers product %}", product=shirt)

    def test_failure_renders_empty_and_logs(self, shirt_and_tie, caplog):
        shirt, _tie, _rule = shirt_and_tie
        with (
            mock.patch.object(offers, "fetch_rules", side_effect=RuntimeError("db down")),
            caplog.at_level(logging.WARNING, logger="django_crosssell"),
        ):
            html = render("<p>page</p>{% bundle_offers product %}", product=shirt)
        assert html == "<p>page</p>"
        assert "bundle_offers widget rendered empty" in caplog.text

    @override_settings(DEBUG=True)
    def test_failure_raises_with_debug(self, shirt_and_tie):
        shirt, _tie, _rule = shirt_and_tie
        with (
            mock.patch.object(offers, "fetch_rules", side_effect=RuntimeError("db down")),
            pytest.raises(RuntimeError),
        ):
            render("{% bundle_offers product %}", product=shirt)


class TestBundleProgress:
    def test_applied_and_nudges(self, shirt_and_tie):
        shirt, tie, _rule = shirt_and_tie
        three = BundleRuleFactory(
            name="Three shirts", kind="multi_buy", min_quantity=3, value=D("15")
        )
        BundleItemFactory(rule=three, product=shirt)
        lines = [CartLine(shirt, 3, shirt.price), CartLine(tie, 1, tie.price)]
        with override("ja"):
            html = render("{% bundle_progress lines %}", lines=lines)
        # 3 shirts at 15% (2,250) beat shirt + tie at 10% (650); the tie then needs a shirt
        assert "Three shirts" in html
        assert "−2,250" in html
        assert "セットがそろうと10%オフ：" in html

    def test_accepts_a_ready_evaluation_and_objects_with_lines(self, shirt_and_tie):
        shirt, tie, _rule = shirt_and_tie
        evaluation = bundles.evaluate([(shirt, 1, shirt.price), (tie, 1, tie.price)])
        html = render("{% bundle_progress evaluation %}", evaluation=evaluation)
        assert "Shirt and tie" in html and "−650" in html

        class HostCart:
            lines = [
                type("Line", (), {"product": shirt, "quantity": 1, "unit_price": shirt.price}),
                type("Line", (), {"product": tie, "quantity": 1, "unit_price": tie.price}),
            ]

        assert "−650" in render("{% bundle_progress cart %}", cart=HostCart())

    def test_reads_host_carts_through_the_adapter(self, shirt_and_tie):
        shirt, tie, _rule = shirt_and_tie
        order = OrderFactory()
        OrderLineFactory(order=order, product=shirt)
        OrderLineFactory(order=order, product=tie)
        assert "−650" in render("{% bundle_progress order %}", order=order)  # .lines manager
        assert "−650" in render("{% bundle_progress lines %}", lines=order.lines.all())

        class HostCart:  # .all_lines(), and lines with `price` instead of `unit_price`
            def all_lines(self):
                return [
                    SimpleNamespace(product=shirt, quantity=1, price=shirt.price),
                    SimpleNamespace(product=tie.pk, quantity=1, price=tie.price),
                ]

        assert "−650" in render("{% bundle_progress cart %}", cart=HostCart())

    @override_settings(DEBUG=True)
    def test_a_missing_cart_is_an_empty_one(self, django_assert_num_queries):
        with django_assert_num_queries(0):
            assert render("{% bundle_progress cart %}").strip() == ""
            assert render("{% bundle_progress cart %}", cart=None).strip() == ""

    def test_empty_cart_renders_nothing_without_queries(self, django_assert_num_queries):
        with django_assert_num_queries(0):
            assert render("{% bundle_progress lines %}", lines=[]).strip() == ""

    def test_bad_lines_render_empty(self, caplog):
        with caplog.at_level(logging.WARNING, logger="django_crosssell"):
            html = render("{% bundle_progress lines %}", lines=[("nope", -1, "x")])
        assert html == ""
        assert "bundle_progress widget rendered empty" in caplog.text


# --- admin ---------------------------------------------------------------------------------------


def test_change_page_shows_a_preview_at_current_prices(admin_client, shirt_and_tie):
    _shirt, _tie, rule = shirt_and_tie
    url = reverse("admin:django_crosssell_bundlerule_change", args=[rule.pk])
    response = admin_client.get(url, headers={"accept-language": "ja"})
    content = response.content.decode()
    assert response.status_code == 200
    assert "通常価格の合計" in content
    assert "6,500" in content and "650" in content and "5,850" in content


def test_add_page_explains_the_preview(admin_client):
    response = admin_client.get(reverse("admin:django_crosssell_bundlerule_add"))
    assert "Save the rule to see a preview." in response.content.decode()


def test_duplicate_for_a_new_campaign(admin_client, shirt_and_tie):
    _shirt, _tie, rule = shirt_and_tie
    now = timezone.now()
    BundleRule.objects.filter(pk=rule.pk).update(starts_at=now, ends_at=now + timedelta(days=7))
    changelist = reverse("admin:django_crosssell_bundlerule_changelist")
    data = {"action": "duplicate_for_new_campaign", "_selected_action": [rule.pk]}
    for expected_slug in ("shirt-and-tie-copy", "shirt-and-tie-copy-2"):
        response = admin_client.post(changelist, data)
        assert response.status_code == 302
        copy = BundleRule.objects.get(slug=expected_slug)
        assert copy.name == "Shirt and tie (copy)"
        assert not copy.is_active
        assert copy.starts_at is None and copy.ends_at is None
        assert (copy.kind, copy.discount_type, copy.value) == ("fixed_set", "percent", D("10"))
        assert sorted(copy.items.values_list("product_id", "quantity")) == sorted(
            rule.items.values_list("product_id", "quantity")
        )
    rule.refresh_from_db()
    assert rule.is_active and rule.starts_at is not None  # the original is untouched


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"current", "inactive", "future", "multi"}),
        ("?is_active__exact=0", {"inactive"}),
        ("?current=yes", {"current", "multi"}),
        ("?current=no", {"inactive", "future"}),
        ("?kind__exact=multi_buy", {"multi"}),
    ],
)
def test_changelist_filters(admin_client, query, expected):
    now = timezone.now()
    BundleRuleFactory(name="current", slug="current")
    BundleRuleFactory(name="inactive", slug="inactive", is_active=False)
    BundleRuleFactory(name="future", slug="future", starts_at=now + timedelta(days=1))
    BundleRuleFactory(name="multi", slug="multi", kind="multi_buy", min_quantity=2)
    response = admin_client.get(reverse("admin:django_crosssell_bundlerule_changelist") + query)
    assert response.status_code == 200
    shown = {rule.name for rule in response.context["cl"].result_list}
    assert shown == expected
