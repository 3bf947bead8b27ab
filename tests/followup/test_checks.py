"""crosssell.E080... / W080...: what the law and the mail need, checked at start-up."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_crosssell.followup.checks import check_followup

from .conftest import SENDER


def ids(**crosssell):
    with override_settings(CROSSSELL=crosssell):
        return sorted(message.id for message in check_followup())


def test_switched_off_nothing_is_required():
    assert ids() == []


def test_a_complete_sender_passes():
    assert ids(**SENDER) == []


def test_each_missing_sender_item_is_an_error_with_a_hint():
    assert ids(FOLLOWUP_ENABLED=True, FOLLOWUP_FROM_EMAIL="shop@example.jp") == [
        "crosssell.E080",
        "crosssell.E081",
        "crosssell.E082",
        "crosssell.E083",
        "crosssell.W081",
    ]
    with override_settings(CROSSSELL={"FOLLOWUP_ENABLED": True}):
        (name,) = [m for m in check_followup() if m.id == "crosssell.E080"]
    assert "特定電子メール法" in name.hint


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("FOLLOWUP_SITE_URL", "http://shop.example.jp", "crosssell.W080"),
        ("FOLLOWUP_SITE_URL", "shop.example.jp", "crosssell.E083"),
        ("FOLLOWUP_SENDER_PHONE", "", "crosssell.W081"),
        ("FOLLOWUP_FROM_EMAIL", None, "crosssell.W082"),
        ("FOLLOWUP_FREQUENCY_CAPS", [[1]], "crosssell.E084"),
        ("FOLLOWUP_QUIET_HOURS", [21, 24], "crosssell.E084"),
        ("FOLLOWUP_ITEMS", 0, "crosssell.E084"),
        ("SUBSCRIPTION_MAX_CV", "low", "crosssell.E084"),
        ("FOLLOWUP_TIME_ZONE", "Mars/Olympus", "crosssell.E085"),
        ("FOLLOWUP_AUDIENCE_RESOLVER", "no.such.resolver", "crosssell.E087"),
    ],
)
def test_bad_values(setting, value, expected):
    assert ids(**{**SENDER, setting: value}) == [expected]


def test_value_errors_are_reported_even_when_switched_off():
    assert ids(FOLLOWUP_QUIET_HOURS="nights") == ["crosssell.E084"]


@override_settings(ROOT_URLCONF="tests.testapp.urls")
def test_the_unsubscribe_url_must_be_routed():
    assert ids(**SENDER) == ["crosssell.E086"]


def test_quiet_hours_may_be_off_and_caps_empty():
    assert ids(**SENDER, FOLLOWUP_QUIET_HOURS=None, FOLLOWUP_FREQUENCY_CAPS=[]) == []


def test_manage_py_check_runs_them():
    from django.core import checks

    with override_settings(CROSSSELL={"FOLLOWUP_ENABLED": True}):
        found = {message.id for message in checks.run_checks()}
    assert {"crosssell.E080", "crosssell.E081", "crosssell.E082"} <= found
