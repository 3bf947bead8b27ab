"""Experiments on the storefront: which variant a visitor gets and what it changes.

Running experiments are read once into the cache (one round trip per request that renders
a widget, none per widget), so a warm widget stays query-free. A unit (visitor or customer)
is bucketed with GrowthBook's FNV-1a v2 hash of ``seed + id``
(:mod:`~django_crosssell.measure.bucketing`); its variant is then kept in a signed
first-party cookie and recorded as an :class:`~django_crosssell.measure.models.Exposure` at
the first exposure, so later weight edits do not move it. Staff may preview a variant with
``?crosssell_variant=EXPERIMENT:VARIANT``. An optional global holdout (``HOLDOUT``, a share)
sees no recommendations at all.

A variant's ``config``: ``enabled`` (False: the widgets it covers render nothing),
``limit``, ``kind`` (the recommendation kind/strategy), ``upsell`` (False: no upgrade or
downgrade prompts), ``bundles`` (False: no bundle widgets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from .. import cache
from ..conf import app_settings
from . import bucketing, tracking

CACHE_SECONDS = 300
HOLDOUT_SEED = "crosssell-holdout"
UPSELL_WIDGETS = frozenset({"upgrade_prompt", "downgrade_offer"})
BUNDLE_WIDGETS = frozenset({"bundle_offers", "bundle_progress"})
CONFIG_KEYS = {"enabled": bool, "limit": int, "kind": str, "upsell": bool, "bundles": bool}


@dataclass(frozen=True)
class Assignment:
    experiment_id: int
    experiment_key: str
    variant_id: int
    variant_key: str
    config: dict[str, Any]


#: Not versioned in its name (see :func:`versioned_experiments`).
EXPERIMENTS_KEY = "crosssell:measure:experiments"


def running_experiments() -> list[dict[str, Any]]:
    """Running experiments as plain data (cached; an edit bumps the cache version)."""
    return versioned_experiments()[0]


def versioned_experiments() -> tuple[list[dict[str, Any]], int]:
    """``(running experiments, the cache version read with them)`` in one cache round trip.

    The key does not embed the version: the entry carries the version it was computed
    under and ``get_versioned`` reads it with the current one, so a bump still makes it
    stale, without the extra read ``make_key`` would make. The version is kept for
    the request's serves (``TrackingState.cache_version``): a tracked page reads the cache
    once for measurement, not once per widget.
    """
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
            sticky = state.assignment_cookie().get(str(experiment["id"]))
            ids = [v["id"] for v in experiment["variants"]]
            if sticky in ids:
                index = ids.index(sticky)
            else:
                index = variant_index(experiment, unit)
                if index < 0:
                    continue
                state.assignment_cookie()[str(experiment["id"])] = ids[index]
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
    if widget not in state.configs:
        state.configs[widget] = _config_for(state, widget)
    return state.configs[widget]


def _config_for(
    state: tracking.TrackingState, widget: str
) -> tuple[dict[str, Any], Assignment | None]:
    if in_holdout(state.visitor_id) and state.consented() and not state.cheap_excluded():
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
