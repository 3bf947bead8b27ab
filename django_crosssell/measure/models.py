"""The measurement models: serves, events, exposures, orders and their attribution, rollups.

Star-imported at the bottom of ``django_crosssell/models.py``. Products are stored by key
(a string: integer and UUID keys alike) rather than by foreign key, so a deleted product
keeps its history and an event row costs no join. People are stored only as HMAC hashes
(:func:`django_crosssell.measure.subjects.hashed`), never as ids, e-mail addresses or IP
addresses.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

__all__ = [
    "DailyLinkRollup",
    "DailyRollup",
    "Event",
    "Experiment",
    "Exposure",
    "OrderAttribution",
    "OrderRecord",
    "Serve",
    "Variant",
]

HASH_LENGTH = 64
KEY_LENGTH = 64


class Experiment(models.Model):
    class Unit(models.TextChoices):
        VISITOR = "visitor", _("visitor")
        CUSTOMER = "customer", _("customer")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        RUNNING = "running", _("running")
        STOPPED = "stopped", _("stopped")

    class Metric(models.TextChoices):
        CONVERSION = "conversion", _("conversion rate")
        REVENUE = "revenue", _("revenue per visitor")
        AOV = "aov", _("average order value")
        ATTACH = "attach", _("attach rate")

    key = models.SlugField(_("key"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    # The hashing seed; the key when empty (GrowthBook's convention).
    seed = models.CharField(_("seed"), max_length=64, blank=True)
    unit = models.CharField(_("unit"), max_length=16, choices=Unit, default=Unit.VISITOR)
    coverage = models.FloatField(
        _("coverage"),
        default=1.0,
        help_text=_("Share of visitors in the experiment (0 to 1); the rest see the default."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.DRAFT)
    # Widgets this experiment changes (widget names such as "also_recommended"); empty: all.
    placements = models.JSONField(_("placements"), default=list, blank=True)
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    primary_metric = models.CharField(
        _("primary metric"), max_length=16, choices=Metric, default=Metric.CONVERSION
    )
    alpha = models.FloatField(_("significance level"), default=0.05)
    min_sample = models.PositiveIntegerField(_("minimum visitors per variant"), default=1000)
    min_days = models.PositiveIntegerField(_("minimum days"), default=7)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        ordering = ["-created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(coverage__gte=0) & Q(coverage__lte=1),
                name="crosssell_experiment_coverage",
                violation_error_message=_("The coverage must be between 0 and 1."),
            ),
            models.CheckConstraint(
                condition=Q(alpha__gt=0) & Q(alpha__lt=0.5),
                name="crosssell_experiment_alpha",
                violation_error_message=_("The significance level must be between 0 and 0.5."),
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.key


class Variant(models.Model):
    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="variants", verbose_name=_("experiment")
    )
    key = models.SlugField(_("key"), max_length=64)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    weight = models.FloatField(_("weight"), default=1.0)
    # What the variant changes: {"enabled": bool, "limit": int, "kind": str,
    # "upsell": bool, "bundles": bool}; empty is the default behaviour (the control).
    config = models.JSONField(_("configuration"), default=dict, blank=True)

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["experiment", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "key"], name="crosssell_variant_unique_key"
            ),
            models.CheckConstraint(
                condition=Q(weight__gte=0),
                name="crosssell_variant_weight",
                violation_error_message=_("A weight cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}:{self.key}"

    def clean(self) -> None:
        """A mistyped key or value would not fail anywhere: the widgets would render their
        default or nothing, and the experiment would measure a broken arm. So the admin
        refuses it (``variants.CONFIG_KEYS`` lists what a variant can change)."""
        from django.core.exceptions import ValidationError

        from .variants import config_errors

        errors = config_errors(self.config)
        if errors:
            raise ValidationError({"config": errors})


class Serve(models.Model):
    """One rendered widget (or API response, or e-mail): what was shown, where, to whom."""

    class Channel(models.TextChoices):
        WEB = "web", _("web")
        API = "api", _("API")
        EMAIL = "email", _("e-mail")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel, default=Channel.WEB)
    placement = models.CharField(_("placement"), max_length=100)
    strategy = models.CharField(_("strategy"), max_length=64, blank=True)
    strategy_version = models.CharField(_("strategy version"), max_length=64, blank=True)
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    held_out = models.BooleanField(_("held out"), default=False)
    source = models.CharField(_("source products"), max_length=255, blank=True)
    # [[product key, position], ...] in the order shown.
    items = models.JSONField(_("items"), default=list)
    visitor = models.CharField(_("visitor (hashed)"), max_length=HASH_LENGTH, blank=True)
    customer = models.CharField(_("customer (hashed)"), max_length=HASH_LENGTH, blank=True)
    session = models.CharField(_("session (hashed)"), max_length=HASH_LENGTH, blank=True)
    reference = models.CharField(_("reference"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("serve")
        verbose_name_plural = _("serves")
        indexes = [models.Index(fields=["placement", "created_at"], name="crosssell_serve_place")]

    def __str__(self) -> str:
        return f"{self.placement} {self.pk}"

    def product_at(self, position: int) -> str | None:
        for product, at in self.items:
            if int(at) == int(position):
                return str(product)
        return None


class Event(models.Model):
    class Type(models.TextChoices):
        RENDER = "render", _("render")
        VIEW = "view", _("viewable impression")
        CLICK = "click", _("click")
        ADD_TO_CART = "add_to_cart", _("add to cart")

    serve = models.ForeignKey(Serve, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(_("type"), max_length=16, choices=Type)
    product = models.CharField(_("product"), max_length=KEY_LENGTH, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    # Copied from the request (not the serve) so attribution needs no join.
    visitor = models.CharField(_("visitor (hashed)"), max_length=HASH_LENGTH, blank=True)
    customer = models.CharField(_("customer (hashed)"), max_length=HASH_LENGTH, blank=True)
    session = models.CharField(_("session (hashed)"), max_length=HASH_LENGTH, blank=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.UniqueConstraint(
                fields=["serve", "type", "product"], name="crosssell_event_unique"
            )
        ]
        indexes = [
            models.Index(fields=["visitor", "type", "created_at"], name="crosssell_event_visitor"),
            models.Index(
                fields=["customer", "type", "created_at"], name="crosssell_event_customer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.product}"


class Exposure(models.Model):
    """The first time a unit met an experiment, and the variant it got (sticky)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="exposures")
    subject = models.CharField(_("unit (hashed)"), max_length=HASH_LENGTH)
    first_at = models.DateTimeField(_("first exposure"))

    class Meta:
        verbose_name = _("exposure")
        verbose_name_plural = _("exposures")
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "subject"], name="crosssell_exposure_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.variant} {self.subject[:8]}"


