"""The settings object: defaults, merging of field paths, reload on setting_changed."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_crosssell.conf import (
    DEFAULT_ORDER_LINE_FIELDS,
    DEFAULTS,
    app_settings,
    get_order_line_model,
    get_product_model,
)
from tests.testapp.models import OrderLine, Product


def test_defaults_apply_for_missing_keys():
    assert app_settings.DEFAULT_LIMIT == DEFAULTS["DEFAULT_LIMIT"] == 4
    assert app_settings.CATEGORY_FIELD == "category"  # from tests.settings


def test_reloads_on_setting_changed():
    assert app_settings.DEFAULT_LIMIT == 4
    with override_settings(CROSSSELL={"DEFAULT_LIMIT": 7}):
        assert app_settings.DEFAULT_LIMIT == 7
        assert app_settings.CATEGORY_FIELD is None
    assert app_settings.DEFAULT_LIMIT == 4


def test_order_line_fields_merge_key_by_key():
    with override_settings(CROSSSELL={"ORDER_LINE_FIELDS": {"placed_at": "created"}}):
        fields = app_settings.ORDER_LINE_FIELDS
    assert fields["placed_at"] == "created"
    assert fields["order"] == DEFAULT_ORDER_LINE_FIELDS["order"]


def test_unknown_attribute_is_an_error():
    with pytest.raises(AttributeError, match="DEFAULT_LIMT"):
        app_settings.DEFAULT_LIMT  # noqa: B018


def test_get_product_model_follows_the_setting():
    assert get_product_model() is Product
    with (
        override_settings(CROSSSELL_PRODUCT_MODEL="testapp.Nope"),
        pytest.raises(ImproperlyConfigured, match="not been installed"),
    ):
        get_product_model()
    with (
        override_settings(CROSSSELL_PRODUCT_MODEL=None),
        pytest.raises(ImproperlyConfigured, match="must name"),
    ):
        get_product_model()


def test_get_order_line_model():
    assert get_order_line_model() is OrderLine
    with override_settings(CROSSSELL={"ORDER_LINE_MODEL": None}):
        assert get_order_line_model() is None
    with (
        override_settings(CROSSSELL={"ORDER_LINE_MODEL": "x.Y"}),
        pytest.raises(ImproperlyConfigured),
    ):
        get_order_line_model()
