"""The REST API on the example shop: integer product keys, yen prices, the schema page."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from django_crosssell.models import BundleItem, BundleRule, ProductRelation

pytestmark = pytest.mark.django_db

API = "/api/crosssell"


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.CROSSSELL = {
        **settings.CROSSSELL,
        "API_THROTTLE_RATES": {"crosssell_anon": None, "crosssell_user": None},
    }


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def shelf(make_product):
    beans = make_product(name="ハウスブレンド 200g", slug="house-blend", price=1280)
    filters = make_product(name="ペーパーフィルター", slug="filters", price=330)
    ProductRelation.objects.create(source=beans, target=filters)
    rule = BundleRule.objects.create(
        name="朝のセット", slug="morning", kind="fixed_set", discount_type="amount", value=200
    )
    BundleItem.objects.create(rule=rule, product=beans)
    BundleItem.objects.create(rule=rule, product=filters)
    return beans, filters


def test_recommendations_with_integer_ids(api, shelf):
    beans, filters = shelf
    response = api.get(f"{API}/products/{beans.pk}/recommendations/")
    assert response.status_code == 200
    first = response.json()[0]
    assert first["product"]["id"] == filters.pk
    assert first["product"]["name"] == "ペーパーフィルター"
    assert first["product"]["price"] == "330"
    assert first["product"]["url"] == "http://testserver/products/filters/"


@pytest.mark.parametrize(
    "segment", ["abc", "-1", "0", "1.5", "1e3", "99999999999999999999999999", "%20", "１"]
)
def test_malformed_or_unknown_integer_ids_are_404(api, shelf, segment):
    response = api.get(f"{API}/products/{segment}/upgrades/")
    assert response.status_code == 404
    assert response.json() == {"detail": "このIDの商品はありません。"}  # the shop speaks Japanese


@pytest.mark.parametrize("value", [1.5, True, "abc", -3, 10**30, None, [1], {"id": 1}], ids=repr)
def test_malformed_ids_in_bodies_are_field_errors(api, shelf, value):
    response = api.post(f"{API}/cart/recommendations/", {"product_ids": [value]}, format="json")
    assert response.status_code == 400
    assert "product_ids" in response.json()


def test_numeric_strings_and_whole_floats_are_ids(api, shelf):
    beans, _filters = shelf
    for value in (str(beans.pk), float(beans.pk)):
        response = api.post(f"{API}/cart/recommendations/", {"product_ids": [value]}, format="json")
        assert response.status_code == 200, response.json()


def test_bundle_in_yen(api, shelf):
    beans, filters = shelf
    lines = [{"product": beans.pk, "quantity": 1}, {"product": filters.pk, "quantity": 1}]
    response = api.post(f"{API}/bundles/evaluate/", {"lines": lines}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["subtotal"], body["total_discount"], body["total"]) == ("1610", "200", "1410")
    assert body["applied"][0]["rule"]["name"] == "朝のセット"


def test_schema_documents_integer_keys(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"][f"{API}/products/{{product_id}}/recommendations/"]["get"]
    [param] = [p for p in operation["parameters"] if p["name"] == "product_id"]
    assert param["schema"]["type"] == "integer"
    product = schema["components"]["schemas"]["Product"]["properties"]
    assert product["id"]["type"] == "integer"
    assert "/api/schema/" not in schema["paths"]


def test_docs_page_uses_local_static_files(client):
    response = client.get("/api/schema/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn." not in html
    assert "/api/schema/" in html


def test_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/crosssell/recompute/" in target.read_text()