class OrderRecord(models.Model):
    """An order the host placed, as measurement sees it (hashed buyer, net revenue)."""

    order = models.CharField(_("order"), max_length=KEY_LENGTH, unique=True)
    placed_at = models.DateTimeField(_("placed at"), db_index=True)
    visitor = models.CharField(_("visitor (hashed)"), max_length=HASH_LENGTH, blank=True)
    customer = models.CharField(_("customer (hashed)"), max_length=HASH_LENGTH, blank=True)
    session = models.CharField(_("session (hashed)"), max_length=HASH_LENGTH, blank=True)
    revenue = models.DecimalField(_("revenue"), max_digits=16, decimal_places=4)
    bundle_discount = models.DecimalField(
        _("bundle discount"), default=0, max_digits=16, decimal_places=4
    )
    lines = models.PositiveIntegerField(_("lines"), default=0)
    # An attributed (clicked) or bundled line is in the order.
    attached = models.BooleanField(_("attached"), default=False)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("measured order")
        verbose_name_plural = _("measured orders")
        indexes = [
            models.Index(fields=["visitor", "placed_at"], name="crosssell_order_visitor"),
            models.Index(fields=["customer", "placed_at"], name="crosssell_order_customer"),
        ]

    def __str__(self) -> str:
        return self.order


class OrderAttribution(models.Model):
    class Kind(models.TextChoices):
        DIRECT = "direct", _("direct")
        ASSISTED = "assisted", _("assisted")

    record = models.ForeignKey(OrderRecord, on_delete=models.CASCADE, related_name="attributions")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    line = models.CharField(_("order line"), max_length=KEY_LENGTH, blank=True)
    product = models.CharField(_("product"), max_length=KEY_LENGTH)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    revenue = models.DecimalField(_("revenue"), max_digits=16, decimal_places=4)
    serve = models.ForeignKey(Serve, null=True, on_delete=models.SET_NULL, related_name="+")
    placement = models.CharField(_("placement"), max_length=100)
    channel = models.CharField(_("channel"), max_length=8, blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    variant = models.ForeignKey(Variant, null=True, on_delete=models.SET_NULL, related_name="+")
    clicked_at = models.DateTimeField(_("clicked at"))
    same_session = models.BooleanField(_("same session"), default=False)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("attributed order line")
        verbose_name_plural = _("attributed order lines")

    def __str__(self) -> str:
        return f"{self.kind} {self.product}"


class DailyRollup(models.Model):
    """Per day and placement totals; kept after raw events are purged."""

    day = models.DateField(_("day"))
    placement = models.CharField(_("placement"), max_length=100)
    impressions = models.PositiveIntegerField(_("impressions"), default=0)
    views = models.PositiveIntegerField(_("viewable impressions"), default=0)
    clicks = models.PositiveIntegerField(_("clicks"), default=0)
    add_to_cart = models.PositiveIntegerField(_("add to cart"), default=0)
    orders = models.PositiveIntegerField(_("attributed orders"), default=0)
    revenue = models.DecimalField(
        _("attributed revenue"), default=0, max_digits=16, decimal_places=4
    )
    assisted_revenue = models.DecimalField(
        _("assisted revenue"), default=0, max_digits=16, decimal_places=4
    )
    # Today's rows are recounted by the hourly task; the dashboard says "as of" this time.
    computed_at = models.DateTimeField(_("computed at"), auto_now=True)

    class Meta:
        # The changelist is the "Cross-sell performance" dashboard.
        verbose_name = _("cross-sell performance")
        verbose_name_plural = _("cross-sell performance")
        ordering = ["-day", "placement"]
        constraints = [
            models.UniqueConstraint(fields=["day", "placement"], name="crosssell_rollup_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.placement}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "placement": self.placement,
            "impressions": self.impressions,
            "views": self.views,
            "clicks": self.clicks,
            "add_to_cart": self.add_to_cart,
            "orders": self.orders,
            "revenue": str(self.revenue),
            "assisted_revenue": str(self.assisted_revenue),
        }


class DailyLinkRollup(models.Model):
    """Clicks per day, placement and link (the product shown with, the product clicked)."""

    day = models.DateField(_("day"))
    placement = models.CharField(_("placement"), max_length=100)
    source = models.CharField(_("source products"), max_length=255, blank=True)
    product = models.CharField(_("product"), max_length=KEY_LENGTH)
    clicks = models.PositiveIntegerField(_("clicks"), default=0)

    class Meta:
        verbose_name = _("daily link rollup")
        verbose_name_plural = _("daily link rollups")
        indexes = [models.Index(fields=["day"], name="crosssell_linkrollup_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.source} -> {self.product}"
