"""Serializer fields for the host's product, whose model and key type we only learn at run time.

The test host uses UUID keys and the example shop integers, so product ids are validated
with the product model's own primary key field: a malformed id becomes a field error (or a
404 in a URL) instead of a database error. The schema extensions at the bottom tell
drf-spectacular the real key type and where the host's product serializer lives, because
neither is known when this module is imported.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

from ..adapter import get_adapter
from ..conf import app_settings, get_product_model, product_does_not_exist
from ..limits import check_year
from ..money import format_money, money_string
from ..products import InvalidProductKey, product_key


def parse_product_pk(value: Any) -> Any:
    """``value`` as a product key (:func:`django_crosssell.products.product_key`), or
    Django's ``ValidationError`` for the API's field errors."""
    try:
        return product_key(value)
    except InvalidProductKey as exc:
        raise DjangoValidationError(_("Not a valid product id."), code="invalid") from exc


def _basic_type(kind: OpenApiTypes) -> dict[str, Any]:
    schema = build_basic_type(kind)
    if schema is None:  # drf-spectacular returns None for OpenApiTypes.NONE only
        raise ValueError(f"no OpenAPI schema for {kind!r}")
    return schema


def product_pk_schema() -> dict[str, Any]:
    """OpenAPI schema of the host's product key (integer, UUID or string)."""
    pk_field = get_product_model()._meta.pk
    if isinstance(pk_field, models.UUIDField):
        return _basic_type(OpenApiTypes.UUID)
    if isinstance(pk_field, models.BigIntegerField | models.BigAutoField):
        return {**_basic_type(OpenApiTypes.INT64), "minimum": 1}
    if isinstance(pk_field, models.IntegerField | models.AutoField):
        return {**_basic_type(OpenApiTypes.INT), "minimum": 1}
    return _basic_type(OpenApiTypes.STR)


class ProductIdField(serializers.Field):
    """A product key, checked for shape only (existence is checked in bulk by the caller)."""

    default_error_messages = {"invalid": _("Not a valid product id.")}

    def to_internal_value(self, data: Any) -> Any:
        try:
            return parse_product_pk(data)
        except DjangoValidationError:
            self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


class ProductRelatedField(serializers.PrimaryKeyRelatedField):
    """Foreign key to the host's product for the curation endpoints.

    The queryset is resolved per call, not at import, because the product model is a
    setting.
    """

    default_error_messages = {
        "does_not_exist": _("No product with id {pk_value}."),
        "invalid": _("Not a valid product id."),
    }

    def get_queryset(self) -> models.QuerySet:
        return get_product_model()._default_manager.all()

    def to_internal_value(self, data: Any) -> models.Model:
        try:
            pk = parse_product_pk(data)
        except DjangoValidationError:
            self.fail("invalid")
        try:
            return self.get_queryset().get(pk=pk)
        except product_does_not_exist():
            self.fail("does_not_exist", pk_value=pk)

    def to_representation(self, value: Any) -> Any:
        return value.pk


def format_amount(value: Any) -> str | None:
    """Amounts travel as decimal strings rounded to the currency: exact, and JSON numbers
    are floats in JavaScript."""
    return money_string(value)


def price_context(request: Any, products: Iterable[models.Model]) -> dict[str, Any]:
    """Serializer context with the products' prices from the adapter, in one bulk call."""
    products = list(products)
    prices = get_adapter().prices(products, request) if products else {}
    return {"request": request, "prices": prices}


class ProductSerializer(serializers.Serializer):
    """The default product representation: id, name (``str(product)``), price and URL.

    ``price`` is the rounded decimal string, ``price_display`` the same amount as the
    storefront shows it (``PRICE_FORMATTER``). Prices come from the adapter, in bulk when
    the view put them in the context (:func:`price_context`).

    Replace it with ``CROSSSELL["PRODUCT_SERIALIZER"] = "myshop.api.ProductSerializer"``
    to add images, stock or anything else the storefront needs.
    """

    id = ProductIdField(source="pk", read_only=True)
    name = serializers.CharField(source="__str__", read_only=True)
    price = serializers.SerializerMethodField()
    price_display = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    def _price(self, product: models.Model) -> Decimal | None:
        prices = self.context.get("prices")
        if prices is None or product.pk not in prices:
            prices = get_adapter().prices([product], self.context.get("request"))
        return prices.get(product.pk)

    def get_price(self, product: models.Model) -> str | None:
        return money_string(self._price(product))

    def get_price_display(self, product: models.Model) -> str:
        return format_money(self._price(product))

    def get_url(self, product: models.Model) -> str | None:
        get_absolute_url = getattr(product, "get_absolute_url", None)
        if get_absolute_url is None:
            return None
        url = get_absolute_url()
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


@cache
def _import_serializer(path: str) -> type[serializers.BaseSerializer]:
    return import_string(path)


def get_product_serializer_class() -> type[serializers.BaseSerializer]:
    """The host's product serializer (``CROSSSELL["PRODUCT_SERIALIZER"]``) or the default."""
    path = app_settings.PRODUCT_SERIALIZER
    return _import_serializer(path) if path else ProductSerializer


class ProductRepresentationField(serializers.Field):
    """A product rendered with the host's serializer, wherever a response embeds one."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: models.Model) -> Any:
        serializer_class = get_product_serializer_class()
        return serializer_class(value, context=self.context).data


class ModelChoiceField(serializers.ChoiceField):
    """A model field's choices, documented as one named enum per model and field.

    Relations and bundle rules both have a ``kind`` with different choices; naming the
    enums ``ProductRelationKindEnum`` and ``BundleRuleKindEnum`` avoids drf-spectacular's
    hashed names (and its warning) without asking the host for ``ENUM_NAME_OVERRIDES``.
    """


class UTCDateTimeField(serializers.DateTimeField):
    """Timestamps in UTC (naive input is read as UTC).

    In the host's time zone, dates before standard time render with a local mean time
    offset such as ``+09:18:59``, which is not valid RFC 3339; UTC has no such offsets and
    needs no knowledge of the shop's zone on the client.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", datetime.UTC)
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> datetime.datetime:
        parsed = super().to_internal_value(value)
        try:
            check_year(parsed)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages), code="max_year") from exc
        return parsed


class BoundedListField(serializers.ListField):
    """A ``ListField`` that refuses a list over ``max_length`` before looking at any item.

    DRF validates every item first and the length last, so a body of a million ids cost
    seconds of validation before its 400.
    """

    default_error_messages = {
        "max_length": _("Ensure this field has no more than {max_length} elements."),
    }

    def to_internal_value(self, data: Any) -> list[Any]:
        if (
            self.max_length is not None
            and isinstance(data, list | tuple)
            and len(data) > self.max_length
        ):
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


# --- OpenAPI ------------------------------------------------------------------------------


class ProductIdFieldExtension(OpenApiSerializerFieldExtension):
    target_class: type[serializers.Field] = ProductIdField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return product_pk_schema()


class ProductRelatedFieldExtension(ProductIdFieldExtension):
    target_class = ProductRelatedField


class ProductRepresentationFieldExtension(OpenApiSerializerFieldExtension):
    target_class = ProductRepresentationField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return auto_schema.resolve_serializer(get_product_serializer_class(), direction).ref


class ModelChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = ModelChoiceField

    def get_name(self) -> str | None:
        model = getattr(getattr(self.target.parent, "Meta", None), "model", None)
        if model is None:
            return None
        field = "".join(part.title() for part in self.target.source.split("_"))
        return f"{model.__name__}{field}Enum"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
