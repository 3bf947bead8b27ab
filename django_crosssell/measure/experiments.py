"""Experiments on the storefront: which variant a visitor gets and what it changes.

Running experiments are read once into the cache and kept by each process for a few
seconds (no round trip on most tracked pages, none per widget), so a warm widget stays
query-free. A unit (visitor or customer) is bucketed with GrowthBook's FNV-1a v2 hash of
``seed + id`` (:mod:`~django_crosssell.measure.bucketing`); its variant is then kept in a
signed first-party cookie and recorded as an
:class:`~django_crosssell.measure.models.Exposure` at the first exposure, so later weight
edits do not move it. A customer's recorded variant also follows them to a new device
(:func:`recorded_variants`). Staff may preview a variant with
``?crosssell_variant=EXPERIMENT:VARIANT``. An optional global holdout (``HOLDOUT``, a share)
sees no recommendations at all.

A variant's ``config``: ``enabled`` (False: the widgets it covers render nothing),
``limit``, ``kind`` (the curated links' kind), ``upsell`` (False: no upgrade or
downgrade prompts), ``bundles`` (False: no bundle widgets); anything else is refused by
``Variant.clean()`` (:func:`.variants.config_errors`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from .. import cache
from ..conf import app_settings
from . import bucketing, tracking
from .variants import CONFIG_KEYS  # noqa: F401  (the keys this module applies)

CACHE_SECONDS = 300
HOLDOUT_SEED = "crosssell-holdout"
UPSELL_WIDGETS = frozenset({"upgrade_prompt", "downgrade_offer"})
BUNDLE_WIDGETS = frozenset({"bundle_offers", "bundle_progress"})


@dataclass(frozen=True)
class Assignment:
    experiment_id: int
    experiment_key: str
    variant_id: int
    variant_key: str
    config: dict[str, Any]


#: Not versioned in its name (see :func:`versioned_experiments`).
EXPERIMENTS_KEY = "crosssell:measure:experiments"


#: Seconds a process keeps the running experiments it read (see :func:`versioned_experiments`).
LOCAL_SECONDS = 5.0
#: ``(cache.epoch() when read, monotonic expiry, rows, cache version)``.
_local: tuple[int, float, list[dict[str, Any]], int] | None = None


def running_experiments() -> list[dict[str, Any]]:
    """Running experiments as plain data (cached; an edit bumps the cache version)."""
    return versioned_experiments()[0]


def forget_local() -> None:
    """Drop this process's copy of the running experiments (tests)."""
    global _local
    _local = None


def versioned_experiments() -> tuple[list[dict[str, Any]], int]:
    """``(running experiments, the cache version read with them)``.

    Every tracked page needs them, so a process keeps what it read for ``LOCAL_SECONDS``
    rather than asking the shared cache on every page: the round trip would be most of
    what tracking costs a warm page. An edit made in this process (which bumps
    ``cache.epoch()``) is seen at once; one made in another process (the admin's worker,
    a task) within ``LOCAL_SECONDS``. The version kept with them is the one the request's
    serves record (``TrackingState.cache_version``), so it may be that many seconds old
    after a recompute elsewhere.

    The shared entry does not embed the version in its key: it carries the version it was
    computed under and ``get_versioned`` reads it with the current one, so a bump still
    makes it stale, without the extra read ``make_key`` would make.
    """
    global _local
    local = _local
    epoch = cache.epoch()
    now = time.monotonic()
    if local is not None and local[0] == epoch and now < local[1]:
        return local[2], local[3]
    rows, version = _shared_experiments()
    if version:  # 0: the cache is down; read again next time, as before
        _local = (epoch, now + LOCAL_SECONDS, rows, version)
    return rows, version


def _shared_experiments() -> tuple[list[dict[str, Any]], int]:
    key = EXPERIMENTS_KEY
    value, version = cache.get_versioned(key)
    if value is not cache.MISSING:
        return list(value), version
    from .models import Experiment

    now = timezone.now()
    rows = []
    for experiment in Experiment.objects.filter(status=Experiment.Status.RUNNING).prefetch_related(
        "variants"
    ):
        if experiment.starts_at and experiment.starts_at > now:
            continue
        if experiment.ends_at and experiment.ends_at <= now:
            continue
        variants = sorted(experiment.variants.all(), key=lambda v: (v.position, v.pk))
        if not variants:
            continue
        rows.append(
            {
                "id": experiment.pk,
                "key": experiment.key,
                "seed": experiment.seed or experiment.key,
                "unit": experiment.unit,
                "coverage": experiment.coverage,
                "placements": list(experiment.placements or []),
                "ends_at": experiment.ends_at.timestamp() if experiment.ends_at else None,
                "variants": [
                    {"id": v.pk, "key": v.key, "weight": v.weight, "config": dict(v.config or {})}
                    for v in variants
                ],
            }
        )
    cache.set_versioned(key, rows, version, CACHE_SECONDS)
    return rows, version


