"""REST API behaviour: the storefront endpoints return what the services return, and the
curation endpoints refuse what the admin refuses, with the models' own messages."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from rest_framework import serializers

from django_crosssell import bundles, recommend
from django_crosssell.api.fields import ProductSerializer, get_product_serializer_class
from django_crosssell.models import BundleRule, ProductRelation, TierLadder, TierStep
from django_crosssell.timeouts import overhead
from tests.api.helpers import api_url
from tests.factories import (
    BundleItemFactory,
    ProductFactory,
    ProductRelationFactory,
    TierStepFactory,
)

pytestmark = pytest.mark.django_db


class SkuProductSerializer(serializers.Serializer):
    """A host's own product serializer, named by dotted path in the tests below."""

    id = serializers.UUIDField(read_only=True)
    sku = serializers.CharField(read_only=True)


def pid(cat: dict, index: int) -> str:
    return str(cat["products"][index].pk)


class TestStorefront:
    def test_product_recommendations_are_the_service_results(self, catalogue, anon_client):
        a = catalogue["products"][0]
        response = anon_client.get(api_url("product-recommendations", a.pk))
        assert response.status_code == 200
        expected = recommend.recommend_for_product(a)
        assert [row["product"]["id"] for row in response.json()] == [
            str(r.product.pk) for r in expected
        ]
        first = response.json()[0]
        assert first["source"] == "curated"
        assert first["position"] == 1
        b = catalogue["products"][1]
        assert first["product"] == {
            "id": str(b.pk),
            "name": str(b),
            "price": "2000",  # rounded to the currency (CURRENCY_DECIMALS 0)
            "price_display": "2,000",
            "url": f"http://testserver{b.get_absolute_url()}",
        }

    def test_kind_filters_curated_links(self, catalogue, anon_client):
        a = catalogue["products"][0]
        related_target = catalogue["products"][4]
        ProductRelationFactory(source=a, target=related_target, kind="related")
        url = api_url("product-recommendations", a.pk)
        related = anon_client.get(url, {"kind": "related"}).json()
        cross = anon_client.get(url, {"kind": "cross_sell"}).json()
        curated_ids = {r["product"]["id"] for r in related if r["source"] == "curated"}
        assert curated_ids == {str(related_target.pk)}
        assert str(related_target.pk) not in {
            r["product"]["id"] for r in cross if r["source"] == "curated"
        }

    def test_huge_limit_is_capped_at_max_limit(self, anon_client, settings):
        settings.CROSSSELL = {**settings.CROSSSELL, "MAX_LIMIT": 3, "FALLBACK": "bestsellers"}
        source = ProductFactory()
        for _ in range(6):
            ProductRelationFactory(source=source)
        response = anon_client.get(api_url("product-recommendations", source.pk), {"limit": 10**30})
        assert response.status_code == 200
        assert len(response.json()) == 3

    def test_limit_is_honoured(self, anon_client):
        source = ProductFactory()
        for _ in range(4):
            ProductRelationFactory(source=source)
        url = api_url("product-recommendations", source.pk)
        assert len(anon_client.get(url, {"limit": 2}).json()) == 2

    def test_upgrades(self, catalogue, anon_client, settings):
        settings.CROSSSELL = {**settings.CROSSSELL, "UPGRADE_MAX_PRICE_RATIO": 3}
        a, b = catalogue["products"][:2]
        response = anon_client.get(api_url("product-upgrades", a.pk))
        assert response.status_code == 200
        body = response.json()
        assert body["downgrade"] is None
        assert body["upgrade"]["product"]["id"] == str(b.pk)
        assert body["upgrade"]["direction"] == "upgrade"
        assert body["upgrade"]["label"] == "Standard"
        assert body["upgrade"]["ladder_slug"] == "kettles"
        assert Decimal(body["upgrade"]["price_difference"]) == b.price - a.price
        down = anon_client.get(api_url("product-upgrades", b.pk)).json()
        assert down["upgrade"] is None
        assert down["downgrade"]["product"]["id"] == str(a.pk)

    def test_cart_recommendations_leave_out_cart_items(self, catalogue, anon_client):
        a, b = catalogue["products"][:2]
        response = anon_client.post(
            api_url("cart-recommendations"),
            {"product_ids": [str(a.pk), str(a.pk)]},
            format="json",
        )
        assert response.status_code == 200
        ids = [row["product"]["id"] for row in response.json()]
        assert str(a.pk) not in ids
        assert ids == [str(r.product.pk) for r in recommend.recommend_for_cart([a])]
        assert str(b.pk) in ids

    def test_empty_cart(self, anon_client):
        response = anon_client.post(
            api_url("cart-recommendations"), {"product_ids": []}, format="json"
        )
        assert response.status_code == 200
        assert response.json() == []

    def test_bundle_evaluation_uses_server_prices(self, catalogue, anon_client):
        a, _b, c = catalogue["products"][:3]
        lines = [
            # A client-sent price is not part of the API and must be ignored.
            {"product": str(a.pk), "quantity": 1, "unit_price": "1"},
            {"product": str(c.pk), "quantity": 1},
        ]
        response = anon_client.post(api_url("bundle-evaluate"), {"lines": lines}, format="json")
        assert response.status_code == 200
        body = response.json()
        expected = bundles.evaluate(
            [bundles.CartLine(a, 1, a.price), bundles.CartLine(c, 1, c.price)]
        )
        assert Decimal(body["subtotal"]) == a.price + c.price == expected.subtotal
        assert Decimal(body["total_discount"]) == expected.total_discount == Decimal("400")
        assert Decimal(body["total"]) == expected.total
        [applied] = body["applied"]
        assert applied["rule"]["slug"] == "breakfast"
        assert applied["times"] == 1
        assert {u["product"] for u in applied["units"]} == {str(a.pk), str(c.pk)}

    def test_bundle_nudge(self, catalogue, anon_client):
        a, c = catalogue["products"][0], catalogue["products"][2]
        response = anon_client.post(
            api_url("bundle-evaluate"),
            {"lines": [{"product": str(a.pk), "quantity": 1}]},
            format="json",
        )
        [nudge] = response.json()["nudges"]
        assert nudge["rule"]["slug"] == "breakfast"
        assert [m["product"]["id"] for m in nudge["missing"]] == [str(c.pk)]
        assert Decimal(nudge["saving"]) > 0
        assert nudge["message"]

    def test_bundle_offers_for_product(self, catalogue, anon_client):
        a, c = catalogue["products"][0], catalogue["products"][2]
        response = anon_client.get(api_url("bundle-offers"), {"product": str(a.pk)})
        assert response.status_code == 200
        [offer] = response.json()
        assert offer["rule"]["slug"] == "breakfast"
        assert offer["product"]["id"] == str(a.pk)
        assert [p["id"] for p in offer["partners"]] == [str(c.pk)]
        assert Decimal(offer["bundle_total"]) == Decimal(offer["regular_total"]) - Decimal(
            offer["saving"]
        )

    def test_warm_product_recommendations_need_one_query(
        self, catalogue, anon_client, django_assert_max_num_queries
    ):
        """The product lookup only; the service answers from its cache."""
        url = api_url("product-recommendations", pid(catalogue, 0))
        anon_client.get(url)
        with django_assert_max_num_queries(1 + overhead()):  # + the bounded savepoint
            assert anon_client.get(url).status_code == 200


