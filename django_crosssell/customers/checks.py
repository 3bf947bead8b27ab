"""System checks of the customers package: ``crosssell.E040``... and ``crosssell.W040``...

| id | problem |
|---|---|
| E040 | ``CUSTOMERS_SCORER`` is not one of the scorers |
| E041 | ``CUSTOMERS_LOOKBACK_DAYS`` or ``PERSONAL_HALF_LIFE_DAYS``: not None or days above 0 |
| E042 | a number setting of the customer model or the personal recommendations is out of range |
| W040 | order lines carry no customer (or come from ``ORDER_SOURCE``): the snapshot reads none |
| W041 | ``ORDER_LINE_FIELDS['unit_price']`` is empty: M (revenue) counts units |
| W042 | the segment map leaves R x F cells without a segment (database check) |

Imports only ``conf`` and ``customers.models``; only W042 reads the database (it runs with
``check --database default``).
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from ..conf import app_settings

SCORERS = ("quantile", "ja_repeat", "ja_one_off", "tertile")  # scoring.SCORERS, numpy-free
#: name -> minimum
INTEGERS = {
    "CUSTOMERS_KEEP_SNAPSHOTS": 1,
    "CUSTOMERS_MODEL_TOP_K": 1,
    "CUSTOMERS_MODEL_MAX_ITEMS": 2,
    "PERSONAL_HISTORY_ITEMS": 1,
}


def _error(message: str, hint: str, id_: str) -> checks.Error:
    return checks.Error(message, hint=hint, obj="settings.CROSSSELL", id=f"crosssell.{id_}")


def _warning(message: str, hint: str, id_: str) -> checks.Warning:
    return checks.Warning(message, hint=hint, obj="settings.CROSSSELL", id=f"crosssell.{id_}")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@checks.register("crosssell")
def check_customer_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    scorer = app_settings.CUSTOMERS_SCORER
    if scorer not in SCORERS:
        problems.append(
            _error(
                f"CROSSSELL['CUSTOMERS_SCORER'] is {scorer!r}.",
                f"Use one of {', '.join(SCORERS)}.",
                "E040",
            )
        )
    for name in ("CUSTOMERS_LOOKBACK_DAYS", "PERSONAL_HALF_LIFE_DAYS"):
        value = getattr(app_settings, name)
        if value is not None and not _positive(value):
            problems.append(
                _error(
                    f"CROSSSELL[{name!r}] is {value!r}.",
                    "Use None or a number of days above 0.",
                    "E041",
                )
            )
    for name, minimum in INTEGERS.items():
        value = getattr(app_settings, name)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
            problems.append(
                _error(
                    f"CROSSSELL[{name!r}] is {value!r}.",
                    f"Use a whole number of at least {minimum}.",
                    "E042",
                )
            )
    if not _positive(app_settings.CUSTOMERS_MODEL_L2):
        problems.append(
            _error(
                f"CROSSSELL['CUSTOMERS_MODEL_L2'] is {app_settings.CUSTOMERS_MODEL_L2!r}.",
                "Use a number above 0 (200 was the measured best).",
                "E042",
            )
        )
    problems.extend(_source_warnings())
    return problems


def _source_warnings() -> list[checks.CheckMessage]:
    from ..adapter import CrossSellAdapter, get_adapter

    try:
        adapter = get_adapter()
    except Exception:
        return []
    if type(adapter).customer_order_lines is not CrossSellAdapter.customer_order_lines:
        return []  # the host feeds the snapshot itself
    fields = app_settings.ORDER_LINE_FIELDS
    if not app_settings.ORDER_LINE_MODEL and not app_settings.ORDER_SOURCE:
        return []  # no orders at all: computed affinity is off too
    if app_settings.ORDER_SOURCE or not fields.get("customer") or not fields.get("placed_at"):
        return [
            _warning(
                "The customer snapshot cannot read customers from the order lines "
                "(ORDER_SOURCE is set, or ORDER_LINE_FIELDS has no 'customer' or 'placed_at').",
                "Set ORDER_LINE_FIELDS['customer'] and ['placed_at'], or override the "
                "adapter's customer_order_lines(); until then RFM, audiences by metrics and "
                "personal recommendations have no customers.",
                "W040",
            )
        ]
    if not fields.get("unit_price"):
        return [
            _warning(
                "ORDER_LINE_FIELDS['unit_price'] is empty: M (revenue) counts units bought.",
                "Set ORDER_LINE_FIELDS['unit_price'] to the order line's unit price.",
                "W041",
            )
        ]
    return []


@checks.register("crosssell", checks.Tags.database)
def check_segment_map(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    databases = kwargs.get("databases") or []
    if "default" not in databases:
        return []
    from .models import Segment

    try:
        segments = list(Segment.objects.all())
    except Exception:
        return []
    missing = [
        f"R{r}F{f}"
        for r in range(1, 6)
        for f in range(1, 6)
        if not any(segment.covers(r, f) for segment in segments)
    ]
    if not missing:
        return []
    return [
        checks.Warning(
            f"No customer segment covers {', '.join(missing)}.",
            hint="Customers in these cells get no segment; widen a segment's R or F range in "
            "the admin (Customer segments).",
            obj="django_crosssell.Segment",
            id="crosssell.W042",
        )
    ]
