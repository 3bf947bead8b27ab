"""Who may call what: anonymous, customer, staff (with and without model permissions)
against every endpoint and method of the REST API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.api.helpers import api_url

pytestmark = pytest.mark.django_db


@dataclass
class Call:
    name: str
    method: str
    url: Callable[[dict], str]
    body: Callable[[dict], Any] | None
    ok: int
    public: bool


def pid(cat: dict, index: int) -> str:
    return str(cat["products"][index].pk)


def relation_body(cat: dict) -> dict:
    return {"source": pid(cat, 2), "target": pid(cat, 3), "kind": "related", "position": 2}


def ladder_body(cat: dict) -> dict:
    return {
        "name": "Grinders",
        "slug": "grinders",
        "steps": [{"rank": 1, "product": pid(cat, 2)}, {"rank": 2, "product": pid(cat, 3)}],
    }


def rule_body(cat: dict) -> dict:
    return {
        "name": "Duo",
        "slug": "duo",
        "kind": "fixed_set",
        "discount_type": "amount",
        "value": "100",
        "items": [{"product": pid(cat, 3)}, {"product": pid(cat, 4)}],
    }


CALLS = [
    Call(
        "recommendations",
        "get",
        lambda c: api_url("product-recommendations", pid(c, 0)),
        None,
        200,
        True,
    ),
    Call("upgrades", "get", lambda c: api_url("product-upgrades", pid(c, 0)), None, 200, True),
    Call(
        "cart",
        "post",
        lambda c: api_url("cart-recommendations"),
        lambda c: {"product_ids": [pid(c, 0)]},
        200,
        True,
    ),
    Call(
        "evaluate",
        "post",
        lambda c: api_url("bundle-evaluate"),
        lambda c: {"lines": [{"product": pid(c, 0), "quantity": 1}]},
        200,
        True,
    ),
    Call(
        "offers",
        "get",
        lambda c: api_url("bundle-offers") + f"?product={pid(c, 0)}",
        None,
        200,
        True,
    ),
    Call("affinity", "get", lambda c: api_url("product-affinity", pid(c, 0)), None, 200, False),
    Call("recompute", "post", lambda c: api_url("recompute"), lambda c: {}, 202, False),
    Call("runs-list", "get", lambda c: api_url("run-list"), None, 200, False),
    Call("runs-detail", "get", lambda c: api_url("run-detail", c["run"].pk), None, 200, False),
    Call("relations-list", "get", lambda c: api_url("relation-list"), None, 200, False),
    Call("relations-create", "post", lambda c: api_url("relation-list"), relation_body, 201, False),
    Call(
        "relations-detail",
        "get",
        lambda c: api_url("relation-detail", c["relation"].pk),
        None,
        200,
        False,
    ),
    Call(
        "relations-put",
        "put",
        lambda c: api_url("relation-detail", c["relation"].pk),
        relation_body,
        200,
        False,
    ),
    Call(
        "relations-patch",
        "patch",
        lambda c: api_url("relation-detail", c["relation"].pk),
        lambda c: {"position": 5},
        200,
        False,
    ),
    Call(
        "relations-delete",
        "delete",
        lambda c: api_url("relation-detail", c["relation"].pk),
        None,
        204,
        False,
    ),
    Call("ladders-list", "get", lambda c: api_url("ladder-list"), None, 200, False),
    Call("ladders-create", "post", lambda c: api_url("ladder-list"), ladder_body, 201, False),
    Call(
        "ladders-detail",
        "get",
        lambda c: api_url("ladder-detail", c["ladder"].pk),
        None,
        200,
        False,
    ),
    Call(
        "ladders-put",
        "put",
        lambda c: api_url("ladder-detail", c["ladder"].pk),
        ladder_body,
        200,
        False,
    ),
    Call(
        "ladders-patch",
        "patch",
        lambda c: api_url("ladder-detail", c["ladder"].pk),
        lambda c: {"name": "Renamed"},
        200,
        False,
    ),
    Call(
        "ladders-delete",
        "delete",
        lambda c: api_url("ladder-detail", c["ladder"].pk),
        None,
        204,
        False,
    ),
    Call("rules-list", "get", lambda c: api_url("bundle-rule-list"), None, 200, False),
    Call("rules-create", "post", lambda c: api_url("bundle-rule-list"), rule_body, 201, False),
    Call(
        "rules-detail",
        "get",
        lambda c: api_url("bundle-rule-detail", c["rule"].pk),
        None,
        200,
        False,
    ),
    Call(
        "rules-put",
        "put",
        lambda c: api_url("bundle-rule-detail", c["rule"].pk),
        rule_body,
        200,
        False,
    ),
    Call(
        "rules-patch",
        "patch",
        lambda c: api_url("bundle-rule-detail", c["rule"].pk),
        lambda c: {"priority": 3},
        200,
        False,
    ),
    Call(
        "rules-delete",
        "delete",
        lambda c: api_url("bundle-rule-detail", c["rule"].pk),
        None,
        204,
        False,
    ),
]


def send(client: APIClient, call: Call, cat: dict):
    kwargs = {"format": "json"} if call.body is not None else {}
    if call.body is not None:
        kwargs["data"] = call.body(cat)
    return getattr(client, call.method)(call.url(cat), **kwargs)


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_anonymous(call, catalogue, anon_client):
    response = send(anon_client, call, catalogue)
    if call.public:
        assert response.status_code == call.ok, response.content
    else:
        # 403 with session authentication first (DRF's default), 401 with a challenge.
        assert response.status_code in (401, 403), response.content
        assert "detail" in response.json()


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_customer(call, catalogue, customer_client):
    response = send(customer_client, call, catalogue)
    expected = call.ok if call.public else 403
    assert response.status_code == expected, response.content


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_staff_with_permissions(call, catalogue, staff_client):
    response = send(staff_client, call, catalogue)
    assert response.status_code == call.ok, response.content


@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
def test_staff_without_model_permissions(call, catalogue, django_user_model):
    """Being staff is not enough: the admin's model permission is needed too."""
    user = django_user_model.objects.create_user("intern", password="x", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    response = send(client, call, catalogue)
    expected = call.ok if call.public else 403
    assert response.status_code == expected, response.content


def test_view_permission_alone_reads_but_cannot_write(catalogue, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_productrelation"))
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(api_url("relation-list")).status_code == 200
    url = api_url("relation-detail", catalogue["relation"].pk)
    assert client.patch(url, {"position": 1}, format="json").status_code == 403
    assert client.delete(url).status_code == 403


def test_anonymous_write_gets_401_when_the_first_authenticator_sends_a_challenge(
    catalogue, monkeypatch
):
    """With Basic (or token) authentication first, DRF answers 401 and a challenge."""
    from rest_framework.authentication import BasicAuthentication

    from django_crosssell.api import views

    monkeypatch.setattr(views.RecomputeView, "authentication_classes", [BasicAuthentication])
    response = APIClient().post(api_url("recompute"), {}, format="json")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_session_login_needs_csrf_for_writes(catalogue, customer_user):
    """A logged-in browser session must send the CSRF token, like any Django form."""
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="customer", password="customer-pass")
    response = client.post(
        api_url("cart-recommendations"), {"product_ids": [pid(catalogue, 0)]}, format="json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
