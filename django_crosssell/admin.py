"""Admin for curating relations, tier ladders and bundle rules, and reading affinity runs.

Over 600 lines on purpose: these are the admin classes of the core models, and they share
the product lookup, slug, kind and campaign-window pieces defined here; the feature
packages (``customers``, ``followup``, ``measure``) register theirs in their own ``admin``
modules, imported at the bottom.

Product pickers use autocomplete when the host registered its product model in the admin
with ``search_fields`` and fall back to raw id inputs otherwise; that is decided per request
rather than at import time, because the host's admin may be registered after ours.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import widgets
from django.db import IntegrityError, models, transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from . import bundles, money
from .conf import app_settings, get_product_model
from .errors import RecomputeParameterError
from .forms import BundleItemFormSet, VerboseUniqueFormSet
from .models import (
    AffinityRun,
    BundleItem,
    BundleRule,
    ProductAffinity,
    ProductRelation,
    ProductSales,
    ProductSimilarity,
    TierLadder,
    TierStep,
)
from .recommend.preview import product_page
from .recommend.tiers import blocked_steps
from .slugs import slug_for, unique_slug

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


class SlugFromNameMixin(_ModelAdminBase):
    """A slug made from the name when staff leave it empty: 「砥石」 -> "toishi".

    The admin's JavaScript slug (``prepopulated_fields``) drops every Japanese character, so
    a Japanese name gave an empty slug (a "required" error on a field nobody filled in) or
    its digits only; :func:`django_crosssell.slugs.slug_for` romanizes (pykakasi, the ``ja``
    extra) or falls back to a stable hash, and :func:`unique_slug` keeps it unique.
    """

    slug_source = "name"
    slug_prefix = "item"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)  # type: ignore[misc]
        source, prefix = self.slug_source, self.slug_prefix

        class SlugForm(form):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                if "slug" in self.fields:
                    self.fields["slug"].required = False
                    if str(self.fields["slug"].label) == "Slug":  # a field without verbose_name
                        self.fields["slug"].label = capfirst(_("slug"))
                    self.fields["slug"].help_text = _(
                        "Leave empty to make one from the name (Japanese is written in romaji)."
                    )

            def clean(self) -> dict[str, Any]:
                data = super().clean()
                if "slug" in self.fields and not data.get("slug") and data.get(source):
                    max_length = self._meta.model._meta.get_field("slug").max_length or 50
                    data["slug"] = unique_slug(
                        self._meta.model,
                        slug_for(str(data[source]), max_length=max_length - 4, prefix=prefix),
                        exclude_pk=self.instance.pk,
                    )
                    self.errors.pop("slug", None)
                return data

        return SlugForm


def window_text(obj: Any) -> str:
    """A campaign window in one short cell: "–12/14 23:59", "12/01–", "" for always."""
    if obj.starts_at is None and obj.ends_at is None:
        return ""

    def day(moment: Any) -> str:
        return date_format(timezone.localtime(moment), "SHORT_DATE_FORMAT") if moment else ""

    return f"{day(obj.starts_at)}–{day(obj.ends_at)}"


#: What each kind of curated link does on the storefront, for labels and help texts.
RELATION_KIND_LABELS: dict[str, StrOrPromise] = {
    ProductRelation.Kind.CROSS_SELL: _("Goes with it (cross-sell)"),
    ProductRelation.Kind.RELATED: _("Alternative (related)"),
}
RELATION_KIND_HELP = _(
    "Both kinds are listed first under “You may also like” on the source product's page. "
    "“Goes with it” links also appear in “Frequently bought together” on that page and in "
    "the cart's “Frequently bought together”; “Alternative” links appear only under "
    "“You may also like”."
)
BUNDLE_KIND_SHORT: dict[str, StrOrPromise] = {
    BundleRule.Kind.FIXED_SET: _("Set"),
    BundleRule.Kind.MIX_AND_MATCH: _("Mix and match"),
    BundleRule.Kind.MULTI_BUY: _("Multi-buy"),
}
BUNDLE_KIND_HELP = _(
    "Every kind shows under “Bundle offers” on the page of each listed product and is "
    "applied in the cart, with an “add N more” hint there. A set offers “Add the set to "
    "cart”; mix-and-match and multi-buy link to the page of eligible products."
)


class KindFilter(admin.SimpleListFilter):
    """The kind filter with the same labels as the list and the form."""

    title = _("kind")
    parameter_name = "kind__exact"  # the URLs of the field filter it replaces
    labels: dict[str, StrOrPromise] = {}

    def lookups(self, request, model_admin):
        return list(self.labels.items())

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class RelationKindFilter(KindFilter):
    labels = RELATION_KIND_LABELS


class BundleKindFilter(KindFilter):
    labels = BUNDLE_KIND_SHORT


class RelationKindMixin(_ModelAdminBase):
    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "kind":
            kinds = ProductRelation.Kind
            kwargs["choices"] = [(kind.value, RELATION_KIND_LABELS[kind]) for kind in kinds]
            kwargs["help_text"] = RELATION_KIND_HELP
        return super().formfield_for_choice_field(db_field, request, **kwargs)


#: The admin stylesheet (wrapping, narrow number inputs, warnings): every admin of the app.
ADMIN_MEDIA = forms.Media(css={"all": ["django_crosssell/admin.css"]})


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


class ProductRelationInline(RelationKindMixin, ProductLookupMixin, admin.TabularInline):
    """Add this to the host's product admin to curate links on the product page itself.

    Campaign windows are edited on the link's own page: two date-time pickers per row
    would push the table past a 1400 px window.
    """

    model = ProductRelation
    fk_name = "source"
    product_fields = ("target",)
    formset = VerboseUniqueFormSet
    fields = ["target", "kind", "position", "is_active", "note", "window"]
    readonly_fields = ["window"]
    extra = 0
    formfield_overrides = {
        models.PositiveIntegerField: {"widget": forms.NumberInput(attrs={"style": "width:5em"})},
        models.CharField: {"widget": forms.TextInput(attrs={"size": 24})},
    }

    @admin.display(description=_("campaign window"))
    def window(self, obj: ProductRelation) -> str:
        return window_text(obj)

    ordering = ["kind", "position"]
    verbose_name = _("recommended product")
    verbose_name_plural = _("recommended products")


@admin.register(ProductRelation)
class ProductRelationAdmin(RelationKindMixin, ProductLookupMixin, admin.ModelAdmin):
    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    product_fields = ("source", "target")
    list_display = [
        "source",
        "target",
        "kind_label",
        "position",
        "is_active",
        "window",
        "is_current_now",
    ]
    readonly_fields = ["page_preview"]
    list_editable = ["position", "is_active"]
    list_filter = [RelationKindFilter, "is_active", CurrentFilter, "audience"]
    list_select_related = ["source", "target"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["source", "target", "kind", "position", "is_active", "note"]}),
        (_("Who sees it"), {"fields": ["audience"]}),
        (_("Campaign window"), {"fields": ["starts_at", "ends_at"]}),
        (_("What the source product's page shows"), {"fields": ["page_preview"]}),
    ]
    actions = ["add_reverse_links"]

    @admin.display(description=_("kind"), ordering="kind")
    def kind_label(self, obj: ProductRelation) -> StrOrPromise:
        return RELATION_KIND_LABELS.get(obj.kind, obj.kind)

    @admin.display(description=_("campaign window"))
    def window(self, obj: ProductRelation) -> str:
        return window_text(obj)

    @admin.display(description=_("preview"))
    def page_preview(self, obj: ProductRelation) -> StrOrPromise:
        """Each widget of the source product's page with its items, source and reason, read
        through the recommendation services (cached like the storefront)."""
        if obj.pk is None:
            return _("Save the link to see what the product page will show.")
        return preview_html(obj.source)

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
    formset = VerboseUniqueFormSet
    fields = ["rank", "product", "label", "pitch"]
    ordering = ["rank"]
    extra = 0
    formfield_overrides = {
        models.PositiveIntegerField: {"widget": forms.NumberInput(attrs={"style": "width:4em"})},
        models.IntegerField: {"widget": forms.NumberInput(attrs={"style": "width:4em"})},
        models.CharField: {"widget": forms.TextInput(attrs={"size": 12})},
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 40})},
    }


def ladder_warnings(steps: list[TierStep]) -> list[str]:
    """Why upgrades on a ladder will never be shown (price ratio rule), one line per step."""
    cap = app_settings.UPGRADE_MAX_PRICE_RATIO
    lines = []
    for lower, upper, ratio in blocked_steps(steps):
        params = {
            "lower": lower.label or lower.product,
            "upper": upper.label or upper.product,
            "ratio": f"{ratio:.3f}",
            "cap": cap,
        }
        if ratio <= 1:
            lines.append(
                gettext(
                    "%(lower)s → %(upper)s is never offered: the higher step does not cost "
                    "more (price ratio %(ratio)s)."
                )
                % params
            )
        else:
            lines.append(
                gettext(
                    "%(lower)s → %(upper)s is never offered: it costs %(ratio)s times as much, "
                    "over UPGRADE_MAX_PRICE_RATIO %(cap)s."
                )
                % params
            )
    return lines


@admin.register(TierLadder)
class TierLadderAdmin(SlugFromNameMixin, admin.ModelAdmin):
    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    list_display = ["name", "is_active", "audience", "step_count", "upgrade_check"]
    list_filter = ["is_active", "audience"]
    search_fields = ["name", "slug", "description"]
    inlines = [TierStepInline]
    readonly_fields = ["upgrade_check"]
    fields = ["name", "slug", "is_active", "description", "upgrade_check"]
    slug_prefix = "ladder"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(_step_count=Count("steps"))
            .prefetch_related("steps__product")
        )

    @admin.display(description=_("steps"), ordering="_step_count")
    def step_count(self, obj: Any) -> int:
        return obj._step_count

    @admin.display(description=_("upgrades shown"))
    def upgrade_check(self, obj: TierLadder) -> StrOrPromise:
        """Flags steps the storefront never offers because of ``UPGRADE_MAX_PRICE_RATIO``."""
        if obj.pk is None:
            return ""
        warnings = ladder_warnings(list(obj.steps.all()))
        if not warnings:
            return format_html('<span class="crosssell-ok">{}</span>', _("Every step is offered."))
        return format_html(
            '<ul class="crosssell-warning">{}</ul>',
            format_html_join("", "<li>⚠ {}</li>", ((line,) for line in warnings)),
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        for line in ladder_warnings(list(form.instance.steps.select_related("product"))):
            self.message_user(request, line, messages.WARNING)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Computed data: visible to staff, editable only by a recompute."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AffinityRun)
class AffinityRunAdmin(ReadOnlyAdmin):
    """Runs, newest first, with a "Recompute now" button that queues one (``enqueue``)."""

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    list_display = ["pk", "status", "is_current", "finished_at", "orders_read", "pairs_written"]
    list_filter = ["status", "is_current"]
    date_hierarchy = "started_at"
    change_list_template = "admin/django_crosssell/affinityrun/change_list.html"
    change_form_template = "admin/django_crosssell/affinityrun/change_form.html"

    def get_urls(self) -> list:
        return [
            path(
                "recompute/",
                self.admin_site.admin_view(require_POST(self.recompute_view)),
                name="django_crosssell_affinityrun_recompute",
            ),
            *super().get_urls(),
        ]

    def recompute_view(self, request: HttpRequest) -> HttpResponse:
        """Queue a run with the settings' parameters and show it (its page follows it)."""
        if not request.user.has_perm("django_crosssell.add_affinityrun"):
            messages.error(request, gettext("You may not start a recompute."))
            return HttpResponseRedirect(reverse("admin:django_crosssell_affinityrun_changelist"))
        from .enqueue import enqueue_recompute

        try:
            run = enqueue_recompute()
        except RecomputeParameterError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("admin:django_crosssell_affinityrun_changelist"))
        if run.status == AffinityRun.Status.FAILED:
            messages.error(request, run.error)
        else:
            messages.success(request, gettext("Recompute queued as run #%(pk)s.") % {"pk": run.pk})
        return HttpResponseRedirect(
            reverse("admin:django_crosssell_affinityrun_change", args=[run.pk])
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ):
        run = get_object_or_404(AffinityRun, pk=object_id)
        extra = {
            **(extra_context or {}),
            "crosssell_in_progress": run.status
            in (AffinityRun.Status.QUEUED, AffinityRun.Status.RUNNING),
        }
        return super().change_view(request, object_id, form_url, extra)


