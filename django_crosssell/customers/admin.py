"""Admin of the customers package (imported by the last lines of ``django_crosssell/admin.py``).

* Customer metrics: the list has the latest snapshot's counts per segment, the R x F grid
  and the segment changes on top (tables, with the data in ``json_script`` for charts and a
  ``{% block crosssell_charts %}`` for them); a customer's page explains each score with the
  thresholds that gave it, their segment's cell range, and LWP (What, Pace, priority A-D with
  the reasons).
* Segments: the editable R x F map.
* Audiences: rules, a live count and a sample of members, CSV export.

Numpy-free (the admin is on the web path).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from ..adapter import get_adapter
from ..followup.models import Purpose
from . import audiences, lwp
from .models import Audience, CustomerMetrics, MetricsSnapshot, Segment

SAMPLE_SIZE = 10


class ComputedAdmin(admin.ModelAdmin):
    """Rows a snapshot writes: visible to staff, never edited in the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "name_ja", "slug", "r_min", "r_max", "f_min", "f_max", "position"]
    list_editable = ["name_ja", "r_min", "r_max", "f_min", "f_max", "position"]
    prepopulated_fields = {"slug": ["name"]}


def overview(snapshot: MetricsSnapshot | None) -> dict[str, Any]:
    """What the customer list shows above the table: counts, grid, changes (and chart data)."""
    if snapshot is None:
        return {"snapshot": None}
    segments = {segment.slug: segment for segment in Segment.objects.all()}
    counts = [
        (segments[slug].label if slug in segments else _("(no segment)"), count)
        for slug, count in sorted(snapshot.segment_counts.items(), key=lambda item: -item[1])
    ]
    label = {slug: segment.label for slug, segment in segments.items()}
    transitions = []
    for key, count in sorted(snapshot.transitions.items(), key=lambda item: -item[1]):
        old, _sep, new = key.partition("|")
        transitions.append(
            (label.get(old, old) if old else _("(first snapshot)"), label.get(new, new), count)
        )
    grid_rows = []
    grid = snapshot.grid or [[0] * 5 for _ in range(5)]
    for r in range(5, 0, -1):
        cells = []
        for f in range(1, 6):
            owner = next((s for s in segments.values() if s.covers(r, f)), None)
            cells.append({"count": grid[r - 1][f - 1], "segment": owner.label if owner else ""})
        grid_rows.append({"r": r, "cells": cells})
    history = list(
        MetricsSnapshot.objects.order_by("computed_at", "pk").values(
            "computed_at", "segment_counts"
        )[:60]
    )
    chart = {
        "segments": [[name, count] for name, count in counts],
        "grid": grid,
        "transitions": [[old, new, count] for old, new, count in transitions],
        "history": [
            {"at": row["computed_at"].isoformat(), "counts": row["segment_counts"]}
            for row in history
        ],
        "labels": label,
    }
    return {
        "snapshot": snapshot,
        "segment_counts": counts,
        "transitions": transitions,
        "grid_rows": grid_rows,
        "chart_data": chart,
    }


@admin.register(CustomerMetrics)
class CustomerMetricsAdmin(ComputedAdmin):
    change_list_template = "admin/django_crosssell/customermetrics/change_list.html"
    list_display = [
        "customer",
        "segment",
        "r_score",
        "f_score",
        "m_score",
        "decile",
        "recency_days",
        "frequency",
        "monetary",
        "last_order_at",
    ]
    list_filter = ["segment", "decile", "r_score", "f_score", "m_score"]
    list_select_related = ["segment"]
    search_fields = ["customer"]
    readonly_fields = ["explanation"]
    fields = ["explanation"]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        latest = MetricsSnapshot.objects.order_by("-computed_at", "-pk").first()
        return super().changelist_view(request, {**overview(latest), **(extra_context or {})})

    @admin.display(description=_("Why these scores"))
    def explanation(self, obj: CustomerMetrics) -> SafeString:
        return mark_safe(
            render_to_string("django_crosssell/customers/admin/explanation.html", explain(obj))
        )


