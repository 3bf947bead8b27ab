"""System checks of the engine settings (crosssell.E060...)."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from django_crosssell.engine_checks import check_engine_settings
from tests.settings import CROSSSELL


def ids(**overrides):
    with override_settings(CROSSSELL={**CROSSSELL, **overrides}):
        return sorted(message.id for message in check_engine_settings())


def test_the_test_configuration_and_the_defaults_are_clean():
    assert ids() == []
    with override_settings(CROSSSELL={"ORDER_LINE_MODEL": "testapp.OrderLine"}):
        assert check_engine_settings() == []


def test_registered_with_django():
    assert check_engine_settings in checks.registry.registry.get_checks()


@pytest.mark.parametrize("value", ["runs", None, ""])
def test_bestsellers_source(value):
    assert ids(BESTSELLERS_SOURCE=value) == ["crosssell.E060"]


@pytest.mark.parametrize("value", ["idf", None, "1/size"])
def test_order_weighting(value):
    assert ids(ORDER_WEIGHTING=value) == ["crosssell.E061"]


@pytest.mark.parametrize("value", [1, 0, -5, 2.5, "100", True])
def test_max_basket_size(value):
    assert ids(MAX_BASKET_SIZE=value) == ["crosssell.E062"]


@pytest.mark.parametrize("value", [None, 2, 500])
def test_max_basket_size_accepts(value):
    assert ids(MAX_BASKET_SIZE=value) == []


@pytest.mark.parametrize("value", ["category", "", True])
def test_similar_category(value):
    assert ids(SIMILAR_CATEGORY=value) == ["crosssell.E063"]


@pytest.mark.parametrize("value", ["name", [], ["name", "nope"], [3]])
def test_similar_text_fields(value):
    assert ids(SIMILAR_TEXT_FIELDS=value) == ["crosssell.E064"]


def test_similar_text_fields_accepts_fields_of_the_product():
    assert ids(SIMILAR_TEXT_FIELDS=["name", "sku"]) == []


@pytest.mark.parametrize(
    "overrides", [{"SIMILAR_TOP_K": 0}, {"SIMILAR_TOP_K": "5"}, {"SIMILAR_MIN_SCORE": 1.5}]
)
def test_similar_numbers(overrides):
    assert ids(**overrides) == ["crosssell.E065"]


def test_engine():
    assert ids(ENGINE="spark") == ["crosssell.E066"]
    assert ids(ENGINE="dask") == ["crosssell.E067"]
    assert ids(ENGINE="dask", DASK_SCHEDULER="tcp://127.0.0.1:8786") == []


def test_engine_dask_not_installed(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "distributed" else real(name, *a),
    )
    assert ids(ENGINE="dask", DASK_SCHEDULER="tcp://x:1") == ["crosssell.E068"]


@pytest.mark.parametrize("value", [0, -1, "7", True])
def test_reconcile_days(value):
    assert ids(INCREMENTAL_RECONCILE_DAYS=value) == ["crosssell.E069"]


@pytest.mark.parametrize("value", ["64 MB", "64MB", "512kB", "1GB", None])
def test_read_work_mem_accepts_sizes_and_none(value):
    assert ids(READ_WORK_MEM=value) == []


@pytest.mark.parametrize("value", ["64", "lots", 64, "0MB", "64mb", "64MB; SET x", ""])
def test_read_work_mem_must_be_a_size(value):
    assert ids(READ_WORK_MEM=value) == ["crosssell.E095"]