@admin.register(ProductAffinity)
class ProductAffinityAdmin(ReadOnlyAdmin):
    """Scores rounded to what a person compares; every digit stays on the change page."""

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    list_display = ["source", "target", "co_count", "score_shown", "lift_shown", "confidence_shown"]
    list_select_related = ["source", "target"]
    list_filter = [("run__is_current", admin.BooleanFieldListFilter)]

    @admin.display(description=_("score"), ordering="score")
    def score_shown(self, obj: ProductAffinity) -> str:
        return f"{obj.score:.3f}"

    @admin.display(description=_("lift"), ordering="lift")
    def lift_shown(self, obj: ProductAffinity) -> str:
        return f"{obj.lift:.2f}"

    @admin.display(description=_("confidence"), ordering="confidence")
    def confidence_shown(self, obj: ProductAffinity) -> str:
        return f"{obj.confidence:.1%}"

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return _source_search_fields(self.admin_site, request, "source")


def _source_search_fields(
    admin_site: admin.AdminSite, request: HttpRequest, field: str
) -> list[str]:
    return [f"{field}__{f.lstrip('^=@')}" for f in product_admin_search_fields(admin_site, request)]


@admin.register(ProductSales)
class ProductSalesAdmin(ReadOnlyAdmin):
    """Each product's order count in a run's window: what the bestseller fallback reads."""

    list_display = ["product", "orders", "run"]
    list_select_related = ["product", "run"]
    list_filter = [("run__is_current", admin.BooleanFieldListFilter)]

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return _source_search_fields(self.admin_site, request, "product")


