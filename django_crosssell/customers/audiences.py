"""Who is in a saved audience: one customer live (storefront), or everyone (admin, export).

Storefront queries ask :func:`visible_audiences` (the audiences that restrict something and
that this visitor matches). It costs no query while cached: the ids of the audiences used by
any relation, tier ladder or bundle rule are cached under the cache version (every edit of
an audience or of a restricted row bumps it), and a customer's audience ids are cached per
customer for :data:`CUSTOMER_TIMEOUT` seconds (a new order or consent shows within it).
While no audience restricts anything the visitor is never looked at.

A cold evaluation for one customer reads what the rules need and nothing else, at most
:data:`MAX_COLD_QUERIES` queries: the active audiences with their segments and product lists
(four), the customer's metrics row, the products they bought, those products' categories,
and their consent state.

Anonymous visitors match only audiences with ``include_anonymous``. Numpy-free (the web path
imports it); imports ``adapter``, ``cache``, ``conf``, ``followup.consent``,
and ``customers.models``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models

from .. import cache
from ..adapter import CrossSellAdapter, get_adapter
from ..conf import app_settings
from ..followup.consent import GRANT
from ..followup.models import ConsentEvent
from ..models import BundleRule, ProductRelation, TierLadder
from .models import Audience, CustomerMetrics

#: Seconds a customer's audience ids stay cached (their orders do not bump the version).
CUSTOMER_TIMEOUT = 300
#: Queries one cold :func:`audience_ids_for` may run (tested).
MAX_COLD_QUERIES = 8


def make_key(prefix: str, *parts: Any) -> str:
    """An unversioned key (entries carry their version, see ``cache.get_versioned``)."""
    shaped = repr((parts, app_settings.ADAPTER, app_settings.ORDER_FILTER))
    digest = hashlib.blake2b(shaped.encode(), digest_size=16).hexdigest()
    return f"crosssell:e:{prefix}:{digest}"


def customer_of(user: Any) -> Any:
    """The adapter's customer key for ``user`` (None for anonymous visitors and None)."""
    if user is None:
        return None
    return get_adapter().customer_key(user)


@dataclass
class Profile:
    """What the rules read about one customer, each part loaded on first use."""

    key: Any  # the adapter's customer key (None: anonymous)

    @cached_property
    def metrics(self) -> CustomerMetrics | None:
        return CustomerMetrics.objects.filter(customer=str(self.key)).first()

    @cached_property
    def bought(self) -> set[Any]:
        purchased = get_adapter().purchased_product_ids(self.key)
        if purchased is None:
            return set()
        path = str(app_settings.ORDER_LINE_FIELDS["product"])
        return set(purchased.values_list(path, flat=True))

    @cached_property
    def categories(self) -> set[str]:
        if not self.bought:
            return set()
        found = get_adapter().product_categories(self.bought)
        return {str(category) for ids in found.values() for category in ids}

    @cached_property
    def consent(self) -> dict[str, bool]:
        state: dict[str, bool] = {}
        events = ConsentEvent.objects.filter(customer=str(self.key)).order_by("-created_at", "-pk")
        for purpose, action in events.values_list("purpose", "action"):
            state.setdefault(purpose, action == GRANT)
        return state


def _in_range(value: Any, low: Any, high: Any) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def profile_matches(audience: Audience, profile: Profile, lists: dict[str, set[Any]]) -> bool:
    """Whether a customer's profile satisfies every filled-in rule of ``audience``.

    ``lists`` holds the audience's ``segments``, ``bought`` and ``not_bought`` primary keys
    (read once for all audiences by the caller).
    """
    if not audience.is_active:
        return False
    if profile.key is None:
        return bool(audience.include_anonymous)
    if lists["segments"] or audience.uses_metrics:
        metrics = profile.metrics
        if metrics is None:
            return False
        if lists["segments"] and metrics.segment_id not in lists["segments"]:
            return False
        if not (
            _in_range(metrics.recency_days, audience.recency_min, audience.recency_max)
            and _in_range(metrics.frequency, audience.frequency_min, audience.frequency_max)
            and _in_range(metrics.monetary, audience.monetary_min, audience.monetary_max)
        ):
            return False
        if audience.deciles and metrics.decile not in audience.deciles:
            return False
    if lists["bought"] and not (lists["bought"] & profile.bought):
        return False
    if lists["not_bought"] and lists["not_bought"] & profile.bought:
        return False
    if audience.bought_categories and not (
        {str(value) for value in audience.bought_categories} & profile.categories
    ):
        return False
    return not (
        audience.consent_purpose and not profile.consent.get(audience.consent_purpose, False)
    )


