"""Plain helpers of the REST API tests (the fixtures are in ``conftest.py``)."""

from __future__ import annotations

from django.urls import reverse


def api_url(name: str, *args: object) -> str:
    return reverse(f"crosssell_api:{name}", args=args)
