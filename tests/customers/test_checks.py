"""System checks crosssell.E040-E042 and W040-W042."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from django_crosssell.customers.checks import check_customer_settings, check_segment_map
from django_crosssell.models import Segment


def ids(**overrides) -> list[str]:
    with override_settings(CROSSSELL={**settings.CROSSSELL, **overrides}):
        return [message.id for message in check_customer_settings()]


def test_defaults_are_clean():
    assert ids() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"CUSTOMERS_SCORER": "rfm"}, "crosssell.E040"),
        ({"CUSTOMERS_LOOKBACK_DAYS": 0}, "crosssell.E041"),
        ({"PERSONAL_HALF_LIFE_DAYS": "30"}, "crosssell.E041"),
        ({"CUSTOMERS_MODEL_TOP_K": 0}, "crosssell.E042"),
        ({"PERSONAL_HISTORY_ITEMS": True}, "crosssell.E042"),
        ({"CUSTOMERS_MODEL_L2": -1}, "crosssell.E042"),
        ({"ORDER_SOURCE": "tests.adapters.order_source"}, "crosssell.W040"),
    ],
)
def test_each_mistake_has_its_id(overrides, expected):
    assert expected in ids(**overrides)


def test_no_unit_price_warns():
    fields = {**settings.CROSSSELL.get("ORDER_LINE_FIELDS", {}), "unit_price": None}
    assert ids(ORDER_LINE_FIELDS=fields) == ["crosssell.W041"]


@pytest.mark.django_db
def test_uncovered_cells_warn():
    assert check_segment_map(databases=["default"]) == []
    Segment.objects.filter(slug="hibernating").delete()
    messages = check_segment_map(databases=["default"])
    assert [m.id for m in messages] == ["crosssell.W042"]
    assert "R1F1" in messages[0].msg
    assert check_segment_map() == []  # without --database nothing is read
