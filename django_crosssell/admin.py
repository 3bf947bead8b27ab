"""Admin for curating relations and tier ladders.

Product pickers use autocomplete when the host registered its product model in the admin
with ``search_fields`` and fall back to raw id inputs otherwise; that is decided per request
rather than at import time, because the host's admin may be registered after ours.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .conf import get_product_model
from .models import AffinityRun, ProductAffinity, ProductRelation, TierLadder, TierStep


def product_admin_search_fields(admin_site: admin.AdminSite) -> list[str]:
    model_admin = admin_site._registry.get(get_product_model())
    if model_admin is None:
        return []
    return list(model_admin.get_search_fields(None) or [])


class ProductLookupMixin:
    """Autocomplete for product foreign keys when the host's product admin allows it."""

    product_fields: tuple[str, ...] = ("product",)

    def check(self, **kwargs: Any) -> list:
        # With CROSSSELL_PRODUCT_MODEL missing or wrong the product foreign keys never
        # resolve and Django's admin checks would crash on them with a traceback;
        # crosssell.E001/E002 already say what is wrong.
        if any(
            isinstance(self.model._meta.get_field(name).remote_field.model, str)
            for name in self.product_fields
        ):
            return []
        return super().check(**kwargs)

    def get_autocomplete_fields(self, request: HttpRequest) -> list[str]:
        if product_admin_search_fields(self.admin_site):
            return [*super().get_autocomplete_fields(request), *self.product_fields]
        return list(super().get_autocomplete_fields(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.product_fields and not product_admin_search_fields(
            self.admin_site
        ):
            kwargs["widget"] = widgets.ForeignKeyRawIdWidget(db_field.remote_field, self.admin_site)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class CurrentFilter(admin.SimpleListFilter):
    """Active and inside the campaign window right now."""

    title = _("current")
    parameter_name = "current"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        current = queryset.current()
        if self.value() == "yes":
            return current
        if self.value() == "no":
            return queryset.exclude(pk__in=current.values("pk"))
        return queryset


class ProductRelationInline(ProductLookupMixin, admin.TabularInline):
    """Add this to the host's product admin to curate links on the product page itself."""

    model = ProductRelation
    fk_name = "source"
    product_fields = ("target",)
    fields = ["target", "kind", "position", "is_active", "starts_at", "ends_at", "note"]
    extra = 0
    ordering = ["kind", "position"]
    verbose_name = _("recommended product")
    verbose_name_plural = _("recommended products")


@admin.register(ProductRelation)
class ProductRelationAdmin(ProductLookupMixin, admin.ModelAdmin):
    product_fields = ("source", "target")
    list_display = [
        "source",
        "target",
        "kind",
        "position",
        "is_active",
        "starts_at",
        "ends_at",
        "is_current_now",
    ]
    list_editable = ["position", "is_active"]
    list_filter = ["kind", "is_active", CurrentFilter]
    list_select_related = ["source", "target"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["source", "target", "kind", "position", "is_active", "note"]}),
        (_("Campaign window"), {"fields": ["starts_at", "ends_at"]}),
    ]
    actions = ["add_reverse_links"]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        product_fields = product_admin_search_fields(self.admin_site)
        return [
            *(f"source__{field.lstrip('^=@')}" for field in product_fields),
            *(f"target__{field.lstrip('^=@')}" for field in product_fields),
            "note",
        ]

    @admin.display(boolean=True, description=_("current"))
    def is_current_now(self, obj: ProductRelation) -> bool:
        return obj.is_current()

    @admin.action(description=_("Add the reverse link (target → source)"))
    def add_reverse_links(self, request: HttpRequest, queryset: QuerySet) -> None:
        created = skipped = 0
        for relation in queryset:
            lookup = {"source_id": relation.target_id, "target_id": relation.source_id}
            if ProductRelation.objects.filter(**lookup, kind=relation.kind).exists():
                skipped += 1
                continue
            try:
                with transaction.atomic():
                    ProductRelation.objects.create(
                        **lookup,
                        kind=relation.kind,
                        position=relation.position,
                        is_active=relation.is_active,
                        starts_at=relation.starts_at,
                        ends_at=relation.ends_at,
                        note=relation.note,
                    )
            except IntegrityError:  # created concurrently
                skipped += 1
            else:
                created += 1
        self.message_user(
            request,
            ngettext(
                "%(created)d reverse link added, %(skipped)d already existed.",
                "%(created)d reverse links added, %(skipped)d already existed.",
                created,
            )
            % {"created": created, "skipped": skipped},
            messages.SUCCESS,
        )


class TierStepInline(ProductLookupMixin, admin.TabularInline):
    model = TierStep
    fields = ["rank", "product", "label", "pitch"]
    ordering = ["rank"]
    extra = 0


@admin.register(TierLadder)
class TierLadderAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "step_count"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TierStepInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(_step_count=Count("steps"))

    @admin.display(description=_("steps"), ordering="_step_count")
    def step_count(self, obj: Any) -> int:
        return obj._step_count


class ReadOnlyAdmin(admin.ModelAdmin):
    """Computed data: visible to staff, editable only by a recompute."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AffinityRun)
class AffinityRunAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "status",
        "is_current",
        "started_at",
        "finished_at",
        "orders_read",
        "lines_read",
        "products",
        "pairs_written",
    ]
    list_filter = ["status", "is_current"]
    date_hierarchy = "started_at"


@admin.register(ProductAffinity)
class ProductAffinityAdmin(ReadOnlyAdmin):
    list_display = ["source", "target", "co_count", "support", "confidence", "lift", "score", "run"]
    list_select_related = ["source", "target", "run"]
    list_filter = [("run__is_current", admin.BooleanFieldListFilter)]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return [f"source__{f.lstrip('^=@')}" for f in product_admin_search_fields(self.admin_site)]
