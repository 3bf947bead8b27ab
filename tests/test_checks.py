"""Each misconfiguration is a system check error with an id and a hint, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_crosssell.checks import check_settings
from django_crosssell.orm import resolve_field_path
from tests.testapp.models import OrderLine

ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "ORDER_LINE_MODEL": "testapp.OrderLine",
    "ORDER_FILTER": {"order__status": "paid"},
    "AVAILABLE_PRODUCTS_FILTER": {"is_active": True, "stock__gt": 0},
    "CATEGORY_FIELD": "category",
}


def ids(**overrides):
    with override_settings(CROSSSELL={**BASE, **overrides}):
        return sorted(message.id for message in check_settings())


def test_the_test_configuration_is_clean():
    assert ids() == []


def test_registered_with_django():
    assert check_settings in checks.registry.registry.get_checks()


@pytest.mark.parametrize("value", [None, "", "Product", "shop.product.extra"])
def test_missing_or_malformed_product_model_is_e001(value):
    with override_settings(CROSSSELL_PRODUCT_MODEL=value):
        messages = check_settings()
    assert [m.id for m in messages] == ["crosssell.E001"]
    assert "CROSSSELL_PRODUCT_MODEL" in messages[0].hint


def test_unknown_product_model_is_e002():
    with override_settings(CROSSSELL_PRODUCT_MODEL="testapp.Nope"):
        messages = check_settings()
    assert [m.id for m in messages] == ["crosssell.E002"]


def test_crosssell_not_a_dict_is_e003():
    with override_settings(CROSSSELL=["ORDER_LINE_MODEL"]):
        assert [m.id for m in check_settings()] == ["crosssell.E003"]


@pytest.mark.parametrize("label", ["testapp.Nope", "nope", "missing.OrderLine"])
def test_unknown_order_line_model_is_e004(label):
    assert ids(ORDER_LINE_MODEL=label) == ["crosssell.E004"]


def test_order_line_model_none_turns_affinity_off_without_errors():
    assert ids(ORDER_LINE_MODEL=None, ORDER_FILTER={"anything": 1}) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"order": "ordr_id"},
        {"product": "product__nope"},
        {"placed_at": "order__placed"},
        {"customer": "quantity__id"},
        {"order": None},
        {"placed_at": "order__status"},  # not a date
        {"product": "order"},  # not the product model
    ],
)
def test_bad_order_line_field_path_is_e005(fields):
    assert ids(ORDER_LINE_FIELDS=fields) == ["crosssell.E005"]


def test_optional_order_line_fields_may_be_none():
    assert ids(ORDER_LINE_FIELDS={"customer": None, "unit_price": None}) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDER_FILTER", {"order__stat": "paid"}),
        ("ORDER_FILTER", "paid"),
        ("AVAILABLE_PRODUCTS_FILTER", {"in_stock": True}),
        ("AVAILABLE_PRODUCTS_FILTER", {"stock__gt": "many"}),
    ],
)
def test_bad_filters_are_e006(name, value):
    assert ids(**{name: value}) == ["crosssell.E006"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("PRICE_FIELD", "cost"), ("CATEGORY_FIELD", "kategorie"), ("IMAGE_FIELD", "image")],
)
def test_unknown_product_fields_are_e007(name, value):
    assert ids(**{name: value}) == ["crosssell.E007"]


def test_category_path_across_relation_is_accepted():
    assert ids(CATEGORY_FIELD="category__name") == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEFAULT_LIMIT", -1),
        ("DEFAULT_LIMIT", 0),
        ("MAX_LIMIT", "10"),
        ("TOP_K", 0),
        ("MIN_CO_COUNT", -3),
        ("LOOKBACK_DAYS", 0),
        ("HALF_LIFE_DAYS", 2.5),
        ("KEEP_RUNS", True),
        ("CURRENCY_DECIMALS", -1),
        ("API_MAX_CART_LINES", None),
    ],
)
def test_bad_numbers_are_e008(name, value):
    assert ids(**{name: value}) == ["crosssell.E008"]


def test_default_limit_above_max_limit_is_e008():
    assert ids(DEFAULT_LIMIT=30, MAX_LIMIT=20) == ["crosssell.E008"]


def test_nullable_numbers_accept_none():
    assert ids(LOOKBACK_DAYS=None, HALF_LIFE_DAYS=None, CACHE_TIMEOUT=None) == []


def test_unknown_metric_is_e009():
    messages_ = ids(METRIC="lfit")
    assert messages_ == ["crosssell.E009"]


def test_unknown_cache_alias_is_e010():
    assert ids(CACHE_ALIAS="recommendations") == ["crosssell.E010"]


@pytest.mark.parametrize("name", ["ORDER_SOURCE", "PRICE_FORMATTER", "PRODUCT_SERIALIZER"])
def test_unimportable_dotted_paths_are_e011(name):
    assert ids(**{name: "myshop.nowhere.thing"}) == ["crosssell.E011"]


@pytest.mark.parametrize("value", ["HALF_UP", "ROUND_SIDEWAYS", 4])
def test_bad_rounding_is_e012(value):
    assert ids(ROUNDING=value) == ["crosssell.E012"]


@pytest.mark.parametrize("value", [0.5, "1.5", None])
def test_bad_upgrade_ratio_is_e013(value):
    assert ids(UPGRADE_MAX_PRICE_RATIO=value) == ["crosssell.E013"]


@pytest.mark.parametrize("value", [0.5, "10", True])
def test_bad_partner_price_ratio_is_e050(value):
    assert ids(PARTNER_MAX_PRICE_RATIO=value) == ["crosssell.E050"]


@pytest.mark.parametrize("value", [None, 1, 10, 2.5])
def test_partner_price_ratio_none_or_a_number_is_fine(value):
    assert ids(PARTNER_MAX_PRICE_RATIO=value) == []


@pytest.mark.parametrize("value", ["yes", 1.5, None])
def test_bad_exclude_purchased_is_e051(value):
    assert ids(EXCLUDE_PURCHASED=value) == ["crosssell.E051"]


def test_bad_fallback_is_e014():
    assert ids(FALLBACK="random") == ["crosssell.E014"]


@pytest.mark.parametrize("value", [{"crosssell_anon": "lots"}, "120/min"])
def test_bad_throttle_rates_are_e015(value):
    assert ids(API_THROTTLE_RATES=value) == ["crosssell.E015"]


@pytest.mark.parametrize("value", [1.5, -0.1, "0.5", True, None])
def test_bad_min_orders_ratio_is_e016(value):
    with override_settings(CROSSSELL={**BASE, "MIN_ORDERS_RATIO": value}):
        [message] = check_settings()
    assert message.id == "crosssell.E016"
    assert "0.5" in message.hint


@pytest.mark.parametrize("value", [0, 0.25, 1])
def test_min_orders_ratio_from_zero_to_one_is_fine(value):
    assert ids(MIN_ORDERS_RATIO=value) == []


def test_unknown_key_is_a_warning_naming_it():
    with override_settings(CROSSSELL={**BASE, "DEFAULT_LIMT": 3}):
        messages = check_settings()
    assert [(m.id, m.level) for m in messages] == [("crosssell.W001", checks.WARNING)]
    assert "DEFAULT_LIMT" in messages[0].msg


def test_every_error_has_a_hint():
    with override_settings(
        CROSSSELL={**BASE, "METRIC": "x", "TOP_K": -1, "PRICE_FIELD": "cost", "ROUNDING": "x"}
    ):
        messages = check_settings()
    assert len(messages) == 4
    assert all(m.hint for m in messages)


def test_resolve_field_path_accepts_attnames_and_relations():
    assert resolve_field_path(OrderLine, "order_id").name == "order"
    assert resolve_field_path(OrderLine, "order__placed_at").name == "placed_at"
    assert resolve_field_path(OrderLine, "order__customer_id").name == "customer"


def _manage_check(extra_settings: str, tmp_path) -> subprocess.CompletedProcess:
    """Run ``manage.py check`` in a fresh process, where models load with the bad setting."""
    module = tmp_path / "broken_settings.py"
    module.write_text("from tests.settings import *  # noqa\n" + extra_settings)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "django", "check", "--settings=broken_settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("del CROSSSELL_PRODUCT_MODEL\n", "crosssell.E001"),
        ("CROSSSELL_PRODUCT_MODEL = 'testapp.Nope'\n", "crosssell.E002"),
    ],
)
def test_manage_py_check_reports_errors_not_tracebacks(extra, expected, tmp_path):
    """A fresh process: ``CROSSSELL_PRODUCT_MODEL`` is read while the models are imported
    (the swappable foreign keys) and in ``ready()``, which ``override_settings`` cannot
    redo, so only a new process starts up with the bad value."""
    result = _manage_check(extra, tmp_path)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("crosssell", "expected"),
    [
        ({"ORDER_LINE_MODEL": "testapp.Nope"}, "crosssell.E004"),
        (
            {"ORDER_LINE_MODEL": "testapp.OrderLine", "ORDER_LINE_FIELDS": {"order": "nope"}},
            "crosssell.E005",
        ),
        ({"METRIC": "lfit"}, "crosssell.E009"),
    ],
    ids=["E004", "E005", "E009"],
)
def test_check_command_reports_crosssell_errors_not_tracebacks(crosssell, expected):
    """In this process: ``CROSSSELL`` is read lazily (nothing reads it at import or in
    ``ready()``), so overriding it is what starting with it would be. ``manage.py check``
    turns this ``SystemCheckError`` into exit status 1 and the message on stderr; any
    other exception would be a traceback and fails the test."""
    with override_settings(CROSSSELL=crosssell), pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert expected in str(raised.value)
