from __future__ import annotations

import pytest
from django.test import override_settings

from django_crosssell.load_checks import check_load_settings
from tests.settings import CROSSSELL


def ids(**values) -> list[str]:
    with override_settings(CROSSSELL={**CROSSSELL, **values}):
        return [message.id for message in check_load_settings()]


def test_the_defaults_pass():
    assert ids() == []


@pytest.mark.parametrize(
    "name, value",
    [
        ("QUERY_TIMEOUT_MS", 0),
        ("LOCK_TIMEOUT_MS", "200"),
        ("NUM_PROXIES", -1),
        ("NUM_PROXIES", True),
        ("API_MAX_BODY_BYTES", 10),
        ("MAX_YEAR", 9999),
        ("STALE_SECONDS", None),
        ("RECOMPUTE_MAX_SECONDS", 1),
    ],
)
def test_out_of_range_values_are_errors(name, value):
    assert ids(**{name: value}) == ["crosssell.E070"]


def test_no_time_limit_at_all_is_a_warning():
    assert ids(QUERY_TIMEOUT_MS=None, LOCK_TIMEOUT_MS=None) == ["crosssell.W070"]
    assert ids(QUERY_TIMEOUT_MS=None) == []
