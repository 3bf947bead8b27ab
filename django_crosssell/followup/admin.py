"""Admin of the follow-up mail: flows, replenishment profiles, the outbox, the consent ledger
and suppressions (registered by the last line of :mod:`django_crosssell.admin`).

The consent ledger and the outbox are records: nobody edits or deletes them here. The ledger
exports as CSV (an action on the selected events, or on all of them).
"""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from ..money import format_money
from . import audience, consent, measurement
from .models import ConsentEvent, FollowUpFlow, ReplenishmentProfile, ScheduledMessage, Suppression

Status = ScheduledMessage.Status


class RecordAdmin(admin.ModelAdmin):
    """Rows that are a record: visible to staff, never changed or deleted in the admin."""

    class Media:
        css = {"all": ["django_crosssell/admin.css"]}

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- flows -----------------------------------------------------------------------------------


class FollowUpFlowForm(forms.ModelForm):
    class Meta:
        model = FollowUpFlow
        fields = [
            "name",
            "slug",
            "kind",
            "is_active",
            "trigger",
            "delay_days",
            "purpose",
            "audience",
            "items",
            "template_prefix",
        ]

    def clean_audience(self) -> str:
        name = self.cleaned_data.get("audience", "").strip()
        if name:
            try:
                audience.resolve(name)
            except ImproperlyConfigured as exc:
                raise forms.ValidationError(
                    gettext("This audience cannot be found: %(error)s") % {"error": exc}
                ) from exc
        return name


