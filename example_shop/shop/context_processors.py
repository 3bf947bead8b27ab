"""Template context of the example shop."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def cart(request: HttpRequest) -> dict[str, Any]:
    """Expose ``cart`` lazily: pages that never touch it (the admin, the API) pay no query,
    not even the session load."""
    from .cart import get_cart

    return {"cart": SimpleLazyObject(lambda: get_cart(request))}
