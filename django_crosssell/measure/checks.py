"""System checks of measurement: ``crosssell.E030``... and ``crosssell.W030``...

| id | problem |
|---|---|
| E030 | ``TRACKING`` is not "always", "consent" or "off" |
| E031 | ``TRACKING`` is "consent" but ``TRACKING_CONSENT`` is empty or cannot be imported |
| E032 | a number setting of measurement is not a positive integer |
| E033 | ``HOLDOUT`` is not a number from 0 to 0.5 |
| W030 | tracking is on but ``TrackingMiddleware`` is not in ``MIDDLEWARE`` (nothing is counted) |
| W031 | ``TrackingMiddleware`` comes before ``AuthenticationMiddleware`` (staff would count) |
| W032 | the event endpoint is not in the URLconf (``django_crosssell.measure.urls``) |

Imports only ``conf``; no database access.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from ..conf import app_settings

MIDDLEWARE = "django_crosssell.measure.middleware.TrackingMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
INTEGERS = (
    "EVENT_RETENTION_DAYS",
    "ATTRIBUTION_WINDOW_DAYS",
    "TRACKING_MAX_BATCH",
    "TRACKING_MAX_BODY",
    "TRACKING_RATE_PER_MINUTE",
)


def _error(message: str, hint: str, id_: str) -> checks.Error:
    return checks.Error(message, hint=hint, obj="settings.CROSSSELL", id=f"crosssell.{id_}")


def _warning(message: str, hint: str, id_: str) -> checks.Warning:
    return checks.Warning(message, hint=hint, obj="settings.CROSSSELL", id=f"crosssell.{id_}")


@checks.register()
def check_measurement(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    mode = app_settings.TRACKING
    if mode not in ("always", "consent", "off"):
        problems.append(
            _error(
                f"CROSSSELL['TRACKING'] is {mode!r}.",
                'Use "always", "consent" (with TRACKING_CONSENT) or "off".',
                "E030",
            )
        )
    if mode == "consent":
        path = app_settings.TRACKING_CONSENT
        try:
            if not path or not callable(import_string(path)):
                raise ImportError(path)
        except ImportError:
            problems.append(
                _error(
                    f"CROSSSELL['TRACKING'] is \"consent\" but TRACKING_CONSENT ({path!r}) is "
                    "not an importable callable.",
                    "Set TRACKING_CONSENT to the dotted path of a function(request) -> bool "
                    "that says whether this visitor agreed to measurement.",
                    "E031",
                )
            )
    for name in INTEGERS:
        value = getattr(app_settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(
                _error(
                    f"CROSSSELL[{name!r}] is {value!r}.",
                    "Use a whole number of at least 1.",
                    "E032",
                )
            )
    holdout = app_settings.HOLDOUT
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout <= 0.5:
        problems.append(
            _error(
                f"CROSSSELL['HOLDOUT'] is {holdout!r}.",
                "Use a share from 0 (no holdout) to 0.5; 0.05 holds out 5% of visitors.",
                "E033",
            )
        )
    if mode in ("always", "consent"):
        middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
        if MIDDLEWARE not in middleware:
            problems.append(
                _warning(
                    "Tracking is on but TrackingMiddleware is not installed: nothing is counted.",
                    f'Add "{MIDDLEWARE}" to MIDDLEWARE after AuthenticationMiddleware, or set '
                    'CROSSSELL["TRACKING"] = "off".',
                    "W030",
                )
            )
        elif AUTH_MIDDLEWARE in middleware and middleware.index(MIDDLEWARE) < middleware.index(
            AUTH_MIDDLEWARE
        ):
            problems.append(
                _warning(
                    "TrackingMiddleware comes before AuthenticationMiddleware.",
                    "Move it after AuthenticationMiddleware so staff users are not counted.",
                    "W031",
                )
            )
        else:
            try:
                reverse("crosssell_measure:events")
            except NoReverseMatch:
                problems.append(
                    _warning(
                        "The event endpoint is not in the URLconf: views and clicks from "
                        "tracking.js are lost.",
                        'Add path("crosssell/", include("django_crosssell.measure.urls")).',
                        "W032",
                    )
                )
    return problems
