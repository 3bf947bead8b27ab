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
