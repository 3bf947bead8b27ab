"""The parameters of a recompute: their names, defaults from settings and validation.

No numpy: the REST API and the task validate parameters with this module in processes that
never run the engine. The metric names are ``conf.METRIC_CHOICES`` (``affinity.METRICS``
repeats them for the engine; a test keeps the two equal).
"""

from __future__ import annotations

import math
from typing import Any

from .conf import ENGINE_CHOICES, METRIC_CHOICES, WEIGHTING_CHOICES, app_settings
from .errors import RecomputeParameterError
from .limits import MIN_DAYS

#: Keyword arguments of a recompute that override the ``CROSSSELL`` settings for one run.
PARAMETER_NAMES = (
    "min_co_count",
    "top_k",
    "lookback_days",
    "half_life_days",
    "metric",
    "order_weighting",
    "max_basket_size",
    "engine",
)


def resolve_parameters(
    *,
    min_co_count: int | None = None,
    top_k: int | None = None,
    lookback_days: float | None = None,
    half_life_days: float | None = None,
    metric: str | None = None,
    order_weighting: str | None = None,
    max_basket_size: int | None = None,
    engine: str | None = None,
) -> dict[str, Any]:
    """Fill ``None`` from settings and validate.

    ``0`` switches a limit off: ``top_k=0`` keeps every partner, ``lookback_days=0`` reads
    every order, ``half_life_days=0`` weighs every order the same, ``max_basket_size=0``
    keeps every order in the pairs.
    """
    params = {
        "min_co_count": app_settings.MIN_CO_COUNT if min_co_count is None else min_co_count,
        "top_k": app_settings.TOP_K if top_k is None else top_k,
        "lookback_days": app_settings.LOOKBACK_DAYS if lookback_days is None else lookback_days,
        "half_life_days": (
            app_settings.HALF_LIFE_DAYS if half_life_days is None else half_life_days
        ),
        "metric": app_settings.METRIC if metric is None else metric,
        "order_weighting": (
            app_settings.ORDER_WEIGHTING if order_weighting is None else order_weighting
        ),
        "max_basket_size": (
            app_settings.MAX_BASKET_SIZE if max_basket_size is None else max_basket_size
        ),
        "engine": app_settings.ENGINE if engine is None else engine,
    }
    for name, least in (("min_co_count", 1), ("top_k", 0)):
        value = params[name]
        if value is None and name == "top_k":  # TOP_K = None in settings: every partner
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise RecomputeParameterError(
                f"{name} must be a whole number of at least {least}.", name
            )
    if params["top_k"] == 0:
        params["top_k"] = None
    for name in ("lookback_days", "half_life_days"):
        value = params[name]
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
            or 0 < value < MIN_DAYS
        ):
            raise RecomputeParameterError(
                f"{name} must be 0 or a number of days of at least one hour ({MIN_DAYS:.4f}).",
                name,
            )
        params[name] = None if value == 0 else value
    size = params["max_basket_size"]
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or (size != 0 and size < 2):
            raise RecomputeParameterError(
                "max_basket_size must be a whole number of at least 2, or 0.", "max_basket_size"
            )
        params["max_basket_size"] = None if size == 0 else size
    if params["order_weighting"] not in WEIGHTING_CHOICES:
        raise RecomputeParameterError(
            f"order_weighting must be one of {', '.join(WEIGHTING_CHOICES)}, "
            f"not {params['order_weighting']!r}.",
            "order_weighting",
        )
    if params["engine"] not in ENGINE_CHOICES:
        raise RecomputeParameterError(
            f"engine must be one of {', '.join(ENGINE_CHOICES)}, not {params['engine']!r}.",
            "engine",
        )
    if params["engine"] == "dask" and not app_settings.DASK_SCHEDULER:
        raise RecomputeParameterError(
            "engine 'dask' needs DASK_SCHEDULER, the address of a running Dask scheduler.",
            "engine",
        )
    if params["metric"] not in METRIC_CHOICES:
        raise RecomputeParameterError(
            f"metric must be one of {', '.join(METRIC_CHOICES)}, not {params['metric']!r}.",
            "metric",
        )
    return params
