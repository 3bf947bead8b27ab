"""Admin of measurement: experiments with their variants, and "Cross-sell performance".

The dashboard is the changelist of :class:`~django_crosssell.measure.models.DailyRollup`
(so it sits in the app's admin index with the staff permission to view rollups): charts
(Chart.js, a vendored static file) fed by ``json_script``, no inline JavaScript, each
chart with a caption and the same figures in a table; ``?format=csv`` downloads the daily
figures. Experiment results are computed only here and in the command (scipy loaded
lazily). Imported by the last lines of ``django_crosssell/admin.py``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from .dashboard import daily_csv, performance
from .models import DailyRollup, Experiment, OrderAttribution, Variant

DAY_CHOICES = (7, 30, 90)


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 2
    fields = ("key", "position", "weight", "config")


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "status", "unit", "coverage", "primary_metric", "starts_at")
    list_filter = ("status",)
    search_fields = ("key", "name")
    inlines = [VariantInline]
    fieldsets = (
        (None, {"fields": ("key", "name", "status", "placements")}),
        (_("Assignment"), {"fields": ("unit", "seed", "coverage", "starts_at", "ends_at")}),
        (_("Analysis"), {"fields": ("primary_metric", "alpha", "min_sample", "min_days")}),
    )


@admin.register(OrderAttribution)
class OrderAttributionAdmin(admin.ModelAdmin):
    list_display = (
        "record",
        "kind",
        "product",
        "quantity",
        "revenue",
        "placement",
        "position",
        "same_session",
        "clicked_at",
        "reversed_at",
    )
    list_filter = ("kind", "placement", "same_session")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DailyRollup)
class PerformanceAdmin(admin.ModelAdmin):
    """The dashboard replaces the changelist."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        try:
            days = int(request.GET.get("days", 30))
        except ValueError:
            days = 30
        days = days if days in DAY_CHOICES else 30
        data = performance(days)
        if request.GET.get("format") == "csv":
            response = HttpResponse(daily_csv(data), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="crosssell-{days}d.csv"'
            return response
        from .report import experiment_report  # scipy: only when the dashboard is opened

        experiments = [
            experiment_report(experiment)
            for experiment in Experiment.objects.exclude(status=Experiment.Status.DRAFT)[:5]
        ]
        chart = {
            "labels": [row["day"] for row in data["daily"]],
            "impressions": [row["impressions"] for row in data["daily"]],
            "clicks": [row["clicks"] for row in data["daily"]],
            "views": [row["views"] for row in data["daily"]],
            "revenue": [float(row["revenue"]) for row in data["daily"]],
            "series": {
                "impressions": str(_("Impressions")),
                "views": str(_("Viewable impressions")),
                "clicks": str(_("Clicks")),
                "revenue": str(_("Attributed revenue")),
            },
        }
        context = {
            **self.admin_site.each_context(request),
            "title": _("Cross-sell performance"),
            "opts": self.model._meta,
            "data": data,
            "chart": chart,
            "experiments": experiments,
            "days": days,
            "day_choices": DAY_CHOICES,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "django_crosssell/measure/performance.html", context)