class TestProductSerializer:
    def test_default_has_no_model_specific_fields(self):
        assert get_product_serializer_class() is ProductSerializer

    def test_host_serializer_by_dotted_path(self, catalogue, anon_client, settings):
        settings.CROSSSELL = {
            **settings.CROSSSELL,
            "PRODUCT_SERIALIZER": "tests.api.test_endpoints.SkuProductSerializer",
        }
        response = anon_client.get(api_url("product-recommendations", pid(catalogue, 0)))
        product = response.json()[0]["product"]
        assert product == {"id": pid(catalogue, 1), "sku": catalogue["products"][1].sku}

    def test_host_serializer_appears_in_the_schema(self, anon_client, settings):
        settings.CROSSSELL = {
            **settings.CROSSSELL,
            "PRODUCT_SERIALIZER": "tests.api.test_endpoints.SkuProductSerializer",
        }
        schema = anon_client.get("/api/schema/", {"format": "json"}).json()
        component = schema["components"]["schemas"]["SkuProduct"]
        assert set(component["properties"]) == {"id", "sku"}


class TestCuration:
    def test_create_relation(self, catalogue, staff_client):
        c, d = catalogue["products"][2:4]
        response = staff_client.post(
            api_url("relation-list"),
            {"source": str(c.pk), "target": str(d.pk), "kind": "related", "position": 4},
            format="json",
        )
        assert response.status_code == 201, response.json()
        relation = ProductRelation.objects.get(pk=response.json()["id"])
        assert (relation.source, relation.target, relation.kind, relation.position) == (
            c,
            d,
            "related",
            4,
        )

    def test_new_relation_shows_up_in_recommendations_at_once(
        self, catalogue, staff_client, anon_client
    ):
        """Cached recommendations go stale on an API write, as on an admin edit."""
        c, d = catalogue["products"][2:4]
        url = api_url("product-recommendations", c.pk)
        before = [
            r["product"]["id"] for r in anon_client.get(url).json() if r["source"] == "curated"
        ]
        assert before == []
        staff_client.post(
            api_url("relation-list"), {"source": str(c.pk), "target": str(d.pk)}, format="json"
        )
        after = [
            r["product"]["id"] for r in anon_client.get(url).json() if r["source"] == "curated"
        ]
        assert after == [str(d.pk)]

    def test_self_link_refused_with_the_model_message(self, catalogue, staff_client):
        a = catalogue["products"][0]
        response = staff_client.post(
            api_url("relation-list"), {"source": str(a.pk), "target": str(a.pk)}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["A product cannot be linked to itself."]}

    def test_duplicate_link_refused(self, catalogue, staff_client):
        relation = catalogue["relation"]
        response = staff_client.post(
            api_url("relation-list"),
            {"source": str(relation.source_id), "target": str(relation.target_id)},
            format="json",
        )
        assert response.status_code == 400
        assert response.json() == {
            "non_field_errors": ["This product is already linked to that product with this kind."]
        }

    def test_window_end_before_start_refused(self, catalogue, staff_client):
        response = staff_client.patch(
            api_url("relation-detail", catalogue["relation"].pk),
            {"starts_at": "2026-05-02T00:00:00Z", "ends_at": "2026-05-01T00:00:00Z"},
            format="json",
        )
        assert response.status_code == 400
        assert "The end must be after the start." in str(response.json())

    def test_patch_keeps_other_fields(self, catalogue, staff_client):
        relation = catalogue["relation"]
        response = staff_client.patch(
            api_url("relation-detail", relation.pk), {"note": "summer"}, format="json"
        )
        assert response.status_code == 200
        relation.refresh_from_db()
        assert relation.note == "summer"
        assert relation.kind == "cross_sell"

    def test_filter_relations_by_source_and_kind(self, catalogue, staff_client):
        a, _b, c = catalogue["products"][:3]
        ProductRelationFactory(source=c, target=a, kind="related")
        rows = staff_client.get(api_url("relation-list"), {"source": str(c.pk)}).json()
        assert [r["target"] for r in rows["results"]] == [str(a.pk)]
        rows = staff_client.get(api_url("relation-list"), {"kind": "cross_sell"}).json()
        assert [r["id"] for r in rows["results"]] == [catalogue["relation"].pk]

    def test_create_ladder_with_steps(self, catalogue, staff_client):
        c, d = catalogue["products"][2:4]
        response = staff_client.post(
            api_url("ladder-list"),
            {
                "name": "Grinders",
                "slug": "grinders",
                "steps": [
                    {"rank": 2, "product": str(d.pk), "label": "Pro"},
                    {"rank": 1, "product": str(c.pk), "label": "Home"},
                ],
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        assert [s["label"] for s in response.json()["steps"]] == ["Home", "Pro"]
        ladder = TierLadder.objects.get(slug="grinders")
        assert list(ladder.steps.values_list("rank", "product")) == [(1, c.pk), (2, d.pk)]

    def test_duplicate_rank_and_product_in_steps_refused(self, catalogue, staff_client):
        c = catalogue["products"][2]
        response = staff_client.post(
            api_url("ladder-list"),
            {
                "name": "Grinders",
                "slug": "grinders",
                "steps": [{"rank": 1, "product": str(c.pk)}, {"rank": 1, "product": str(c.pk)}],
            },
            format="json",
        )
        assert response.status_code == 400
        assert response.json() == {
            "steps": [
                {},
                {
                    "rank": ["Each rank can be used only once per ladder."],
                    "product": ["A product can appear only once per ladder."],
                },
            ]
        }
        assert not TierLadder.objects.filter(slug="grinders").exists()

    def test_put_replaces_steps_patch_without_steps_keeps_them(self, catalogue, staff_client):
        ladder = catalogue["ladder"]
        a, b, c = catalogue["products"][:3]
        url = api_url("ladder-detail", ladder.pk)
        response = staff_client.patch(url, {"name": "Kettles 2026"}, format="json")
        assert response.status_code == 200
        assert ladder.steps.count() == 2
        # Swapping ranks of existing products is fine: the old steps are replaced.
        response = staff_client.put(
            url,
            {
                "name": "Kettles",
                "slug": "kettles",
                "steps": [
                    {"rank": 1, "product": str(b.pk)},
                    {"rank": 2, "product": str(a.pk)},
                    {"rank": 3, "product": str(c.pk)},
                ],
            },
            format="json",
        )
        assert response.status_code == 200, response.json()
        assert list(
            TierStep.objects.filter(ladder=ladder)
            .order_by("rank")
            .values_list("product", flat=True)
        ) == [b.pk, a.pk, c.pk]

    def test_duplicate_slug_refused(self, catalogue, staff_client):
        response = staff_client.post(
            api_url("ladder-list"), {"name": "Other", "slug": "kettles"}, format="json"
        )
        assert response.status_code == 400
        assert list(response.json()) == ["slug"]

    def test_create_bundle_rule_with_items(self, catalogue, staff_client):
        d, e = catalogue["products"][3:5]
        response = staff_client.post(
            api_url("bundle-rule-list"),
            {
                "name": "Duo",
                "slug": "duo",
                "kind": "fixed_set",
                "discount_type": "percent",
                "value": "15",
                "min_quantity": 4,
                "items": [{"product": str(d.pk)}, {"product": str(e.pk), "quantity": 2}],
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        rule = BundleRule.objects.get(slug="duo")
        # BundleRule.clean() drops min_quantity for sets, as in the admin.
        assert rule.min_quantity is None
        assert list(rule.items.values_list("product", "quantity")) == [(d.pk, 1), (e.pk, 2)]

    @pytest.mark.parametrize(
        ("body", "field", "message"),
        [
            ({"value": "150"}, "value", "A percentage must be more than 0 and at most 100."),
            (
                {"kind": "multi_buy", "min_quantity": None},
                "min_quantity",
                "Mix-and-match and multi-buy rules need at least 2 units.",
            ),
            (
                {"items": "one"},
                "items",
                None,
            ),
        ],
    )
    def test_bundle_rule_field_errors(self, catalogue, staff_client, body, field, message):
        d, e = catalogue["products"][3:5]
        base = {
            "name": "Duo",
            "slug": "duo",
            "kind": "fixed_set",
            "discount_type": "percent",
            "value": "10",
            "items": [{"product": str(d.pk)}, {"product": str(e.pk)}],
        }
        response = staff_client.post(api_url("bundle-rule-list"), {**base, **body}, format="json")
        assert response.status_code == 400
        assert field in response.json()
        if message:
            assert message in response.json()[field]

    def test_item_checks_of_the_admin_apply(self, catalogue, staff_client):
        """forms.validate_items: a set needs two products; a fixed price must be a saving."""
        d, e = catalogue["products"][3:5]
        url = api_url("bundle-rule-list")
        base = {"name": "Duo", "slug": "duo", "kind": "fixed_set", "discount_type": "percent"}
        one = staff_client.post(
            url, {**base, "value": "10", "items": [{"product": str(d.pk)}]}, format="json"
        )
        assert one.status_code == 400
        assert one.json() == {"items": ["A set needs at least two different products."]}
        too_dear = staff_client.post(
            url,
            {
                **base,
                "discount_type": "fixed_price",
                "value": "99999",
                "items": [{"product": str(d.pk)}, {"product": str(e.pk)}],
            },
            format="json",
        )
        assert too_dear.status_code == 400
        assert "must be lower than the items' regular total" in too_dear.json()["items"][0]

    def test_patch_checks_the_saved_items(self, catalogue, staff_client):
        """Changing only the price must still be checked against the rule's items."""
        rule = catalogue["rule"]
        response = staff_client.patch(
            api_url("bundle-rule-detail", rule.pk),
            {"discount_type": "fixed_price", "value": "99999"},
            format="json",
        )
        assert response.status_code == 400
        assert "items" in response.json()
        rule.refresh_from_db()
        assert rule.discount_type == "percent"

    def test_duplicate_items_refused(self, catalogue, staff_client):
        d = catalogue["products"][3]
        response = staff_client.post(
            api_url("bundle-rule-list"),
            {
                "name": "Duo",
                "slug": "duo",
                "kind": "mix_and_match",
                "min_quantity": 2,
                "discount_type": "percent",
                "value": "10",
                "items": [{"product": str(d.pk)}, {"product": str(d.pk)}],
            },
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["items"][1] == {
            "product": ["A product can be listed only once per rule."]
        }

    def test_delete_rule(self, catalogue, staff_client):
        rule = catalogue["rule"]
        assert staff_client.delete(api_url("bundle-rule-detail", rule.pk)).status_code == 204
        assert not BundleRule.objects.filter(pk=rule.pk).exists()

    def test_list_pagination(self, catalogue, staff_client):
        for _ in range(3):
            ProductRelationFactory()
        page = staff_client.get(api_url("relation-list"), {"page_size": 2}).json()
        assert page["count"] == 4
        assert len(page["results"]) == 2
        assert page["next"]


class TestAffinityAndRuns:
    def test_affinity_rows_of_the_current_run(self, catalogue, staff_client):
        a, d = catalogue["products"][0], catalogue["products"][3]
        body = staff_client.get(api_url("product-affinity", a.pk)).json()
        assert body["run"]["id"] == catalogue["run"].pk
        assert body["results"] == [
            {
                "product": {
                    "id": str(d.pk),
                    "name": str(d),
                    "price": "4000",
                    "price_display": "4,000",
                    "url": f"http://testserver{d.get_absolute_url()}",
                },
                "co_count": 5,
                "support": 0.1,
                "confidence": 0.5,
                "lift": 2.0,
                "score": 0.5,
            }
        ]

    def test_affinity_without_a_current_run(self, staff_client):
        product = ProductFactory()
        body = staff_client.get(api_url("product-affinity", product.pk)).json()
        assert body == {"run": None, "results": []}

    def test_recompute_queues_a_run_and_returns_its_id(
        self, staff_client, django_capture_on_commit_callbacks, monkeypatch
    ):
        from django_crosssell import tasks

        sent = []
        monkeypatch.setattr(tasks.recompute_affinity, "delay", lambda **kw: sent.append(kw))
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                api_url("recompute"), {"top_k": 5, "metric": "lift"}, format="json"
            )
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "queued"
        assert body["parameters"] == {"top_k": 5, "metric": "lift"}
        assert sent == [{"run_id": body["id"], "top_k": 5, "metric": "lift"}]
        run = staff_client.get(api_url("run-detail", body["id"])).json()
        assert run["id"] == body["id"]

    def test_runs_newest_first(self, catalogue, staff_client):
        staff_client.post(api_url("recompute"), {}, format="json")
        runs = staff_client.get(api_url("run-list")).json()["results"]
        assert runs[0]["status"] == "queued"
        assert runs[1]["id"] == catalogue["run"].pk


def test_uuid_keys_are_documented_as_uuids(anon_client):
    schema = anon_client.get("/api/schema/", {"format": "json"}).json()
    path = schema["paths"]["/api/crosssell/products/{product_id}/recommendations/"]
    [param] = [p for p in path["get"]["parameters"] if p["name"] == "product_id"]
    assert param["schema"] == {"type": "string", "format": "uuid"}
    assert schema["components"]["schemas"]["Product"]["properties"]["id"]["format"] == "uuid"


def test_unknown_uuid_is_404(anon_client):
    response = anon_client.get(api_url("product-upgrades", uuid.uuid4()))
    assert response.status_code == 404
    assert response.json() == {"detail": "No product with this id."}


def test_schema_generates_without_warnings(tmp_path):
    """The equivalent of ``manage.py spectacular --validate --fail-on-warn``."""
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/crosssell/bundles/evaluate/" in text
    assert "ProductRelationKindEnum" in text


class TestQueryCounts:
    """Lists cost the same number of queries whatever their length (no N+1)."""

    @pytest.mark.parametrize(
        ("name", "make"),
        [
            ("relation-list", lambda: ProductRelationFactory()),
            ("ladder-list", lambda: TierStepFactory()),
            ("bundle-rule-list", lambda: BundleItemFactory()),
        ],
    )
    def test_lists(self, name, make, staff_client, django_assert_max_num_queries):
        make()
        staff_client.get(api_url(name))  # the user's permission cache is per request anyway
        with django_assert_max_num_queries(6) as few:
            staff_client.get(api_url(name))
        for _ in range(10):
            make()
        with django_assert_max_num_queries(len(few.captured_queries)):
            assert len(staff_client.get(api_url(name)).json()["results"]) == 11

    def test_bundle_evaluation(self, catalogue, anon_client, django_assert_max_num_queries):
        """One query for the products, one for the rules (the bundles service)."""
        lines = [{"product": pid(catalogue, i), "quantity": 1} for i in range(5)]
        with django_assert_max_num_queries(2 + overhead()):
            response = anon_client.post(api_url("bundle-evaluate"), {"lines": lines}, format="json")
        assert response.status_code == 200

    def test_cart(self, catalogue, anon_client, django_assert_max_num_queries):
        """One query checks the ids; the recommendation service needs at most two more."""
        ids = [pid(catalogue, i) for i in range(5)]
        with django_assert_max_num_queries(3 + overhead()):
            response = anon_client.post(
                api_url("cart-recommendations"), {"product_ids": ids}, format="json"
            )
        assert response.status_code == 200
