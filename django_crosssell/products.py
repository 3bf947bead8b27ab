"""The host's products as the app sees them: one key parser and one product queryset.

Product keys arrive from templates (instances, ints, strings), from the API (JSON values)
and from carts (the host's line objects). They are all read here, with one set of rules, so
that the same input is accepted or refused the same way everywhere:

* a product instance must be of the configured model and saved;
* ``True``/``False``, fractional numbers and non-ASCII digits (full-width "１", which
  ``int()`` would read as 1) are refused rather than silently turned into another key;
* the key goes through the primary key field's own ``clean()``, so an integer outside the
  database's range never reaches a query and a UUID key accepts its usual spellings.

Bad keys raise :class:`InvalidProductKey`, a ``ValueError``: the widgets render empty and
log, the API turns it into a field error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from .conf import get_product_model


class InvalidProductKey(ValueError):
    """A value that is not a product of the configured model nor one of its keys."""


def product_queryset() -> models.QuerySet:
    """Every product of the host, through its default manager (no availability filter)."""
    return get_product_model()._default_manager.all()


def product_key(value: Any) -> Any:
    """The primary key of a product instance or key, in the key's Python type."""
    model = get_product_model()
    if value is None:
        raise InvalidProductKey("A product is required, got None.")
    if isinstance(value, models.Model):
        if not isinstance(value, model):
            raise InvalidProductKey(
                f"Expected a {model._meta.label} or its primary key, "
                f"got a {type(value)._meta.label} instance."
            )
        if value.pk is None:
            raise InvalidProductKey("The product has not been saved (it has no primary key).")
        return value.pk
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str | uuid.UUID):
        raise InvalidProductKey(
            f"Expected a {model._meta.label} or its primary key, got {type(value).__name__}."
        )
    if isinstance(value, str) and not value.isascii():
        raise InvalidProductKey(f"{value!r} is not a valid {model._meta.label} key.")
    try:
        pk = model._meta.pk.clean(value, None)
    except ValidationError as exc:
        raise InvalidProductKey(f"{value!r} is not a valid {model._meta.label} key.") from exc
    if pk in (None, ""):
        raise InvalidProductKey("A product is required, got an empty key.")
    return pk


def product_keys(values: Any) -> list[Any]:
    """Distinct keys of an iterable of products or keys, in first-seen order."""
    if values is None:
        raise InvalidProductKey("Products are required, got None.")
    if isinstance(values, str | bytes | models.Model) or not isinstance(values, Iterable):
        raise InvalidProductKey(
            f"Expected an iterable of products or keys, got {type(values).__name__}."
        )
    return list(dict.fromkeys(product_key(value) for value in values))


def is_product(value: Any) -> bool:
    """Whether ``value`` is an instance of the configured product model."""
    return isinstance(value, get_product_model())
