"""System checks of the affinity engine's settings: ``crosssell.E060``... / ``W060``...

| id | problem |
|---|---|
| E060 | ``BESTSELLERS_SOURCE`` is not ``"run"`` or ``"order_lines"`` |
| E061 | ``ORDER_WEIGHTING`` is not ``"none"``, ``"inverse_size"`` or ``"bm25"`` |
| E062 | ``MAX_BASKET_SIZE`` is not ``None`` or a whole number of at least 2 |
| E063 | ``SIMILAR_CATEGORY`` is not ``"boost"``, ``"restrict"`` or ``None`` |
| E064 | ``SIMILAR_TEXT_FIELDS`` is not a non-empty list of the product model's fields |
| E066 | ``ENGINE`` is not ``"local"`` or ``"dask"`` |
| E067 | ``ENGINE = "dask"`` without ``DASK_SCHEDULER`` (the address of an existing cluster) |
| E068 | ``ENGINE = "dask"`` but ``dask.distributed`` is not installed (``[dask]`` extra) |
| E069 | ``INCREMENTAL_RECONCILE_DAYS`` is not ``None`` or a number of days above 0 |
| E065 | ``SIMILAR_TOP_K`` is not an integer >= 1, or ``SIMILAR_MIN_SCORE`` not in [0, 1] |
| E090 | ``DASK_READ`` is not ``"local"`` or ``"sharded"`` |
| E091 | ``DASK_SHARDS`` is not ``None`` or a whole number of at least 1 |
| E092 | ``DASK_READ = "sharded"`` without ``ENGINE = "dask"`` |
| E093 | ``DASK_READ = "sharded"`` with ``ORDER_SOURCE`` or an adapter's own ``order_lines()`` |
| E094 | ``DASK_READ = "sharded"`` with ``INCREMENTAL`` (its counts hold every basket) |
| E095 | ``READ_WORK_MEM`` is not ``None`` or a PostgreSQL memory size such as ``"64MB"`` |

A bad value would otherwise fail a nightly recompute (or, for ``BESTSELLERS_SOURCE``,
silently show no bestsellers). Imports ``conf`` (and ``adapter`` inside a function): no
numpy, no database access.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured

from .conf import (
    BESTSELLERS_SOURCES,
    DASK_READ_CHOICES,
    ENGINE_CHOICES,
    SIMILAR_CATEGORY_CHOICES,
    WEIGHTING_CHOICES,
    app_settings,
    get_product_model,
)


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
    memory = app_settings.READ_WORK_MEM
    if memory is not None and (
        not isinstance(memory, str) or not re.fullmatch(r"[1-9][0-9]*\s*(kB|MB|GB|TB)", memory)
    ):
        errors.append(
            _error(
                f"READ_WORK_MEM must be None or a memory size such as '64MB', not {memory!r}.",
                "PostgreSQL's work_mem for the recompute's binary COPY of the order lines "
                "(units kB, MB, GB or TB); None keeps the server's own.",
                "E095",
            )
        )
    errors.extend(_check_similar())
    errors.extend(_check_engine())
    errors.extend(_check_sharded_read())
    return errors


def _check_sharded_read() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    read, shards = app_settings.DASK_READ, app_settings.DASK_SHARDS
    if read not in DASK_READ_CHOICES:
        errors.append(
            _error(
                f"DASK_READ must be 'local' or 'sharded', not {read!r}.",
                "'local' reads every order line in the recompute's process; 'sharded' has each "
                "Dask worker read a range of order ids.",
                "E090",
            )
        )
    if shards is not None and (
        isinstance(shards, bool) or not isinstance(shards, int) or shards < 1
    ):
        errors.append(
            _error(
                f"DASK_SHARDS must be None or a whole number of at least 1, not {shards!r}.",
                "None reads two order-id ranges per worker thread of the cluster.",
                "E091",
            )
        )
    if read != "sharded":
        return errors
    if app_settings.ENGINE != "dask":
        errors.append(
            _error(
                "DASK_READ = 'sharded' needs ENGINE = 'dask' (and DASK_SCHEDULER).",
                "Set ENGINE to 'dask', or DASK_READ to 'local'.",
                "E092",
            )
        )
    from .adapter import CrossSellAdapter, get_adapter

    try:
        own_lines = type(get_adapter()).order_lines is not CrossSellAdapter.order_lines
    except ImproperlyConfigured:
        own_lines = False  # crosssell.E017 reports it
    if app_settings.ORDER_SOURCE or own_lines:
        what = "ORDER_SOURCE" if app_settings.ORDER_SOURCE else "the adapter's order_lines()"
        errors.append(
            _error(
                f"DASK_READ = 'sharded' cannot shard {what}: the workers read "
                "ORDER_LINE_MODEL by ranges of order ids.",
                "Read the lines from ORDER_LINE_MODEL, or set DASK_READ to 'local'.",
                "E093",
            )
        )
    if app_settings.INCREMENTAL:
        errors.append(
            _error(
                "DASK_READ = 'sharded' with INCREMENTAL = True: the counts an incremental "
                "run keeps hold every order's basket in the recompute's process.",
                "Choose one: INCREMENTAL for small daily slides, or the sharded read for a "
                "window too large for one machine.",
                "E094",
            )
        )
    return errors


def _check_engine() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    engine = app_settings.ENGINE
    if engine not in ENGINE_CHOICES:
        errors.append(
            _error(
                f"ENGINE must be 'local' or 'dask', not {engine!r}.",
                "'local' computes in the recompute's process; 'dask' on a Dask cluster.",
                "E066",
            )
        )
    elif engine == "dask":
        if not app_settings.DASK_SCHEDULER:
            errors.append(
                _error(
                    "ENGINE = 'dask' needs DASK_SCHEDULER, the address of a running scheduler.",
                    "e.g. 'tcp://10.0.0.5:8786'. The recompute never starts a cluster itself.",
                    "E067",
                )
            )
        if importlib.util.find_spec("distributed") is None:
            errors.append(
                _error(
                    "ENGINE = 'dask' but dask.distributed is not installed.",
                    "pip install 'django-crosssell[dask]'",
                    "E068",
                )
            )
    days = app_settings.INCREMENTAL_RECONCILE_DAYS
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int | float) or days <= 0
    ):
        errors.append(
            _error(
                f"INCREMENTAL_RECONCILE_DAYS must be None or a number above 0, not {days!r}.",
                "Incremental runs become full ones after this many days (7 by default).",
                "E069",
            )
        )
    return errors


def _check_similar() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    mode = app_settings.SIMILAR_CATEGORY
    if mode not in SIMILAR_CATEGORY_CHOICES:
        errors.append(
            _error(
                f"SIMILAR_CATEGORY must be 'boost', 'restrict' or None, not {mode!r}.",
                "'boost' favours same-category neighbours, 'restrict' keeps only them.",
                "E063",
            )
        )
    fields = app_settings.SIMILAR_TEXT_FIELDS
    hint = "A list of text fields of the product model, e.g. ['name', 'description']."
    if (
        isinstance(fields, str)
        or not isinstance(fields, list | tuple)
        or not fields
        or not all(isinstance(name, str) for name in fields)
    ):
        errors.append(
            _error(
                f"SIMILAR_TEXT_FIELDS must be a list of field names, not {fields!r}.", hint, "E064"
            )
        )
    else:
        try:
            model = get_product_model()
        except ImproperlyConfigured:
            model = None  # crosssell.E001/E002 report it
        for name in fields if model is not None else ():
            try:
                model._meta.get_field(name)  # type: ignore[union-attr]
            except FieldDoesNotExist:
                errors.append(
                    _error(
                        f"SIMILAR_TEXT_FIELDS names {name!r}, which is not a field of "
                        f"{model._meta.label}.",  # type: ignore[union-attr]
                        hint,
                        "E064",
                    )
                )
    top_k, min_score = app_settings.SIMILAR_TOP_K, app_settings.SIMILAR_MIN_SCORE
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        errors.append(
            _error(
                f"SIMILAR_TOP_K must be a whole number of at least 1, not {top_k!r}.", "", "E065"
            )
        )
    if (
        isinstance(min_score, bool)
        or not isinstance(min_score, int | float)
        or not 0 <= min_score <= 1
    ):
        errors.append(
            _error(
                f"SIMILAR_MIN_SCORE must be a number from 0 to 1, not {min_score!r}.",
                "0.1 keeps names sharing a few character pieces; raise it for closer matches.",
                "E065",
            )
        )
    return errors