@admin.register(ProductSimilarity)
class ProductSimilarityAdmin(ReadOnlyAdmin):
    """Content neighbours of products without co-purchase partners (cold start)."""

    list_display = ["source", "target", "similarity_shown"]
    list_select_related = ["source", "target"]
    list_filter = [("run__is_current", admin.BooleanFieldListFilter)]

    @admin.display(description=_("score"), ordering="score")
    def similarity_shown(self, obj: ProductSimilarity) -> str:
        return f"{obj.score:.3f}"

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        return _source_search_fields(self.admin_site, request, "source")


# --- bundle rules ----------------------------------------------------------------------------


class BundleItemInline(ProductLookupMixin, admin.TabularInline):
    model = BundleItem
    formset = BundleItemFormSet
    fields = ["product", "quantity"]
    extra = 2
    min_num = 1
    formfield_overrides = {
        models.PositiveIntegerField: {"widget": forms.NumberInput(attrs={"style": "width:5em"})},
    }


@admin.register(BundleRule)
class BundleRuleAdmin(SlugFromNameMixin, admin.ModelAdmin):
    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    list_display = [
        "name",
        "kind_label",
        "discount",
        "priority",
        "is_active",
        "window",
        "is_current_now",
    ]
    list_filter = [
        "is_active",
        CurrentFilter,
        BundleKindFilter,
        "discount_type",
        "combinable",
        "audience",
    ]
    search_fields = ["name", "slug", "pitch"]
    readonly_fields = ["preview"]
    slug_prefix = "bundle"

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "kind":
            kwargs["help_text"] = BUNDLE_KIND_HELP
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    @admin.display(description=_("kind"), ordering="kind")
    def kind_label(self, obj: BundleRule) -> StrOrPromise:
        return BUNDLE_KIND_SHORT.get(obj.kind, obj.kind)

    @admin.display(description=_("discount"))
    def discount(self, obj: BundleRule) -> str:
        value = obj.value
        if obj.discount_type == BundleRule.DiscountType.PERCENT:
            return gettext("%(percent)s%% off") % {"percent": money.format_percent(value)}
        if obj.discount_type == BundleRule.DiscountType.AMOUNT:
            return gettext("%(amount)s off") % {"amount": money.format_money(value)}
        return gettext("for %(price)s") % {"price": money.format_money(value)}

    @admin.display(description=_("campaign window"))
    def window(self, obj: BundleRule) -> str:
        return window_text(obj)

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
                slug = rule.slug
                rule.name = (gettext("%(name)s (copy)") % {"name": rule.name})[:200]
                rule.is_active = False
                rule.starts_at = rule.ends_at = None
                _save_with_free_slug(rule, slug)
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


