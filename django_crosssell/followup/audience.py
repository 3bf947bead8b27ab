"""The audience filter seam: which customers a flow may write to.

A flow's ``audience`` is empty (everyone who consented), a dotted path, or a name that
``CROSSSELL["FOLLOWUP_AUDIENCE_RESOLVER"]`` resolves (the customers package's saved
audiences, once merged). What it resolves to may be:

* a **queryset** of customers (users): the recipient is in it when their key is;
* a **callable** taking a :class:`Recipient` and returning a bool, a queryset or a
  collection of customer keys or addresses;
* a **collection** (set, list, tuple) of customer keys or e-mail addresses.

The flow checks it at send time, so a segment that changes between the order and the due
date decides with its current members. Imports only ``conf``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from ..conf import app_settings


@dataclass(frozen=True)
class Recipient:
    """Who a scheduled message would go to."""

    customer: Any
    email: str
    order: Any
    flow_slug: str


def resolve(name: str) -> Any:
    """The audience object behind a flow's ``audience`` (ImproperlyConfigured if none)."""
    resolver_path = app_settings.FOLLOWUP_AUDIENCE_RESOLVER
    if resolver_path:
        try:
            resolver = import_string(resolver_path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"CROSSSELL['FOLLOWUP_AUDIENCE_RESOLVER'] {resolver_path!r} cannot be imported."
            ) from exc
        found = resolver(name)
        if found is not None:
            return found
    try:
        return import_string(name)
    except ImportError as exc:
        raise ImproperlyConfigured(f"The audience {name!r} cannot be resolved: {exc}") from exc


def matches(audience: Any, recipient: Recipient) -> bool:
    """Whether ``recipient`` belongs to ``audience`` (see the module docstring)."""
    if isinstance(audience, QuerySet):
        if recipient.customer in (None, ""):
            return False
        return audience.filter(pk=recipient.customer).exists()
    if callable(audience):
        result = audience(recipient)
        if isinstance(result, bool):
            return result
        return matches(result, recipient)
    if isinstance(audience, Collection) and not isinstance(audience, str | bytes):
        members = {str(member).lower() for member in audience}
        return str(recipient.customer).lower() in members or recipient.email in members
    raise ImproperlyConfigured(
        f"An audience must be a queryset, a callable or a collection, not {type(audience)!r}."
    )


def in_audience(audience_name: str, recipient: Recipient) -> bool:
    """True for an empty audience; otherwise :func:`matches` of the resolved audience."""
    if not audience_name:
        return True
    return matches(resolve(audience_name), recipient)
