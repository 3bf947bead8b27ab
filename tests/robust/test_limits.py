"""Input cost bounded before per-item work; dates and numbers within sane ranges; every
error on the JSON endpoints is JSON and translated."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from rest_framework.test import APIClient

from django_crosssell.api import fields
from django_crosssell.api.parsers import BodyTooLarge, StrictJSONParser
from django_crosssell.errors import RecomputeParameterError
from django_crosssell.models import ProductRelation
from django_crosssell.params import resolve_parameters
from tests.api.helpers import api_url
from tests.factories import ProductFactory
from tests.settings import CROSSSELL

pytestmark = pytest.mark.django_db


def test_a_huge_list_body_is_refused_unread(anon_client):
    body = json.dumps({"product_ids": [1] * 1_200_000}, separators=(",", ":"))  # 2.4 MB
    assert len(body) > 2_000_000
    with mock.patch.object(fields.ProductIdField, "to_internal_value") as item:
        response = anon_client.post(
            api_url("cart-recommendations"), body, content_type="application/json"
        )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "too large" in response.json()["detail"]
    assert item.call_count == 0


def test_a_body_without_content_length_is_cut_at_the_limit():
    with override_settings(CROSSSELL={**CROSSSELL, "API_MAX_BODY_BYTES": 2048}):
        parser = StrictJSONParser()
        with pytest.raises(BodyTooLarge):
            parser.parse(io.BytesIO(b"[" + b"1," * 2000 + b"1]"), "application/json", {})
        assert parser.parse(io.BytesIO(b"[1, 2]"), "application/json", {}) == [1, 2]


def test_a_long_list_is_refused_before_its_items_are_validated(anon_client):
    ids = [str(ProductFactory().pk)] + ["not-an-id"] * 60
    with mock.patch.object(
        fields.ProductIdField, "to_internal_value", side_effect=AssertionError("validated")
    ):
        response = anon_client.post(
            api_url("cart-recommendations"), {"product_ids": ids}, format="json"
        )
        lines = anon_client.post(
            api_url("bundle-evaluate"),
            {"lines": [{"product": "x", "quantity": 1}] * 51},
            format="json",
        )
    assert response.status_code == 400
    assert response.json() == {"product_ids": ["Ensure this field has no more than 50 elements."]}
    assert lines.status_code == 400
    assert lines.json() == {"lines": ["Ensure this field has no more than 50 elements."]}


def test_the_list_length_error_is_translated():
    client = APIClient()
    response = client.post(
        api_url("cart-recommendations"),
        {"product_ids": ["x"] * 51},
        format="json",
        HTTP_ACCEPT_LANGUAGE="ja",
    )
    assert response.status_code == 400
    message = response.json()["product_ids"][0]
    assert "50" in message and "Ensure" not in message


def test_a_year_9999_date_is_a_field_error(catalogue, staff_client):
    response = staff_client.patch(
        api_url("relation-detail", catalogue["relation"].pk),
        {"ends_at": "9999-12-31T23:59:59Z"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"ends_at": ["Enter a date in or before 2100."]}
    rule = staff_client.patch(
        api_url("bundle-rule-detail", catalogue["rule"].pk),
        {"starts_at": "2500-01-01T00:00:00Z"},
        format="json",
    )
    assert rule.status_code == 400 and "starts_at" in rule.json()
    assert staff_client.get(api_url("relation-list")).status_code == 200


def test_the_model_refuses_a_far_date_too(catalogue):
    """What the admin forms run (full_clean), so the admin shows the same field error."""
    relation = catalogue["relation"]
    relation.ends_at = datetime(9999, 12, 31, tzinfo=UTC)
    with pytest.raises(ValidationError) as raised:
        relation.full_clean()
    assert raised.value.message_dict == {"ends_at": ["Enter a date in or before 2100."]}
    relation.ends_at = None
    relation.starts_at = datetime(1, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError) as raised:
        relation.full_clean()
    assert raised.value.message_dict == {"starts_at": ["Enter a date in or after 1970."]}
    relation.starts_at = datetime(2026, 1, 1, tzinfo=UTC)
    relation.ends_at = datetime(2100, 12, 31, tzinfo=UTC)
    relation.full_clean()
    assert isinstance(relation, ProductRelation)


def test_the_admin_form_shows_the_date_error(catalogue, admin_client):
    relation = catalogue["relation"]
    url = f"/admin/django_crosssell/productrelation/{relation.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    data = {
        "source": str(relation.source_id),
        "target": str(relation.target_id),
        "kind": relation.kind,
        "position": relation.position,
        "is_active": "on",
        "note": "",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "9999-12-31",
        "ends_at_1": "23:59:59",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert "Enter a date in or before 2100." in response.content.decode()
    relation.refresh_from_db()
    assert relation.ends_at is None


@pytest.mark.parametrize("value", [1e-300, 0.01, -1, float("inf")])
def test_half_life_below_one_hour_is_refused(value, staff_client):
    with pytest.raises(RecomputeParameterError):
        resolve_parameters(half_life_days=value)
    if value != float("inf"):  # JSON has no infinity
        response = staff_client.post(api_url("recompute"), {"half_life_days": value}, format="json")
        assert response.status_code == 400
        assert "half_life_days" in response.json()


def test_half_life_of_zero_or_an_hour_is_fine():
    assert resolve_parameters(half_life_days=0)["half_life_days"] is None
    assert resolve_parameters(half_life_days=1 / 24)["half_life_days"] == pytest.approx(1 / 24)
