"""System checks of the load and fault settings (README "Load and faults").

| id | problem |
|---|---|
| E070 | a timeout, wait or limit setting is not an integer in its allowed range |
| W070 | ``QUERY_TIMEOUT_MS`` and ``LOCK_TIMEOUT_MS`` are both None: a locked table hangs pages |
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from .conf import DEFAULTS, app_settings

# name -> (minimum, maximum, allow None)
BOUNDS: dict[str, tuple[int, int, bool]] = {
    "QUERY_TIMEOUT_MS": (1, 600_000, True),
    "LOCK_TIMEOUT_MS": (1, 600_000, True),
    "STALE_SECONDS": (0, 7 * 24 * 3600, False),
    "CACHE_LOCK_WAIT_MS": (0, 60_000, False),
    "NUM_PROXIES": (0, 10, False),
    "API_MAX_BODY_BYTES": (1024, 100 * 1024 * 1024, False),
    "MAX_YEAR": (2000, 9998, False),
    "RECOMPUTE_MAX_SECONDS": (60, 7 * 24 * 3600, False),
}


@checks.register("crosssell")
def check_load_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if not isinstance(getattr(settings, "CROSSSELL", {}), dict):
        return []  # crosssell.E003 says so
    errors: list[checks.CheckMessage] = []
    for name, (minimum, maximum, nullable) in BOUNDS.items():
        value = getattr(app_settings, name)
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            errors.append(
                checks.Error(
                    f"CROSSSELL['{name}'] must be an integer from {minimum} to {maximum}"
                    + (" or None" if nullable else "")
                    + f", not {value!r}.",
                    hint=f"Remove it to use the default ({DEFAULTS[name]!r}).",
                    obj="settings.CROSSSELL",
                    id="crosssell.E070",
                )
            )
    if app_settings.QUERY_TIMEOUT_MS is None and app_settings.LOCK_TIMEOUT_MS is None:
        errors.append(
            checks.Warning(
                "Widget and storefront API queries run without a time limit.",
                hint="A locked or slow table then holds every product page until the web "
                "server kills its worker. Set CROSSSELL['LOCK_TIMEOUT_MS'] (e.g. 200) at least.",
                obj="settings.CROSSSELL",
                id="crosssell.W070",
            )
        )
    return errors