def unit_id(state: tracking.TrackingState, unit: str) -> str:
    if unit == "customer":
        user = getattr(state.request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return ""
        from ..adapter import get_adapter

        return str(get_adapter().customer_key(user))
    return state.visitor_id


def variant_index(experiment: dict[str, Any], unit: str) -> int:
    variants = experiment["variants"]
    n = bucketing.gb_hash(experiment["seed"], unit, 2)
    weights = bucketing.normalised([v["weight"] for v in variants])
    ranges = bucketing.bucket_ranges(len(variants), experiment["coverage"], weights)
    return bucketing.choose(n if n is not None else -1.0, ranges)


def in_holdout(visitor_id: str) -> bool:
    share = app_settings.HOLDOUT
    if not share or not visitor_id:
        return False
    n = bucketing.gb_hash(HOLDOUT_SEED, visitor_id, 2)
    return n is not None and n < float(share)


def _preview(state: tracking.TrackingState, experiment: dict[str, Any]) -> int | None:
    raw = state.request.GET.get(app_settings.EXPERIMENT_PREVIEW_PARAM, "")
    key, _, variant = raw.partition(":")
    if key != experiment["key"] or not tracking.is_staff(state.request):
        return None
    for index, candidate in enumerate(experiment["variants"]):
        if candidate["key"] == variant:
            return index
    return None


def cookie_key(state: tracking.TrackingState, experiment: dict[str, Any]) -> str:
    """The experiment's entry in the assignment cookie. A customer-unit entry names the
    customer (a prefix of their hash): on a shared device another customer's variant must
    not be taken for theirs."""
    if experiment["unit"] == "customer":
        return f"{experiment['id']}.{state.customer()[:16]}"
    return str(experiment["id"])


def recorded_variants(state: tracking.TrackingState) -> dict[int, int]:
    """``{experiment id: variant id}`` of the signed-in customer's recorded exposures to
    the running customer-unit experiments: what makes them sticky from the first exposure
    on every device, even after the weights or coverage changed. One query, at most once
    per request, and only on a page whose cookie does not know the assignment (the
    customer's first page on a device, or their first exposure)."""
    if state.recorded is None:
        customer = state.customer()
        ids = [row["id"] for row in state._experiments or [] if row["unit"] == "customer"]
        state.recorded = {}
        if customer and ids:
            from .models import Exposure

            state.recorded = dict(
                Exposure.objects.filter(experiment_id__in=ids, subject=customer).values_list(
                    "experiment_id", "variant_id"
                )
            )
    return state.recorded


def assign(state: tracking.TrackingState, widget: str) -> list[Assignment]:
    """The assignments of this request that cover ``widget`` (first exposures buffered)."""
    if state._experiments is None:
        if state.cheap_excluded():
            state._experiments = []
        else:
            state._experiments, version = versioned_experiments()
            if version and state.cache_version is None:
                state.cache_version = version
    found = []
    for experiment in state._experiments:
        if experiment["placements"] and widget not in experiment["placements"]:
            continue
        index = _preview(state, experiment)
        if index is None:
            if not state.consented():
                continue  # no consent: the default experience, nothing recorded
            unit = unit_id(state, experiment["unit"])
            if not unit:
                continue
            key = cookie_key(state, experiment)
            sticky = state.assignment_cookie().get(key)
            ids = [v["id"] for v in experiment["variants"]]
            if sticky not in ids and experiment["unit"] == "customer":
                sticky = recorded_variants(state).get(experiment["id"])
            if sticky in ids:
                index = ids.index(sticky)
            else:
                index = variant_index(experiment, unit)
                if index < 0:
                    continue
            if state.assignment_cookie().get(key) != ids[index]:
                state.assignment_cookie()[key] = ids[index]
                state.new_assignments = True
            state.exposures[experiment["id"]] = ids[index]
        variant = experiment["variants"][index]
        found.append(
            Assignment(
                experiment["id"],
                experiment["key"],
                variant["id"],
                variant["key"],
                variant["config"],
            )
        )
    return found


def config_for(request: Any, widget: str) -> tuple[dict[str, Any], Assignment | None]:
    """``(merged config, the assignment to tag serves with)`` for ``widget``; never raises."""
    state = tracking.state_of(request)
    if state is None:
        return {}, None
    found = state.configs.get(widget)
    if found is None:
        found = state.configs[widget] = _config_for(state, widget)
    return found


def _config_for(
    state: tracking.TrackingState, widget: str
) -> tuple[dict[str, Any], Assignment | None]:
    if state.held_out is None:  # once per request, not once per widget
        state.held_out = (
            in_holdout(state.visitor_id) and state.consented() and not state.cheap_excluded()
        )
    if state.held_out:
        return {"enabled": False, "held_out": True}, None
    config: dict[str, Any] = {}
    chosen = None
    for assignment in assign(state, widget):
        config.update(assignment.config)
        chosen = chosen or assignment
    return config, chosen


def shows(widget: str, config: dict[str, Any]) -> bool:
    if config.get("enabled") is False:
        return False
    if widget in UPSELL_WIDGETS and config.get("upsell") is False:
        return False
    return not (widget in BUNDLE_WIDGETS and config.get("bundles") is False)
