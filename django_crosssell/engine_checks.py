"""System checks of the affinity engine's settings: ``crosssell.E060``... / ``W060``...

| id | problem |
|---|---|
| E060 | ``BESTSELLERS_SOURCE`` is not ``"run"`` or ``"order_lines"`` |
| E061 | ``ORDER_WEIGHTING`` is not ``"none"``, ``"inverse_size"`` or ``"bm25"`` |
| E062 | ``MAX_BASKET_SIZE`` is not ``None`` or a whole number of at least 2 |

A bad value would otherwise fail a nightly recompute (or, for ``BESTSELLERS_SOURCE``,
silently show no bestsellers). Imports only ``conf``: no numpy, no database access.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from .conf import BESTSELLERS_SOURCES, WEIGHTING_CHOICES, app_settings


def _error(msg: str, hint: str, id_: str) -> checks.Error:
    return checks.Error(msg, hint=hint, obj="settings.CROSSSELL", id=f"crosssell.{id_}")


@checks.register("crosssell")
def check_engine_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if app_settings.BESTSELLERS_SOURCE not in BESTSELLERS_SOURCES:
        errors.append(
            _error(
                f"BESTSELLERS_SOURCE must be 'run' or 'order_lines', not "
                f"{app_settings.BESTSELLERS_SOURCE!r}.",
                "'run' (the default) reads the order counts stored with the current affinity "
                "run; 'order_lines' aggregates the order lines on every cold cache.",
                "E060",
            )
        )
    if app_settings.ORDER_WEIGHTING not in WEIGHTING_CHOICES:
        errors.append(
            _error(
                f"ORDER_WEIGHTING must be one of {', '.join(WEIGHTING_CHOICES)}, not "
                f"{app_settings.ORDER_WEIGHTING!r}.",
                "See the README's 'Choosing the defaults' for what each one measured.",
                "E061",
            )
        )
    size = app_settings.MAX_BASKET_SIZE
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 2):
        errors.append(
            _error(
                f"MAX_BASKET_SIZE must be None or a whole number of at least 2, not {size!r}.",
                "Orders with more distinct products are left out of the pairs; None keeps all.",
                "E062",
            )
        )
    return errors
