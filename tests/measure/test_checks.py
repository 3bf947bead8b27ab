"""System checks crosssell.E030-E033 and W030-W032."""

from __future__ import annotations

import pytest

from django_crosssell.measure.checks import MIDDLEWARE, check_measurement
from tests.settings import CROSSSELL
from tests.settings import MIDDLEWARE as TEST_MIDDLEWARE


def ids(settings, **extra):
    settings.CROSSSELL = {**CROSSSELL, **extra}
    return [problem.id for problem in check_measurement()]


def test_the_test_settings_are_clean(settings):
    assert ids(settings) == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"TRACKING": "sometimes"}, ["crosssell.E030"]),
        ({"TRACKING": "consent"}, ["crosssell.E031"]),
        ({"TRACKING": "consent", "TRACKING_CONSENT": "no.such.function"}, ["crosssell.E031"]),
        ({"ATTRIBUTION_WINDOW_DAYS": 0}, ["crosssell.E032"]),
        ({"EVENT_RETENTION_DAYS": "90"}, ["crosssell.E032"]),
        ({"HOLDOUT": 0.9}, ["crosssell.E033"]),
        ({"HOLDOUT": True}, ["crosssell.E033"]),
    ],
)
def test_errors(settings, extra, expected):
    assert ids(settings, **extra) == expected


def test_consent_with_a_callable_is_fine(settings):
    assert (
        ids(settings, TRACKING="consent", TRACKING_CONSENT="tests.measure.consent.from_cookie")
        == []
    )


def test_middleware_missing_or_misplaced(settings):
    settings.MIDDLEWARE = [m for m in TEST_MIDDLEWARE if m != MIDDLEWARE]
    assert ids(settings) == ["crosssell.W030"]
    assert ids(settings, TRACKING="off") == []
    settings.MIDDLEWARE = [MIDDLEWARE, *settings.MIDDLEWARE]
    assert ids(settings) == ["crosssell.W031"]


def test_endpoint_missing(settings):
    settings.ROOT_URLCONF = "tests.testapp.urls"
    assert ids(settings) == ["crosssell.W032"]
