"""Every answer of the JSON endpoints to a browser or a bad request is a 4xx, never a 500."""

from __future__ import annotations

import pytest

from tests.api.helpers import api_url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name, method",
    [
        ("bundle-offers", "get"),
        ("cart-recommendations", "get"),
        ("cart-recommendations", "post"),
        ("bundle-evaluate", "get"),
        ("bundle-evaluate", "post"),
    ],
)
def test_the_browsable_api_renders_public_endpoints(client, catalogue, name, method):
    product = catalogue["products"][0]
    url = api_url(name) + (f"?product={product.pk}" if name == "bundle-offers" else "")
    response = getattr(client, method)(url, HTTP_ACCEPT="text/html")
    assert response.status_code < 500
    if name == "bundle-offers":
        assert response.status_code == 200
        assert "Breakfast set" in response.content.decode()


def test_product_pages_in_the_browsable_api(client, catalogue):
    product = catalogue["products"][0]
    for name in ("product-recommendations", "product-upgrades"):
        response = client.get(api_url(name, product.pk), HTTP_ACCEPT="text/html")
        assert response.status_code == 200


def test_an_unknown_path_under_the_api_is_a_json_404(client):
    for path in ("nothing/", "products/", "bundles/evaluate/extra/", "runs/1/x/"):
        response = client.get("/api/crosssell/" + path, HTTP_ACCEPT_LANGUAGE="ja")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["detail"] == "そのエンドポイントはありません。"


def test_a_body_too_large_for_django_is_a_json_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = "[" + ",".join(["1"] * 2000) + "]"
    response = client.generic(
        "POST",
        "/api/crosssell/cart/recommendations/",
        body,
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
