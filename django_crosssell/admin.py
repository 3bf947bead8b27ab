"""Admin for curating relations and tier ladders.

Product pickers use autocomplete when the host registered its product model in the admin
with ``search_fields`` and fall back to raw id inputs otherwise; that is decided per request
rather than at import time, because the host's admin may be registered after ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import bundles, money
from .conf import get_product_model
from .forms import BundleItemFormSet
from .models import (
    AffinityRun,
    BundleItem,
    BundleRule,
    ProductAffinity,
    ProductRelation,
    TierLadder,
    TierStep,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import BaseModelAdmin
    from django_stubs_ext import StrOrPromise

    # What the mixin extends: ModelAdmin and InlineModelAdmin share this base.
    _ModelAdminBase = BaseModelAdmin[Any]
else:
    _ModelAdminBase = object


def product_admin_search_fields(admin_site: admin.AdminSite, request: HttpRequest) -> list[str]:
    model_admin = admin_site._registry.get(get_product_model())
    if model_admin is None:
        return []
    return list(model_admin.get_search_fields(request) or [])


class ProductLookupMixin(_ModelAdminBase):
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
        if product_admin_search_fields(self.admin_site, request):
            return [*super().get_autocomplete_fields(request), *self.product_fields]
        return list(super().get_autocomplete_fields(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in self.product_fields and not product_admin_search_fields(
            self.admin_site, request
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
    list_filter = ["kind", "is_active", CurrentFilter, "audience"]
    list_select_related = ["source", "target"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["source", "target", "kind", "position", "is_active", "note"]}),
        (_("Who sees it"), {"fields": ["audience"]}),
        (_("Campaign window"), {"fields": ["starts_at", "ends_at"]}),
    ]
    actions = ["add_reverse_links"]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        product_fields = product_admin_search_fields(self.admin_site, request)
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
    list_display = ["name", "slug", "is_active", "audience", "step_count"]
    list_filter = ["is_active", "audience"]
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
        return [
            f"source__{f.lstrip('^=@')}"
            for f in product_admin_search_fields(self.admin_site, request)
        ]


# --- bundle rules ----------------------------------------------------------------------------


class BundleItemInline(ProductLookupMixin, admin.TabularInline):
    model = BundleItem
    formset = BundleItemFormSet
    fields = ["product", "quantity"]
    extra = 2
    min_num = 1


@admin.register(BundleRule)
class BundleRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "kind",
        "discount_type",
        "value",
        "priority",
        "combinable",
        "is_active",
        "starts_at",
        "ends_at",
        "is_current_now",
    ]
    list_filter = ["is_active", CurrentFilter, "kind", "discount_type", "combinable", "audience"]
    search_fields = ["name", "slug", "pitch"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["preview"]
    inlines = [BundleItemInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active", "kind", "pitch"]}),
        (
            _("Discount"),
            {
                "fields": [
                    "discount_type",
                    "value",
                    "min_quantity",
                    "max_applications",
                    "combinable",
                    "priority",
                ]
            },
        ),
        (_("Who sees it"), {"fields": ["audience"]}),
        (_("Campaign window"), {"fields": ["starts_at", "ends_at"]}),
        (_("Preview at current prices"), {"fields": ["preview"]}),
    ]
    actions = ["duplicate_for_new_campaign"]

    @admin.display(boolean=True, description=_("current"))
    def is_current_now(self, obj: BundleRule) -> bool:
        return obj.is_current()

    @admin.display(description=_("preview"))
    def preview(self, obj: BundleRule) -> StrOrPromise:
        """One bundle at the items' current prices, so staff see what a customer saves."""
        if obj.pk is None:
            return _("Save the rule to see a preview.")
        offer = bundles.preview(obj)
        if offer is None:
            return _("No saving at the current prices (or no priced items yet).")
        return format_html(
            '<dl class="crosssell-preview"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>'
            "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
            _("Units in one bundle"),
            offer.units,
            _("Regular total"),
            money.format_money(offer.regular_total),
            _("Discount"),
            money.format_money(offer.saving),
            _("Bundle total"),
            money.format_money(offer.bundle_total),
        )

    @admin.action(description=_("Duplicate for a new campaign (inactive, no dates)"))
    def duplicate_for_new_campaign(self, request: HttpRequest, queryset: QuerySet) -> None:
        copies = 0
        with transaction.atomic():
            for rule in queryset.prefetch_related("items"):
                items = list(rule.items.all())
                rule.pk = rule.id = None
                rule._state.adding = True
                rule.slug = _free_slug(rule.slug)
                rule.name = (gettext("%(name)s (copy)") % {"name": rule.name})[:200]
                rule.is_active = False
                rule.starts_at = rule.ends_at = None
                rule.save()
                BundleItem.objects.bulk_create(
                    BundleItem(rule=rule, product_id=item.product_id, quantity=item.quantity)
                    for item in items
                )
                copies += 1
        self.message_user(
            request,
            ngettext(
                "%(count)d rule duplicated as an inactive copy.",
                "%(count)d rules duplicated as inactive copies.",
                copies,
            )
            % {"count": copies},
            messages.SUCCESS,
        )


def _free_slug(slug: str) -> str:
    """``slug-copy``, ``slug-copy-2``, ... whichever is not taken yet."""
    base = f"{slug[:190]}-copy"
    taken = set(BundleRule.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


from .customers import admin as customers_admin  # noqa: E402, F401  (segments, metrics, audiences)
from .followup import admin as followup_admin  # noqa: E402, F401  (flows, outbox, consent)
