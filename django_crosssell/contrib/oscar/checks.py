"""System checks for an Oscar shop: the adapter line, and the order settings.

The adapter's defaults read orders through ``ORDER_SOURCE`` (:mod:`.orders`), and
django-crosssell's own checks do not validate the order-line fields and filter of a custom
source. The source still reads them, so a typo in ``ORDER_LINE_FIELDS`` or ``ORDER_FILTER``
is reported here, with the same ids, instead of failing the nightly recompute.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import FieldDoesNotExist, FieldError, ImproperlyConfigured

from django_crosssell.conf import app_settings, get_order_line_model

from . import orders


def check_adapter(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The app is installed for the adapter: without it, Oscar's offer charges nothing."""
    from django_crosssell.adapter import get_adapter

    from .adapter import OscarAdapter

    try:
        adapter = get_adapter()
    except ImproperlyConfigured:
        return []  # crosssell.E017 says so
    if isinstance(adapter, OscarAdapter):
        return []
    return [
        checks.Warning(
            "django_crosssell.contrib.oscar is installed but CROSSSELL['ADAPTER'] is "
            f"{type(adapter).__module__}.{type(adapter).__name__}, not the Oscar adapter: "
            "widgets will not read Oscar's prices, stock or baskets.",
            hint='Set CROSSSELL = {"ADAPTER": '
            '"django_crosssell.contrib.oscar.adapter.OscarAdapter"} (or a subclass).',
            obj="settings.CROSSSELL",
            id="crosssell_oscar.W001",
        )
    ]


def check_orders(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if app_settings.ORDER_SOURCE != orders.ORDER_SOURCE:
        return []  # another source: django-crosssell's own checks apply
    try:
        model = get_order_line_model()
    except ImproperlyConfigured:
        return []  # crosssell.E004 says so
    if model is None:
        return []
    fields = app_settings.ORDER_LINE_FIELDS
    problems: list[checks.CheckMessage] = []
    for key in ("order", "product", "placed_at", "customer"):
        path = fields.get(key)
        if not path:
            continue
        try:
            model._default_manager.values_list(path).query  # noqa: B018 - builds SQL only
        except (FieldError, FieldDoesNotExist) as exc:
            problems.append(
                checks.Error(
                    f"CROSSSELL['ORDER_LINE_FIELDS'][{key!r}] = {path!r} does not resolve on "
                    f"{model._meta.label}: {exc}",
                    hint="Leave it out to use the Oscar adapter's default.",
                    obj="settings.CROSSSELL",
                    id="crosssell.E005",
                )
            )
    try:
        orders.counted_lines().query  # noqa: B018 - builds SQL only
    except (FieldError, FieldDoesNotExist, ValueError, TypeError) as exc:
        if not problems:
            problems.append(
                checks.Error(
                    f"CROSSSELL['ORDER_FILTER'] is not valid on {model._meta.label}: {exc}",
                    hint="Use lookups that Oscar's order line accepts, e.g. "
                    '{"order__status": "Complete"}.',
                    obj="settings.CROSSSELL",
                    id="crosssell.E006",
                )
            )
    return problems


def register() -> None:
    checks.register(check_adapter, "crosssell")
    checks.register(check_orders, "crosssell")