def explain(metrics: CustomerMetrics) -> dict[str, Any]:
    """The thresholds behind each score, the segment's cell range, and LWP."""
    snapshot = metrics.snapshot
    thresholds = (snapshot.thresholds if snapshot else {}) or {}
    rows = []
    for letter, value, score, unit, direction in (
        ("r", metrics.recency_days, metrics.r_score, _("days since the last order"), "at_most"),
        ("f", metrics.frequency, metrics.f_score, _("orders"), "at_least"),
        ("m", metrics.monetary, metrics.m_score, _("revenue"), "at_least"),
    ):
        bounds = {int(k): v for k, v in (thresholds.get(letter) or {}).items()}
        own = bounds.get(score)
        above = bounds.get(score + 1)
        rows.append(
            {
                "letter": letter.upper(),
                "value": value,
                "unit": unit,
                "score": score,
                "own": own,
                "next": above,
                "next_score": score + 1 if above is not None else None,
                "direction": direction,
            }
        )
    analysis = lwp.analyse(metrics)
    names = lwp.category_names([*analysis.bought, *analysis.complements])
    keys = [row.product for row in analysis.pace]
    products = {
        product.pk: str(product) for product in get_adapter().products().filter(pk__in=keys)
    }
    pace = [
        {
            "product": products.get(row.product, row.product),
            "purchases": row.purchases,
            "median_gap_days": row.median_gap_days,
            "last_bought": row.last_bought,
            "next_due": row.next_due,
        }
        for row in analysis.pace
    ]
    return {
        "metrics": metrics,
        "scorer": snapshot.scorer if snapshot else "",
        "rows": rows,
        "segment": metrics.segment,
        "previous": metrics.previous_segment,
        "bought": [names[value] for value in analysis.bought],
        "complements": [names[value] for value in analysis.complements],
        "pace": pace,
        "priority": analysis.priority,
        "reasons": analysis.reasons,
        "action": lwp.ACTIONS[analysis.priority],
    }


@admin.register(MetricsSnapshot)
class MetricsSnapshotAdmin(ComputedAdmin):
    list_display = ["computed_at", "as_of", "scorer", "customers", "duration"]
    readonly_fields = ["segment_counts", "transitions", "grid", "thresholds"]


@admin.register(Audience)
class AudienceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "include_anonymous", "member_count"]
    list_filter = ["is_active", "include_anonymous"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["segments"]
    raw_id_fields = ["bought_products", "not_bought_products"]
    readonly_fields = ["members_preview"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "is_active", "include_anonymous"]}),
        (
            _("Segment and metrics"),
            {
                "fields": [
                    "segments",
                    ("recency_min", "recency_max"),
                    ("frequency_min", "frequency_max"),
                    ("monetary_min", "monetary_max"),
                    "deciles",
                ]
            },
        ),
        (
            _("Purchase history"),
            {"fields": ["bought_products", "not_bought_products", "bought_categories"]},
        ),
        (_("Consent"), {"fields": ["consent_purpose"]}),
        (_("Members now"), {"fields": ["members_preview"]}),
    ]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """The consent purpose as a choice of the ledger's purposes (built per form, not at
        import, and without touching the model field, which stays free text)."""
        if db_field.name == "consent_purpose":
            return forms.ChoiceField(
                label=db_field.verbose_name,
                required=False,
                choices=[("", "---------"), *Purpose.choices],
                help_text=db_field.help_text,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("members"))
    def member_count(self, obj: Audience) -> int:
        return audiences.members(obj).count()

    @admin.display(description=_("Live count and sample"))
    def members_preview(self, obj: Audience) -> SafeString:
        if obj.pk is None:
            return mark_safe("")
        rows = audiences.members(obj)
        context = {
            "count": rows.count(),
            "sample": list(rows.select_related("segment").order_by("-monetary")[:SAMPLE_SIZE]),
            "export_url": reverse(
                f"{self.admin_site.name}:django_crosssell_audience_export", args=[obj.pk]
            ),
            "audience": obj,
        }
        return mark_safe(render_to_string("django_crosssell/customers/admin/members.html", context))

    def get_urls(self) -> list[Any]:
        export = self.admin_site.admin_view(self.export_view)
        return [
            path("<int:pk>/export/", export, name="django_crosssell_audience_export"),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The audience's members as a CSV download (staff who may view audiences)."""
        audience = get_object_or_404(Audience, pk=pk)
        if not self.has_view_permission(request, audience):
            return HttpResponseForbidden()
        response = HttpResponse(audiences.export_csv(audience), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="audience-{audience.slug}.csv"'
        return response
