"""Models of the follow-up package, imported into :mod:`django_crosssell.models`.

* :class:`ConsentEvent` - the append-only consent ledger: one row per grant or withdrawal,
  per customer (or e-mail address) and purpose. The current state is derived (the latest
  event wins), never stored, so the ledger is the record a regulator or a customer asks for.
* :class:`Suppression` - addresses that get no marketing mail for a purpose (or any):
  unsubscribed, bounced, complained.
* :class:`FollowUpFlow` - what to send after an order (a follow-up or a replenishment
  reminder), when, to whom.
* :class:`ReplenishmentProfile` - how long one unit of a product lasts: staff's interval and
  the one learned from the orders.
* :class:`ScheduledMessage` - the outbox: one row per (flow, anchor order line), its due
  time, and what happened (sent, or skipped and why).

This module imports nothing from the rest of the package (``django_crosssell.models``
imports it).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The same placeholder as django_crosssell.models (a missing setting is crosssell.E001).
PRODUCT_MODEL = getattr(settings, "CROSSSELL_PRODUCT_MODEL", None) or (
    "django_crosssell.UnsetProductModel"
)

#: What ``from .followup.models import *`` in :mod:`django_crosssell.models` brings in.
__all__ = [
    "ConsentEvent",
    "FollowUpFlow",
    "Purpose",
    "ReplenishmentProfile",
    "ScheduledMessage",
    "Suppression",
]


class Purpose(models.TextChoices):
    """What a customer agrees to receive; each flow sends for one purpose."""

    CROSS_SELL = "cross_sell", _("Recommendations after a purchase")
    REPLENISHMENT = "replenishment", _("Replenishment reminders")
    NEWSLETTER = "newsletter", _("Newsletter")


class AppendOnlyError(Exception):
    """Consent events are never changed or deleted through the ORM."""


class ConsentQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("The consent ledger is append-only: record a new event instead.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The consent ledger is append-only: record a new event instead.")


class ConsentEvent(models.Model):
    """One grant or withdrawal of consent; never edited, never deleted through the ORM."""

    class Action(models.TextChoices):
        GRANT = "grant", _("granted")
        WITHDRAW = "withdraw", _("withdrawn")

    class Source(models.TextChoices):
        CHECKOUT = "checkout", _("checkout checkbox")
        ACCOUNT = "account", _("account page")
        ONE_CLICK = "one_click", _("one-click unsubscribe")
        ADMIN = "admin", _("admin")
        PROVIDER = "provider", _("e-mail provider")

    customer = models.CharField(_("customer"), max_length=255, blank=True, db_index=True)
    email = models.CharField(_("e-mail address"), max_length=254, blank=True, db_index=True)
    purpose = models.CharField(_("purpose"), max_length=20, choices=Purpose.choices)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    text_version = models.CharField(_("consent text version"), max_length=100, blank=True)
    text_hash = models.CharField(
        _("consent text hash"),
        max_length=64,
        blank=True,
        help_text=_("SHA-256 of the consent text the customer saw."),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now, db_index=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent ledger")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(customer="") | ~Q(email=""),
                name="crosssell_consent_has_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer or self.email}: {self.purpose} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("The consent ledger is append-only: record a new event instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The consent ledger is append-only: record a new event instead.")


class Suppression(models.Model):
    """An address that gets no marketing mail for ``purpose`` ("" = every purpose)."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("unsubscribed")
        BOUNCED = "bounced", _("bounced")
        COMPLAINED = "complained", _("complained (marked as spam)")
        MANUAL = "manual", _("added by staff")

    email = models.CharField(_("e-mail address"), max_length=254, db_index=True)
    purpose = models.CharField(
        _("purpose"),
        max_length=20,
        choices=Purpose.choices,
        blank=True,
        help_text=_("Empty: every purpose."),
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    source = models.CharField(
        _("source"), max_length=20, choices=ConsentEvent.Source.choices, default="admin"
    )
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["email", "purpose"],
                condition=Q(lifted_at__isnull=True),
                name="crosssell_suppression_active_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.purpose or '*'}, {self.reason})"


class FollowUpFlow(models.Model):
    """A mail sent after an order: a follow-up with complements, or a replenishment reminder."""

    class Kind(models.TextChoices):
        FOLLOW_UP = "follow_up", _("Follow-up (goes well with your order)")
        REPLENISHMENT = "replenishment", _("Replenishment reminder")

    class Trigger(models.TextChoices):
        PAID = "paid", _("order paid")
        DELIVERED = "delivered", _("order delivered")

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    trigger = models.CharField(
        _("trigger"), max_length=20, choices=Trigger.choices, default=Trigger.PAID
    )
    purpose = models.CharField(
        _("consent purpose"),
        max_length=20,
        choices=Purpose.choices,
        default=Purpose.CROSS_SELL,
        help_text=_("Only customers who agreed to this purpose get the mail."),
    )
    delay_days = models.PositiveIntegerField(
        _("delay (days)"),
        null=True,
        blank=True,
        help_text=_(
            "Days after the trigger. Empty: 7 after delivery, 14 after payment. "
            "Replenishment reminders are due when the supply runs out instead."
        ),
    )
    audience = models.CharField(
        _("audience"),
        max_length=200,
        blank=True,
        help_text=_("Empty: every customer. Otherwise a dotted path or an audience name."),
    )
    template_prefix = models.CharField(
        _("template prefix"),
        max_length=200,
        blank=True,
        help_text=_(
            "Optional: templates <prefix>_subject.txt, <prefix>.txt and <prefix>.html "
            "replace the default ones."
        ),
    )
    items = models.PositiveSmallIntegerField(
        _("products per mail"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Empty: the FOLLOWUP_ITEMS setting."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("follow-up flow")
        verbose_name_plural = _("follow-up flows")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ReplenishmentProfile(models.Model):
    """How many days one unit of a product lasts: staff's value and the learned one."""

    product = models.OneToOneField(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_replenishment",
        verbose_name=_("product"),
    )
    staff_interval_days = models.PositiveIntegerField(
        _("staff interval (days per unit)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("How many days one unit lasts, as staff know it."),
    )
    lead_days = models.PositiveIntegerField(
        _("remind days before"),
        null=True,
        blank=True,
        help_text=_("Empty: the REPLENISHMENT_LEAD_DAYS setting."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    learned_median_days = models.FloatField(
        _("median of the orders (days per unit)"), null=True, blank=True, editable=False
    )
    learned_interval_days = models.FloatField(
        _("learned interval (days per unit)"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The orders' median shrunk toward the staff interval while few repeat."),
    )
    learned_gaps = models.PositiveIntegerField(_("repeat gaps"), default=0, editable=False)
    learned_customers = models.PositiveIntegerField(
        _("repeat customers"), default=0, editable=False
    )
    learned_at = models.DateTimeField(_("learned at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("replenishment profile")
        verbose_name_plural = _("replenishment profiles")
        ordering = ["-is_active", "pk"]

    def __str__(self) -> str:
        return str(self.product)

    @property
    def interval_days(self) -> float | None:
        """The interval the reminders use: the learned one, else staff's, else None."""
        if self.learned_interval_days is not None:
            return self.learned_interval_days
        return float(self.staff_interval_days) if self.staff_interval_days else None


class ScheduledMessage(models.Model):
    """One mail of a flow for one anchor order line, and what became of it (the outbox)."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("scheduled")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        SKIPPED = "skipped", _("skipped")
        FAILED = "failed", _("failed")

    class Reason(models.TextChoices):
        DISABLED = "disabled", _("follow-up mail is switched off")
        FLOW_INACTIVE = "flow_inactive", _("the flow is inactive")
        NO_ADDRESS = "no_address", _("no e-mail address")
        SUPPRESSED = "suppressed", _("the address is suppressed")
        NO_CONSENT = "no_consent", _("no consent for this purpose")
        ORDER_CANCELLED = "order_cancelled", _("the order was cancelled or refunded")
        REPURCHASED = "repurchased", _("the customer already bought again")
        NOT_IN_AUDIENCE = "not_in_audience", _("not in the flow's audience")
        HOLDOUT = "holdout", _("in the measurement holdout")
        FREQUENCY_CAP = "frequency_cap", _("frequency cap reached")
        UNAVAILABLE = "unavailable", _("the product cannot be bought now")
        NO_ITEMS = "no_items", _("nothing to recommend")
        CANCELLED = "cancelled", _("cancelled by staff")
        SEND_ERROR = "send_error", _("the mail could not be sent")
        INTERRUPTED = "interrupted", _("interrupted while sending (maybe sent)")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    flow = models.ForeignKey(
        FollowUpFlow, on_delete=models.PROTECT, related_name="messages", verbose_name=_("flow")
    )
    anchor_order = models.CharField(_("order"), max_length=64)
    anchor_line = models.CharField(_("order line"), max_length=64)
    anchor_at = models.DateTimeField(_("order paid or delivered at"))
    customer = models.CharField(_("customer"), max_length=255, blank=True, db_index=True)
    email = models.CharField(_("e-mail address"), max_length=254, blank=True)
    product = models.ForeignKey(
        PRODUCT_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("product"),
    )
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    interval_days = models.FloatField(_("interval (days per unit)"), null=True, blank=True)
    interval_source = models.CharField(_("interval from"), max_length=20, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    due_at = models.DateTimeField(_("due at"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.SCHEDULED
    )
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices, blank=True)
    detail = models.TextField(_("detail"), blank=True)
    items = models.JSONField(_("products in the mail"), default=list, blank=True)
    serve_id = models.CharField(_("serve"), max_length=64, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("scheduled message")
        verbose_name_plural = _("outbox")
        ordering = ["-due_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["flow", "anchor_line"], name="crosssell_message_idempotency"
            )
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="crosssell_msg_due_idx"),
            models.Index(fields=["email", "sent_at"], name="crosssell_msg_caps_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.flow} → {self.email or self.customer} ({self.status})"