def _lists(audiences: list[Audience]) -> dict[int, dict[str, set[Any]]]:
    """The M2M keys of every audience: three queries for all of them."""
    result: dict[int, dict[str, set[Any]]] = {
        audience.pk: {"segments": set(), "bought": set(), "not_bought": set()}
        for audience in audiences
    }
    if not audiences:
        return result
    ids = list(result)
    for name, relation in (
        ("segments", Audience.segments),
        ("bought", Audience.bought_products),
        ("not_bought", Audience.not_bought_products),
    ):
        through = relation.through
        source = relation.field.m2m_field_name()
        target = relation.field.m2m_reverse_field_name()
        rows = through._default_manager.filter(**{f"{source}__in": ids}).values_list(
            f"{source}_id", f"{target}_id"
        )
        for audience_id, target_id in rows:
            result[audience_id][name].add(target_id)
    return result


def matches(audience: Audience, user_or_none: Any) -> bool:
    """Whether the visitor ``user_or_none`` is in ``audience`` now (uncached).

    For experiments and one-off questions; storefront queries use :func:`visible_audiences`.
    """
    profile = Profile(customer_of(user_or_none))
    return profile_matches(audience, profile, _lists([audience])[audience.pk])


def compute_audience_ids(key: Any) -> tuple[int, ...]:
    """Sorted ids of the active audiences the customer ``key`` (None: anonymous) is in."""
    audiences = list(Audience.objects.filter(is_active=True).order_by("pk"))
    if not audiences:
        return ()
    if key is None:
        return tuple(audience.pk for audience in audiences if audience.include_anonymous)
    lists = _lists(audiences)
    profile = Profile(key)
    return tuple(
        audience.pk
        for audience in audiences
        if profile_matches(audience, profile, lists[audience.pk])
    )


def audience_ids_for(user: Any) -> tuple[int, ...]:
    """Sorted ids of the active audiences ``user`` is in; cached (no query when warm)."""
    key = customer_of(user)
    cache_key = make_key("audiences", None if key is None else str(key))
    hit, version = cache.get_versioned(cache_key)
    if hit is not cache.MISSING:
        return tuple(hit)
    ids = compute_audience_ids(key)
    cache.set_versioned(cache_key, ids, version, CUSTOMER_TIMEOUT)
    return ids


def restricting_audience_ids() -> frozenset[int]:
    """Ids of the audiences some relation, tier ladder or bundle rule is restricted to."""
    cache_key = make_key("restricting-audiences")
    hit, version = cache.get_versioned(cache_key)
    if hit is not cache.MISSING:
        return frozenset(hit)
    first, *rest = [
        model.objects.filter(audience__isnull=False).values_list("audience_id").order_by()
        for model in (ProductRelation, TierLadder, BundleRule)
    ]
    ids = frozenset(row[0] for row in first.union(*rest))
    cache.set_versioned(cache_key, tuple(sorted(ids)), version)
    return ids


def visible_audiences(user: Any) -> tuple[int, ...]:
    """The restricting audiences ``user`` is in: what a restricted query filters by and a
    cached result varies by. () without a query while nothing is restricted."""
    restricting = restricting_audience_ids()
    if not restricting:
        return ()
    return tuple(pk for pk in audience_ids_for(user) if pk in restricting)


# --- results that vary by audience only where a restricted row is involved -----------------

