"""Bad input never reaches a 500: each row is a request and the status and error field
it must get (UUID product keys here; integer keys in example_shop/tests/test_api_shop.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.api.helpers import api_url

pytestmark = pytest.mark.django_db

UNKNOWN = str(uuid.UUID(int=7))


def pid(cat: dict, index: int = 0) -> str:
    return str(cat["products"][index].pk)


@dataclass
class Bad:
    name: str
    method: str
    url: Callable[[dict], str]
    body: Any = None  # dict/list (sent as JSON), str (sent raw as JSON), or a callable
    status: int = 400
    error: str | None = None  # a key expected in the error body
    staff: bool = False
    content_type: str = "application/json"


def recs(cat: dict) -> str:
    return api_url("product-recommendations", pid(cat))


def lines(n: int, cat: dict, quantity: int = 1) -> dict:
    return {"lines": [{"product": pid(cat, i % 5), "quantity": quantity} for i in range(n)]}


ROWS = [
    # --- product ids in paths
    Bad(
        "malformed id",
        "get",
        lambda c: "/api/crosssell/products/not-a-uuid/recommendations/",
        status=404,
        error="detail",
    ),
    Bad(
        "integer id on a uuid shop",
        "get",
        lambda c: "/api/crosssell/products/123/upgrades/",
        status=404,
        error="detail",
    ),
    Bad(
        "unknown id",
        "get",
        lambda c: api_url("product-recommendations", UNKNOWN),
        status=404,
        error="detail",
    ),
    Bad(
        "very long id",
        "get",
        lambda c: f"/api/crosssell/products/{'9' * 5000}/upgrades/",
        status=404,
        error="detail",
    ),
    Bad(
        "affinity malformed id",
        "get",
        lambda c: "/api/crosssell/products/%00/affinity/",
        status=404,
        error="detail",
        staff=True,
    ),
    # --- query parameters
    Bad("negative limit", "get", lambda c: recs(c) + "?limit=-1", error="limit"),
    Bad("zero limit", "get", lambda c: recs(c) + "?limit=0", error="limit"),
    Bad("text limit", "get", lambda c: recs(c) + "?limit=ten", error="limit"),
    Bad("float limit", "get", lambda c: recs(c) + "?limit=2.5", error="limit"),
    Bad("unknown kind", "get", lambda c: recs(c) + "?kind=upsell", error="kind"),
    Bad("offers without product", "get", lambda c: api_url("bundle-offers"), error="product"),
    Bad(
        "offers malformed product",
        "get",
        lambda c: api_url("bundle-offers") + "?product=x",
        error="product",
    ),
    Bad(
        "offers unknown product",
        "get",
        lambda c: api_url("bundle-offers") + f"?product={UNKNOWN}",
        error="product",
    ),
    # --- bodies
    Bad(
        "cart not json",
        "post",
        lambda c: api_url("cart-recommendations"),
        "{not json",
        error="detail",
    ),
    Bad(
        "cart deeply nested json",
        "post",
        lambda c: api_url("cart-recommendations"),
        "[" * 60_000,  # under API_MAX_BODY_BYTES, far over the recursion limit
        error="detail",
    ),
    Bad(
        "cart json list",
        "post",
        lambda c: api_url("cart-recommendations"),
        [1, 2],
        error="non_field_errors",
    ),
    Bad(
        "cart missing ids",
        "post",
        lambda c: api_url("cart-recommendations"),
        {},
        error="product_ids",
    ),
    Bad(
        "cart ids not a list",
        "post",
        lambda c: api_url("cart-recommendations"),
        {"product_ids": "abc"},
        error="product_ids",
    ),
    Bad(
        "cart malformed id",
        "post",
        lambda c: api_url("cart-recommendations"),
        {"product_ids": ["abc"]},
        error="product_ids",
    ),
    Bad(
        "cart boolean id",
        "post",
        lambda c: api_url("cart-recommendations"),
        {"product_ids": [True]},
        error="product_ids",
    ),
    Bad(
        "cart null id",
        "post",
        lambda c: api_url("cart-recommendations"),
        {"product_ids": [None]},
        error="product_ids",
    ),
    Bad(
        "cart unknown id",
        "post",
        lambda c: api_url("cart-recommendations"),
        {"product_ids": [UNKNOWN]},
        error="product_ids",
    ),
    Bad(
        "cart too many lines",
        "post",
        lambda c: api_url("cart-recommendations"),
        lambda c: {"product_ids": [pid(c)] * 51},
        error="product_ids",
    ),
    Bad(
        "cart negative limit",
        "post",
        lambda c: api_url("cart-recommendations"),
        lambda c: {"product_ids": [pid(c)], "limit": -3},
        error="limit",
    ),
    Bad(
        "cart form body",
        "post",
        lambda c: api_url("cart-recommendations"),
        "product_ids=1",
        status=415,
        error="detail",
        content_type="application/x-www-form-urlencoded",
    ),
    Bad("evaluate not json", "post", lambda c: api_url("bundle-evaluate"), "]", error="detail"),
    Bad(
        "evaluate zero quantity",
        "post",
        lambda c: api_url("bundle-evaluate"),
        lambda c: lines(1, c, 0),
        error="lines",
    ),
    Bad(
        "evaluate negative quantity",
        "post",
        lambda c: api_url("bundle-evaluate"),
        lambda c: lines(1, c, -2),
        error="lines",
    ),
    Bad(
        "evaluate huge quantity",
        "post",
        lambda c: api_url("bundle-evaluate"),
        lambda c: lines(1, c, 10**12),
        error="lines",
    ),
    Bad(
        "evaluate quantity over max",
        "post",
        lambda c: api_url("bundle-evaluate"),
        lambda c: lines(1, c, 1000),
        error="lines",
    ),
    Bad(
        "evaluate text quantity",
        "post",
        lambda c: api_url("bundle-evaluate"),
        lambda c: {"lines": [{"product": pid(c), "quantity": "many"}]},
        error="lines",
    ),
    Bad(
        "evaluate missing product",
        "post",
        lambda c: api_url("bundle-evaluate"),
        {"lines": [{"quantity": 1}]},
        error="lines",
    ),
    Bad(
        "evaluate unknown product",
        "post",
        lambda c: api_url("bundle-evaluate"),
        {"lines": [{"product": UNKNOWN, "quantity": 1}]},
        error="lines",
    ),
    Bad(
        "evaluate duplicate product",
        "post",
        lambda c: api_url("bundle-evaluate"),
        lambda c: {"lines": [{"product": pid(c), "quantity": 1}] * 2},
        error="lines",
    ),
    Bad(
        "evaluate too many lines",
        "post",
        lambda c: api_url("bundle-evaluate"),
        lambda c: lines(51, c),
        error="lines",
    ),
    Bad(
        "evaluate lines not objects",
        "post",
        lambda c: api_url("bundle-evaluate"),
        {"lines": [1, 2]},
        error="lines",
    ),
    # --- staff endpoints
    Bad(
        "relation malformed pk",
        "get",
        lambda c: "/api/crosssell/relations/abc/",
        status=404,
        error="detail",
        staff=True,
    ),
    Bad(
        "relation huge pk",
        "get",
        lambda c: f"/api/crosssell/relations/{10**30}/",
        status=404,
        error="detail",
        staff=True,
    ),
    Bad(
        "relation negative pk",
        "delete",
        lambda c: "/api/crosssell/relations/-1/",
        status=404,
        error="detail",
        staff=True,
    ),
    Bad(
        "run malformed pk",
        "get",
        lambda c: "/api/crosssell/runs/1.5/",
        status=404,
        error="detail",
        staff=True,
    ),
    Bad(
        "page out of range",
        "get",
        lambda c: api_url("relation-list") + "?page=999",
        status=404,
        error="detail",
        staff=True,
    ),
    Bad(
        "relations filter malformed source",
        "get",
        lambda c: api_url("relation-list") + "?source=zz",
        error="source",
        staff=True,
    ),
    Bad(
        "relations filter unknown kind",
        "get",
        lambda c: api_url("relation-list") + "?kind=zz",
        error="kind",
        staff=True,
    ),
    Bad(
        "relation unknown target",
        "post",
        lambda c: api_url("relation-list"),
        lambda c: {"source": pid(c), "target": UNKNOWN},
        error="target",
        staff=True,
    ),
    Bad(
        "relation malformed source",
        "post",
        lambda c: api_url("relation-list"),
        lambda c: {"source": [1], "target": pid(c, 1)},
        error="source",
        staff=True,
    ),
    Bad(
        "relation bad kind",
        "post",
        lambda c: api_url("relation-list"),
        lambda c: {"source": pid(c, 2), "target": pid(c, 1), "kind": "x"},
        error="kind",
        staff=True,
    ),
    Bad(
        "relation negative position",
        "post",
        lambda c: api_url("relation-list"),
        lambda c: {"source": pid(c, 2), "target": pid(c, 1), "position": -1},
        error="position",
        staff=True,
    ),
    Bad(
        "relation huge position",
        "post",
        lambda c: api_url("relation-list"),
        lambda c: {"source": pid(c, 2), "target": pid(c, 1), "position": 10**20},
        error="position",
        staff=True,
    ),
    Bad(
        "relation bad date",
        "post",
        lambda c: api_url("relation-list"),
        lambda c: {"source": pid(c, 2), "target": pid(c, 1), "starts_at": "soon"},
        error="starts_at",
        staff=True,
    ),
    Bad(
        "ladder steps not a list",
        "post",
        lambda c: api_url("ladder-list"),
        {"name": "x", "slug": "x", "steps": {"rank": 1}},
        error="steps",
        staff=True,
    ),
    Bad(
        "ladder bad slug",
        "post",
        lambda c: api_url("ladder-list"),
        {"name": "x", "slug": "not a slug!"},
        error="slug",
        staff=True,
    ),
    Bad(
        "ladder huge rank",
        "post",
        lambda c: api_url("ladder-list"),
        lambda c: {"name": "x", "slug": "x", "steps": [{"rank": 10**20, "product": pid(c)}]},
        error="steps",
        staff=True,
    ),
    Bad(
        "rule huge value",
        "post",
        lambda c: api_url("bundle-rule-list"),
        {"name": "x", "slug": "x", "kind": "fixed_set", "discount_type": "amount", "value": "1e20"},
        error="value",
        staff=True,
    ),
    Bad(
        "rule nan value",
        "post",
        lambda c: api_url("bundle-rule-list"),
        {"name": "x", "slug": "x", "kind": "fixed_set", "discount_type": "amount", "value": "NaN"},
        error="value",
        staff=True,
    ),
    Bad(
        "recompute unknown metric",
        "post",
        lambda c: api_url("recompute"),
        {"metric": "magic"},
        error="metric",
        staff=True,
    ),
    Bad(
        "recompute zero top_k",
        "post",
        lambda c: api_url("recompute"),
        {"top_k": 0},
        error="top_k",
        staff=True,
    ),
    Bad(
        "recompute negative days",
        "post",
        lambda c: api_url("recompute"),
        {"lookback_days": -1},
        error="lookback_days",
        staff=True,
    ),
    Bad(
        "recompute not json",
        "post",
        lambda c: api_url("recompute"),
        "nope",
        error="detail",
        staff=True,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_bad_input(row, catalogue, anon_client, staff_client):
    client = staff_client if row.staff else anon_client
    body = row.body(catalogue) if callable(row.body) else row.body
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs["data"] = body if isinstance(body, str) else json.dumps(body)
        kwargs["content_type"] = row.content_type
    response = getattr(client, row.method)(row.url(catalogue), **kwargs)
    assert response.status_code == row.status, response.content
    assert response["Content-Type"].startswith("application/json")
    if row.error:
        assert row.error in response.json(), response.json()


def test_field_errors_name_the_line(catalogue, anon_client):
    """Errors in a list point at the index, so a client can mark the offending line."""
    body = {
        "lines": [
            {"product": pid(catalogue, 0), "quantity": 1},
            {"product": UNKNOWN, "quantity": 1},
            {"product": pid(catalogue, 2), "quantity": 0},
        ]
    }
    response = anon_client.post(api_url("bundle-evaluate"), body, format="json")
    assert response.status_code == 400
    errors = response.json()["lines"]
    assert set(errors) == {"2"}  # shape errors first; unknown ids only once shapes are valid
    assert "quantity" in errors["2"]


def test_unknown_ids_are_listed_by_index(catalogue, anon_client):
    body = {"product_ids": [pid(catalogue, 0), UNKNOWN, UNKNOWN]}
    response = anon_client.post(api_url("cart-recommendations"), body, format="json")
    assert response.status_code == 400
    assert set(response.json()["product_ids"]) == {"1", "2"}


def test_limits_follow_the_settings(catalogue, anon_client, settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "API_MAX_CART_LINES": 2, "API_MAX_QUANTITY": 3}
    url = api_url("bundle-evaluate")
    assert anon_client.post(url, lines(3, catalogue), format="json").status_code == 400
    assert anon_client.post(url, lines(2, catalogue, 4), format="json").status_code == 400
    assert anon_client.post(url, lines(2, catalogue, 3), format="json").status_code == 200
    schema = anon_client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    assert schema["BundleEvaluateRequestRequest"]["properties"]["lines"]["maxItems"] == 2
    assert schema["CartLineRequest"]["properties"]["quantity"]["maximum"] == 3
