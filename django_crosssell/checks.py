"""System checks: a misconfigured host sees ``crosssell.E0xx`` at ``manage.py check``.

Every setting that would otherwise fail deep inside a widget render or a nightly recompute is
validated here, at start-up, with a hint that says what to write instead.

| id | problem |
|---|---|
| E001 | ``CROSSSELL_PRODUCT_MODEL`` missing or not ``"app_label.ModelName"`` |
| E002 | ``CROSSSELL_PRODUCT_MODEL`` names a model that is not installed |
| E003 | ``CROSSSELL`` is not a dict |
| E004 | ``ORDER_LINE_MODEL`` is not an installed model |
| E005 | an ``ORDER_LINE_FIELDS`` path does not resolve on the order-line model |
| E006 | ``ORDER_FILTER`` / ``AVAILABLE_PRODUCTS_FILTER`` is not a dict of valid lookups |
| E007 | ``PRICE_FIELD`` / ``CATEGORY_FIELD`` / ``IMAGE_FIELD`` is not a field of the product |
| E008 | a number setting is not an integer in its allowed range |
| E009 | ``METRIC`` is not a known metric |
| E010 | ``CACHE_ALIAS`` is not in ``CACHES`` |
| E011 | a dotted-path setting cannot be imported |
| E012 | ``ROUNDING`` is not a rounding mode of the ``decimal`` module |
| E013 | ``UPGRADE_MAX_PRICE_RATIO`` is not a number of at least 1 |
| E014 | ``FALLBACK`` is not ``"bestsellers"`` or ``None`` |
| E015 | ``API_THROTTLE_RATES`` is not a dict of DRF rates such as ``"120/min"`` |
| E016 | ``MIN_ORDERS_RATIO`` is not a number from 0 to 1 |
| E017 | ``ADAPTER`` cannot be imported or is not a ``CrossSellAdapter`` subclass |
| E050 | ``PARTNER_MAX_PRICE_RATIO`` is not ``None`` or a number of at least 1 |
| E051 | ``EXCLUDE_PURCHASED`` is not ``True``, ``False`` or ``"auto"`` |
| W001 | ``CROSSSELL`` has a key django-crosssell does not know (a typo?) |
| W002 | no Celery app with a broker: a queued recompute (API, ``enqueue_recompute``) fails |

Nothing here imports numpy, pandas or scipy: every ``manage.py`` command and web server
runs these checks.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, FieldError, ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

from .adapter import CrossSellAdapter, get_adapter
from .conf import DEFAULTS, METRIC_CHOICES, PRODUCT_MODEL_SETTING, app_settings
from .enqueue import celery_problem
from .orm import resolve_field_path
from .sources import check_source_configuration

# name -> (minimum, allow None)
INTEGER_SETTINGS: dict[str, tuple[int, bool]] = {
    "DEFAULT_LIMIT": (1, False),
    "MAX_LIMIT": (1, False),
    "CHUNK_SIZE": (1, False),
    "CACHE_TIMEOUT": (0, True),
    "MIN_CO_COUNT": (1, False),
    "TOP_K": (1, False),
    "LOOKBACK_DAYS": (1, True),
    "HALF_LIFE_DAYS": (1, True),
    "KEEP_RUNS": (1, False),
    "CURRENCY_DECIMALS": (0, False),
    "API_MAX_CART_LINES": (1, False),
    "API_MAX_QUANTITY": (1, False),
}
# ORDER_SOURCE is checked with the rest of the order source (sources.py).
DOTTED_PATH_SETTINGS = ("PRICE_FORMATTER", "PRODUCT_SERIALIZER")
THROTTLE_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def _error(msg: str, hint: str, id_: str) -> checks.Error:
    return checks.Error(msg, hint=hint, obj="settings.CROSSSELL", id=f"crosssell.{id_}")


def _check_lookups(model: type[models.Model], name: str, value: Any) -> list[checks.Error]:
    if not isinstance(value, dict):
        return [
            _error(
                f"CROSSSELL['{name}'] must be a dict of queryset lookups, "
                f"not {type(value).__name__}.",
                'Write for example {"is_active": True, "stock__gt": 0}.',
                "E006",
            )
        ]
    try:
        model._default_manager.filter(**value)
    except (FieldError, FieldDoesNotExist, ValueError, TypeError) as exc:
        return [
            _error(
                f"CROSSSELL['{name}'] is not a valid filter for {model._meta.label}: {exc}",
                f"Use lookups that {model._meta.label}.objects.filter(...) accepts.",
                "E006",
            )
        ]
    return []


def _product_model() -> tuple[type[models.Model] | None, list[checks.Error]]:
    label = getattr(settings, PRODUCT_MODEL_SETTING, None)
    hint = "Add CROSSSELL_PRODUCT_MODEL = 'shop.Product' (your product model) to your settings."
    if not label:
        return None, [
            checks.Error(
                "CROSSSELL_PRODUCT_MODEL is not set.",
                hint=hint,
                obj="settings",
                id="crosssell.E001",
            )
        ]
    if not isinstance(label, str) or label.count(".") != 1:
        return None, [
            checks.Error(
                f"CROSSSELL_PRODUCT_MODEL must be 'app_label.ModelName', not {label!r}.",
                hint=hint,
                obj="settings",
                id="crosssell.E001",
            )
        ]
    try:
        return apps.get_model(label), []
    except LookupError:
        return None, [
            checks.Error(
                f"CROSSSELL_PRODUCT_MODEL refers to {label!r}, which is not an installed model.",
                hint="Check the app label and model name, and that the app is in INSTALLED_APPS.",
                obj="settings",
                id="crosssell.E002",
            )
        ]


def _check_adapter() -> tuple[CrossSellAdapter | None, list[checks.Error]]:
    path = app_settings.ADAPTER
    if path is None:
        return get_adapter(), []
    hint = (
        "Name a subclass of django_crosssell.adapter.CrossSellAdapter by its dotted path, "
        "e.g. 'myshop.crosssell.ShopAdapter', or remove ADAPTER to use the default."
    )
    try:
        return get_adapter(), []
    except ImproperlyConfigured as exc:
        return None, [_error(str(exc), hint, "E017")]


def _check_product_fields(
    product: type[models.Model], adapter: CrossSellAdapter
) -> Iterable[checks.Error]:
    used = set(adapter.settings_used())
    for name in ("PRICE_FIELD", "CATEGORY_FIELD", "IMAGE_FIELD"):
        if name not in used:
            continue
        path = getattr(app_settings, name)
        if path is None and name != "PRICE_FIELD":
            continue
        try:
            resolve_field_path(product, str(path))
        except FieldDoesNotExist as exc:
            yield _error(
                f"CROSSSELL['{name}'] = {path!r} is not a field of {product._meta.label}: {exc}.",
                f"Name a field of {product._meta.label}"
                + ("." if name == "PRICE_FIELD" else ", or set it to None."),
                "E007",
            )
    if "AVAILABLE_PRODUCTS_FILTER" in used:
        yield from _check_lookups(
            product, "AVAILABLE_PRODUCTS_FILTER", app_settings.AVAILABLE_PRODUCTS_FILTER
        )


#: The CROSSSELL key an order-source problem is about -> (check id, hint).
ORDER_SOURCE_ERRORS = {
    "ORDER_LINE_MODEL": (
        "E004",
        "Name your order-line model as 'app_label.ModelName', or set it to None to turn "
        "computed affinity off.",
    ),
    "ORDER_LINE_FIELDS": (
        "E005",
        "Use ORM paths from the order line, e.g. 'order__placed_at'; 'customer' and "
        "'unit_price' may be None.",
    ),
    "ORDER_FILTER": ("E006", "Use lookups that your order line's .objects.filter() accepts."),
    "ORDER_SOURCE": (
        "E011",
        "Give the dotted path of a callable, e.g. 'myshop.crosssell.order_lines'.",
    ),
}


def _check_order_source() -> Iterable[checks.Error]:
    for setting, message in check_source_configuration():
        id_, hint = ORDER_SOURCE_ERRORS[setting]
        yield _error(message, hint, id_)


def _check_values() -> Iterable[checks.Error]:
    for name, (minimum, nullable) in INTEGER_SETTINGS.items():
        value = getattr(app_settings, name)
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            yield _error(
                f"CROSSSELL['{name}'] must be an integer of at least {minimum}"
                + (" or None" if nullable else "")
                + f", not {value!r}.",
                f"Remove it to use the default ({DEFAULTS[name]!r}).",
                "E008",
            )
    default_limit, max_limit = app_settings.DEFAULT_LIMIT, app_settings.MAX_LIMIT
    if isinstance(default_limit, int) and isinstance(max_limit, int) and default_limit > max_limit:
        yield _error(
            f"CROSSSELL['DEFAULT_LIMIT'] ({default_limit}) is larger than MAX_LIMIT ({max_limit}).",
            "Make DEFAULT_LIMIT at most MAX_LIMIT.",
            "E008",
        )
    if app_settings.METRIC not in METRIC_CHOICES:
        yield _error(
            f"CROSSSELL['METRIC'] = {app_settings.METRIC!r} is not a known metric.",
            "Choose one of: " + ", ".join(METRIC_CHOICES) + ".",
            "E009",
        )
    if app_settings.CACHE_ALIAS not in settings.CACHES:
        yield _error(
            f"CROSSSELL['CACHE_ALIAS'] = {app_settings.CACHE_ALIAS!r} is not in CACHES.",
            "Name one of: " + ", ".join(settings.CACHES) + ".",
            "E010",
        )
    for name in DOTTED_PATH_SETTINGS:
        path = getattr(app_settings, name)
        if path is None:
            continue
        try:
            import_string(path)
        except ImportError as exc:
            yield _error(
                f"CROSSSELL['{name}'] = {path!r} cannot be imported: {exc}.",
                "Give the full dotted path to an importable object, e.g. 'myshop.module.name'.",
                "E011",
            )
    rounding = app_settings.ROUNDING
    if not (
        isinstance(rounding, str) and rounding.startswith("ROUND_") and hasattr(decimal, rounding)
    ):
        yield _error(
            f"CROSSSELL['ROUNDING'] = {rounding!r} is not a rounding mode.",
            "Use a name from the decimal module, e.g. 'ROUND_HALF_UP' or 'ROUND_DOWN'.",
            "E012",
        )
    ratio = app_settings.UPGRADE_MAX_PRICE_RATIO
    if isinstance(ratio, bool) or not isinstance(ratio, int | float | decimal.Decimal) or ratio < 1:
        yield _error(
            f"CROSSSELL['UPGRADE_MAX_PRICE_RATIO'] must be a number of at least 1, not {ratio!r}.",
            "For example 1.5: suggest the next tier only when it costs at most 1.5x as much.",
            "E013",
        )
    if app_settings.EXCLUDE_PURCHASED not in (True, False, "auto"):
        yield _error(
            f"CROSSSELL['EXCLUDE_PURCHASED'] = {app_settings.EXCLUDE_PURCHASED!r} is not "
            "True, False or 'auto'.",
            "'auto' hides what a customer bought except in categories bought again "
            "(a product there has a replenishment profile).",
            "E051",
        )
    band = app_settings.PARTNER_MAX_PRICE_RATIO
    if band is not None and (
        isinstance(band, bool) or not isinstance(band, int | float | decimal.Decimal) or band < 1
    ):
        yield _error(
            f"CROSSSELL['PARTNER_MAX_PRICE_RATIO'] must be None or a number of at least 1, "
            f"not {band!r}.",
            "For example 10: a product page shows no computed partner dearer than 10x the "
            "product; None shows them whatever they cost.",
            "E050",
        )
    if app_settings.FALLBACK not in (None, "bestsellers"):
        yield _error(
            f"CROSSSELL['FALLBACK'] = {app_settings.FALLBACK!r} is not supported.",
            "Use 'bestsellers' or None.",
            "E014",
        )
    rates = app_settings.API_THROTTLE_RATES
    if not isinstance(rates, dict) or not all(
        value is None or (isinstance(value, str) and THROTTLE_RATE.match(value))
        for value in rates.values()
    ):
        yield _error(
            f"CROSSSELL['API_THROTTLE_RATES'] = {rates!r} is not a dict of rates.",
            'Write for example {"crosssell_anon": "120/min", "crosssell_user": "600/min"}.',
            "E015",
        )
    ratio = app_settings.MIN_ORDERS_RATIO
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        yield _error(
            f"CROSSSELL['MIN_ORDERS_RATIO'] must be a number from 0 to 1, not {ratio!r}.",
            "For example 0.5: a recompute that reads fewer than half the current run's orders "
            "is refused and the current run stays; 0 refuses only a read of no orders.",
            "E016",
        )


def _check_celery() -> Iterable[checks.Warning]:
    problem = celery_problem()
    if problem is not None:
        yield checks.Warning(
            problem,
            hint="Create your Celery app when Django starts (the project package's "
            "__init__.py imports it, as in Celery's 'First steps with Django') and give it a "
            "broker (CELERY_BROKER_URL), or set CELERY_TASK_ALWAYS_EAGER = True to run tasks "
            "in-process. Until then recomputes queued by the REST API fail at once; "
            "manage.py crosssell_recompute still works.",
            obj="settings",
            id="crosssell.W002",
        )


@checks.register("crosssell")
def check_settings(app_configs=None, **kwargs: Any) -> list[checks.CheckMessage]:
    product, product_errors = _product_model()
    errors: list[checks.CheckMessage] = list(product_errors)
    user = getattr(settings, "CROSSSELL", {})
    if not isinstance(user, dict):
        errors.append(
            _error(
                f"CROSSSELL must be a dict, not {type(user).__name__}.",
                "Write CROSSSELL = {...} with the keys listed in the settings reference.",
                "E003",
            )
        )
        return errors
    errors.extend(
        checks.Warning(
            f"CROSSSELL has an unknown key {key!r}.",
            hint="Known keys: " + ", ".join(sorted(DEFAULTS)) + ".",
            obj="settings.CROSSSELL",
            id="crosssell.W001",
        )
        for key in user
        if key not in DEFAULTS
    )
    adapter, adapter_errors = _check_adapter()
    errors.extend(adapter_errors)
    if product is not None and adapter is not None:
        errors.extend(_check_product_fields(product, adapter))
    errors.extend(_check_order_source())
    errors.extend(_check_values())
    errors.extend(_check_celery())
    return errors