@admin.register(FollowUpFlow)
class FollowUpFlowAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["django_crosssell/admin.css"]}

    form = FollowUpFlowForm
    list_display = [
        "name",
        "kind",
        "trigger",
        "purpose",
        "delay_days",
        "is_active",
        "scheduled_count",
        "sent_count",
        "skipped_count",
        "failed_count",
        "revenue",
    ]
    list_filter = ["kind", "trigger", "purpose", "is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "is_active"]}),
        (_("When"), {"fields": ["trigger", "delay_days"]}),
        (_("To whom"), {"fields": ["purpose", "audience"]}),
        (_("What"), {"fields": ["items", "template_prefix"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        counts = {
            f"_{status}": Count("messages", filter=Q(messages__status=status))
            for status in (Status.SCHEDULED, Status.SENT, Status.SKIPPED, Status.FAILED)
        }
        return super().get_queryset(request).annotate(**counts)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        self._revenue: dict[int, Any] | None = None
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("due or scheduled"), ordering="_scheduled")
    def scheduled_count(self, obj: Any) -> int:
        return obj._scheduled

    @admin.display(description=_("sent"), ordering="_sent")
    def sent_count(self, obj: Any) -> int:
        return obj._sent

    @admin.display(description=_("skipped"), ordering="_skipped")
    def skipped_count(self, obj: Any) -> int:
        return obj._skipped

    @admin.display(description=_("failed"), ordering="_failed")
    def failed_count(self, obj: Any) -> int:
        return obj._failed

    @admin.display(description=_("attributed revenue"))
    def revenue(self, obj: FollowUpFlow) -> str:
        """From the measurement seam; "—" until measurement is wired."""
        if getattr(self, "_revenue", None) is None:
            ids = FollowUpFlow.objects.values_list("pk", flat=True)
            self._revenue = measurement.attributed_revenue(ids) or {}
        value = (self._revenue or {}).get(obj.pk)
        return "—" if value is None else format_money(value)


# --- replenishment profiles ----------------------------------------------------------------


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


@admin.register(ReplenishmentProfile)
class ReplenishmentProfileAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["django_crosssell/admin.css"]}

    # What staff act on; the learned details are on the change page (1400 px rule).
    list_display = [
        "product",
        "is_active",
        "staff_interval_days",
        "interval_used",
        "learned_customers",
        "learned_at",
    ]
    list_editable = ["is_active", "staff_interval_days"]
    list_filter = ["is_active"]
    list_select_related = ["product"]
    raw_id_fields = ["product"]
    readonly_fields = [
        "learned_interval",
        "learned_median",
        "learned_gaps",
        "learned_customers",
        "learned_at",
    ]
    actions = ["learn_now"]

    def check(self, **kwargs: Any) -> list:
        # An unresolved CROSSSELL_PRODUCT_MODEL is crosssell.E001/E002, not a traceback here.
        if isinstance(self.model._meta.get_field("product").remote_field.model, str):
            return []
        return super().check(**kwargs)

    @admin.display(description=_("learned interval (days per unit)"))
    def learned_interval(self, obj: ReplenishmentProfile) -> str:
        return _days(obj.learned_interval_days)

    @admin.display(description=_("median of the orders (days per unit)"))
    def learned_median(self, obj: ReplenishmentProfile) -> str:
        return _days(obj.learned_median_days)

    @admin.display(description=_("interval used (days per unit)"))
    def interval_used(self, obj: ReplenishmentProfile) -> str:
        return _days(obj.interval_days)

    @admin.action(description=_("Learn the intervals from the orders now"))
    def learn_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        from .replenishment import learn_intervals

        learned = learn_intervals()
        self.message_user(
            request,
            ngettext(
                "Learned from the orders: %(count)d product has repeat purchases.",
                "Learned from the orders: %(count)d products have repeat purchases.",
                len(learned),
            )
            % {"count": len(learned)},
            messages.SUCCESS,
        )


# --- the outbox ------------------------------------------------------------------------------


class DueFilter(admin.SimpleListFilter):
    title = _("due")
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("now", _("Due now")), ("later", _("Later"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "now":
            return queryset.filter(status=Status.SCHEDULED, due_at__lte=now)
        if self.value() == "later":
            return queryset.filter(status=Status.SCHEDULED, due_at__gt=now)
        return queryset


@admin.register(ScheduledMessage)
class ScheduledMessageAdmin(RecordAdmin):
    list_display = [
        "due_at",
        "flow",
        "email",
        "customer",
        "anchor_order",
        "product",
        "status",
        "reason",
        "sent_at",
    ]
    list_filter = ["status", DueFilter, "reason", "flow"]
    list_select_related = ["flow", "product"]
    search_fields = ["email", "customer", "anchor_order", "uuid"]
    date_hierarchy = "due_at"
    actions = ["cancel"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Cancel the selected scheduled messages"))
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(status=Status.SCHEDULED).update(
            status=Status.SKIPPED,
            reason=ScheduledMessage.Reason.CANCELLED,
            detail=gettext("by %(user)s") % {"user": request.user.get_username()},
            updated_at=timezone.now(),
        )
        self.message_user(
            request,
            ngettext("%(count)d message cancelled.", "%(count)d messages cancelled.", count)
            % {"count": count},
            messages.SUCCESS,
        )


# --- consent ---------------------------------------------------------------------------------


class ConsentEventForm(forms.ModelForm):
    """Staff record a consent event (a customer asked by phone); the source is "admin"."""

    class Meta:
        model = ConsentEvent
        fields = ["customer", "email", "purpose", "action", "note"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("customer") and not data.get("email"):
            raise forms.ValidationError(gettext("Give a customer or an e-mail address."))
        return data


@admin.register(ConsentEvent)
class ConsentEventAdmin(RecordAdmin):
    form = ConsentEventForm
    list_display = [
        "created_at",
        "customer",
        "email",
        "purpose",
        "action",
        "source",
        "text_version",
        "short_hash",
        "note",
    ]
    list_filter = ["purpose", "action", "source", "text_version"]
    search_fields = ["customer", "email", "note"]
    date_hierarchy = "created_at"
    actions = ["export_csv"]

    @admin.display(description=_("consent text hash"))
    def short_hash(self, obj: ConsentEvent) -> str:
        return format_html('<span title="{}">{}</span>', obj.text_hash, obj.text_hash[:12])

    def save_model(self, request: HttpRequest, obj: ConsentEvent, form: Any, change: bool) -> None:
        if change:  # has_change_permission is False; never reached
            return
        (event,) = consent.record(
            purposes=[obj.purpose],
            action=obj.action,
            source=ConsentEvent.Source.ADMIN,
            customer=obj.customer or None,
            email=obj.email,
            note=obj.note or gettext("by %(user)s") % {"user": request.user.get_username()},
        )
        obj.pk, obj.created_at, obj.source = event.pk, event.created_at, event.source
        obj._state.adding = False

    @admin.action(description=_("Export the selected events as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        out = io.StringIO()
        consent.export_csv(out, queryset)
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="consent-ledger-{stamp}.csv"'
        return response


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["django_crosssell/admin.css"]}

    list_display = ["email", "purpose", "reason", "source", "detail", "created_at", "lifted_at"]
    list_filter = ["reason", "source", "purpose", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "detail"]
    fields = ["email", "purpose", "reason", "detail"]
    actions = ["lift"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Suppression, form: Any, change: bool) -> None:
        obj.email = consent.normalize_email(obj.email)
        obj.source = ConsentEvent.Source.ADMIN
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Lift the selected suppressions"))
    def lift(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.filter(lifted_at__isnull=True).update(lifted_at=timezone.now())
        self.message_user(
            request,
            ngettext("%(count)d suppression lifted.", "%(count)d suppressions lifted.", count)
            % {"count": count},
            messages.SUCCESS,
        )
