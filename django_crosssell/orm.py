"""Small ORM helpers shared by the system checks and the order-line source (no numpy)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.constants import LOOKUP_SEP


def resolve_field_path(model: type[models.Model], path: str) -> models.Field:
    """The field an ORM path such as ``order__placed_at`` or ``product_id`` ends on.

    Raises ``FieldDoesNotExist`` naming the failing part, so a check can say exactly which
    part of a path is wrong.
    """
    field: Any = None
    current = model
    parts = path.split(LOOKUP_SEP)
    for index, part in enumerate(parts):
        field = current._meta.get_field(part)  # attnames such as "order_id" resolve too
        if index < len(parts) - 1:
            if not field.is_relation or field.related_model is None:
                raise FieldDoesNotExist(f"{part!r} is not a relation")
            current = field.related_model
    return field