def _save_with_free_slug(rule: BundleRule, slug: str, attempts: int = 10) -> None:
    """Save ``rule`` as a new row under the first free ``slug-copy...``.

    Two editors clicking "duplicate" at once both find the same free slug; the second insert
    then violates the unique slug, so it takes the next one (in a savepoint, which keeps the
    action's transaction usable) instead of answering 500.
    """
    for attempt in range(attempts):
        rule.pk = rule.id = None
        rule._state.adding = True
        rule.slug = _free_slug(slug)
        try:
            with transaction.atomic():
                rule.save()
            return
        except IntegrityError:
            if attempt == attempts - 1 or not BundleRule.objects.filter(slug=rule.slug).exists():
                raise  # not the slug race


def _free_slug(slug: str) -> str:
    """``slug-copy``, ``slug-copy-2``, ... whichever is not taken yet."""
    base = f"{slug[:190]}-copy"
    taken = set(BundleRule.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def preview_html(product: Any) -> str:
    """The product page's widgets as the admin shows them (:func:`recommend.preview`)."""
    sections = []
    for widget in product_page(product):
        if widget.items:
            rows = format_html_join(
                "",
                "<li><strong>{}</strong> <small>({} · {})</small></li>",
                ((item.product, item.source_label, item.reason) for item in widget.items),
            )
            body = format_html("<ol>{}</ol>", rows)
        else:
            body = format_html("<p><em>{}</em></p>", gettext("Not shown (nothing to show)."))
        sections.append(format_html("<h4>{}</h4>{}", widget.title, body))
    return format_html(
        '<div class="crosssell-page-preview">{}</div>',
        format_html_join("", "{}", ((section,) for section in sections)),
    )


from .customers import admin as customers_admin  # noqa: E402, F401  (segments, metrics, audiences)
from .followup import admin as followup_admin  # noqa: E402, F401  (flows, outbox, consent)
from .measure import admin as measure_admin  # noqa: E402, F401  (experiments, performance)