#: The audiences the current widget's data was filtered by (None: not filtered), so the one
#: render policy (:func:`django_crosssell.widgets.render`) can cache its HTML per audience.
_used: ContextVar[tuple[int, ...] | None] = ContextVar("crosssell_audiences_used", default=None)
RESTRICTED = "crosssell:restricted"

Resolve = Callable[[], tuple[int, ...]]


class Resolver:
    """The visitor's audiences, looked up on first call only.

    Queries read every row with its ``audience`` and call this only when a row is
    restricted: a shop (or a product) without restricted rows never pays for audiences.
    """

    def __init__(self, user: Any) -> None:
        self.user = user
        self.audiences: tuple[int, ...] | None = None

    def __call__(self) -> tuple[int, ...]:
        if self.audiences is None:
            self.audiences = visible_audiences(self.user)
        note_used(self.audiences)
        return self.audiences

    @property
    def called(self) -> bool:
        return self.audiences is not None


def allowed(audience_id: Any, resolve: Resolve) -> bool:
    """Whether a row restricted to ``audience_id`` (None: everyone) is for this visitor."""
    return audience_id is None or audience_id in resolve()


def note_used(audiences: tuple[int, ...]) -> None:
    _used.set(audiences)


def track() -> Token:
    """Start noting whether the data of one widget is filtered by audience."""
    return _used.set(None)


def used(token: Token) -> tuple[int, ...] | None:
    """The audiences noted since :func:`track` (None: none), and stop tracking."""
    found = _used.get()
    _used.reset(token)
    return found


def keyed(key: str, audiences: tuple[int, ...]) -> str:
    return f"{key}:a:{','.join(map(str, audiences))}"


def audience_cached(
    key: str, user: Any, compute: Callable[[Resolve], tuple[Any, int]]
) -> tuple[Any, float]:
    """``(value, expires_at)`` like ``recommend.caching.cached`` (one computation at a time,
    stale meanwhile), varying by audience only where the data did.

    ``compute(resolve)`` calls ``resolve()`` when it meets a restricted row. If it never
    does, the value is cached under ``key`` for everyone; if it does, ``key`` holds a marker
    and the value is cached under the key plus the visitor's audiences, so the next
    visitor's read costs their (cached) audience ids and no query.
    """
    from ..recommend.caching import cached  # the recommend layer imports this module

    resolver = Resolver(user)
    own: dict[str, tuple[Any, int]] = {}

    def shared() -> tuple[Any, int]:
        value, timeout = compute(resolver)
        if resolver.audiences is None:
            return value, timeout
        timeout = min(timeout, CUSTOMER_TIMEOUT)
        own["value"] = (value, timeout)
        cached(keyed(key, resolver.audiences), lambda: (value, timeout))  # warm for next time
        return (RESTRICTED,), timeout

    def personal() -> tuple[Any, int]:
        value, timeout = compute(resolver)
        return value, min(timeout, CUSTOMER_TIMEOUT)

    value, expires_at = cached(key, shared)
    if not (isinstance(value, tuple) and value[:1] == (RESTRICTED,)):
        return value, expires_at
    if "value" in own:  # computed just now for this visitor
        found, timeout = own["value"]
        return found, time.time() + timeout
    return cached(keyed(key, resolver()), personal)


# --- everyone in an audience (admin count, sample, CSV export) ------------------------------


def members(audience: Audience) -> models.QuerySet:
    """The :class:`CustomerMetrics` rows of the customers in ``audience`` (customers with an
    order in the last snapshot; anonymous visitors are not customers here)."""
    rows = CustomerMetrics.objects.all()
    lists = _lists([audience])[audience.pk]
    if lists["segments"]:
        rows = rows.filter(segment__in=lists["segments"])
    for name, low, high in (
        ("recency_days", audience.recency_min, audience.recency_max),
        ("frequency", audience.frequency_min, audience.frequency_max),
        ("monetary", audience.monetary_min, audience.monetary_max),
    ):
        if low is not None:
            rows = rows.filter(**{f"{name}__gte": low})
        if high is not None:
            rows = rows.filter(**{f"{name}__lte": high})
    if audience.deciles:
        rows = rows.filter(decile__in=audience.deciles)
    adapter = get_adapter()
    if lists["bought"]:
        rows = rows.filter(
            customer__in=adapter.customers_who_bought(products=lists["bought"]) or []
        )
    if lists["not_bought"]:
        bought = adapter.customers_who_bought(products=lists["not_bought"]) or set()
        rows = rows.exclude(customer__in=bought)
    if audience.bought_categories:
        found = adapter.customers_who_bought(categories=audience.bought_categories) or set()
        rows = rows.filter(customer__in=found)
    if audience.consent_purpose:
        rows = rows.filter(customer__in=granted(audience.consent_purpose))
    return rows


def granted(purpose: str) -> set[str]:
    """Customers whose latest consent event for ``purpose`` is a grant."""
    latest: dict[str, str] = {}
    events = (
        ConsentEvent.objects.filter(purpose=purpose)
        .exclude(customer="")
        .order_by("created_at", "pk")
        .values_list("customer", "action")
    )
    for customer, action in events.iterator(chunk_size=5000):
        latest[customer] = action
    return {customer for customer, action in latest.items() if action == GRANT}


EXPORT_COLUMNS = (
    "customer",
    "email",
    "segment",
    "r_score",
    "f_score",
    "m_score",
    "decile",
    "recency_days",
    "frequency",
    "monetary",
    "last_order_at",
)


def export_csv(audience: Audience) -> str:
    """The audience's members as CSV (customer key, e-mail address, metrics)."""
    adapter = get_adapter()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    rows = list(members(audience).select_related("segment").order_by("customer"))
    emails = _emails([row.customer for row in rows], adapter)
    for row in rows:
        writer.writerow(
            [
                row.customer,
                emails.get(row.customer, ""),
                row.segment.slug if row.segment else "",
                row.r_score,
                row.f_score,
                row.m_score,
                row.decile,
                row.recency_days,
                row.frequency,
                row.monetary,
                row.last_order_at.isoformat(),
            ]
        )
    return out.getvalue()


def _emails(customers: list[str], adapter: Any) -> dict[str, str]:
    """E-mail addresses of many customers: one query per 2,000 with the default adapter
    (customer keys are user keys), the adapter's ``customer_email`` otherwise."""
    if type(adapter).customer_email is not CrossSellAdapter.customer_email:
        return {customer: adapter.customer_email(customer) for customer in customers}
    user_model = get_user_model()
    field = user_model.get_email_field_name()
    to_python = user_model._meta.pk.to_python
    found: dict[str, str] = {}
    for start in range(0, len(customers), 2000):
        keys = []
        for customer in customers[start : start + 2000]:
            try:
                keys.append(to_python(customer))
            except ValidationError:
                continue
        for pk, email in user_model._default_manager.filter(pk__in=keys).values_list("pk", field):
            found[str(pk)] = str(email or "")
    return found


# --- follow-up mail: CROSSSELL["FOLLOWUP_AUDIENCE_RESOLVER"] ---------------------------------


def followup_resolver(name: str) -> Callable[[Any], bool] | None:
    """The saved audience whose slug is ``name`` as a follow-up flow's audience.

    Set ``CROSSSELL["FOLLOWUP_AUDIENCE_RESOLVER"] =
    "django_crosssell.customers.audiences.followup_resolver"`` and write the audience's slug
    in a flow's ``audience``: the recipient is checked at send time against the audience's
    current rules. None for another name (a dotted path still works).
    """
    audience = Audience.objects.filter(slug=name).first()
    if audience is None:
        return None

    def in_audience(recipient: Any) -> bool:
        customer = getattr(recipient, "customer", None)
        key = None if customer in (None, "") else customer
        return profile_matches(audience, Profile(key), _lists([audience])[audience.pk])

    return in_audience
