"""Database models of django-crosssell.

The app never owns products or orders: every product foreign key points at the host's
model named by ``settings.CROSSSELL_PRODUCT_MODEL``. Invariants that matter to the
storefront (no self-links, one link per pair and kind, campaign windows that end after they
start, unique ranks on a ladder) are database constraints, so a bulk import or a script that
skips forms cannot break them; ``full_clean`` reports the same constraints to forms.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .limits import check_year

# A missing setting must surface as the system check crosssell.E001, not as a traceback
# while models load, so an unresolvable placeholder stands in for it.
PRODUCT_MODEL = getattr(settings, "CROSSSELL_PRODUCT_MODEL", None) or (
    "django_crosssell.UnsetProductModel"
)


def _window_constraint(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(starts_at__isnull=True)
        | Q(ends_at__isnull=True)
        | Q(ends_at__gt=F("starts_at")),
        name=name,
        violation_error_code="invalid_window",
        violation_error_message=_("The end must be after the start."),
    )


class CurrentQuerySet(models.QuerySet):
    """Rows that are switched on and inside their optional campaign window."""

    def current(self, at: datetime | None = None) -> CurrentQuerySet:
        at = at or timezone.now()
        return self.filter(
            Q(starts_at__isnull=True) | Q(starts_at__lte=at),
            Q(ends_at__isnull=True) | Q(ends_at__gt=at),
            is_active=True,
        )


class CampaignWindowMixin(models.Model):
    is_active = models.BooleanField(_("active"), default=True)
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = CurrentQuerySet.as_manager()

    class Meta:
        abstract = True

    def clean_fields(self, exclude: Any = None) -> None:
        """Campaign dates within ``MAX_YEAR``: a year-9999 end overflows date arithmetic."""
        errors: dict[str, list[Any]] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        for name in ("starts_at", "ends_at"):
            if (exclude and name in exclude) or name in errors:
                continue
            try:
                check_year(getattr(self, name))
            except ValidationError as exc:
                errors.setdefault(name, []).extend(exc.error_list)
        if errors:
            raise ValidationError(errors)

    def is_current(self, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        return (
            self.is_active
            and (self.starts_at is None or self.starts_at <= at)
            and (self.ends_at is None or self.ends_at > at)
        )


class ProductRelation(CampaignWindowMixin):
    """A link curated by staff; it always ranks above computed affinity."""

    class Kind(models.TextChoices):
        CROSS_SELL = "cross_sell", _("Cross-sell (pair it with)")
        RELATED = "related", _("Related (you may also like)")

    source = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_relations",
        verbose_name=_("source product"),
    )
    target = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_relations_to",
        verbose_name=_("recommended product"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.CROSS_SELL)
    position = models.PositiveIntegerField(
        _("position"), default=0, help_text=_("Lower numbers are shown first.")
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    audience = models.ForeignKey(
        "django_crosssell.Audience",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("audience"),
        help_text=_("Only customers in this audience see it; empty for everyone."),
    )

    class Meta:
        verbose_name = _("product relation")
        verbose_name_plural = _("product relations")
        ordering = ["source", "kind", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "target", "kind"],
                name="crosssell_relation_unique",
                violation_error_code="duplicate",
                violation_error_message=_(
                    "This product is already linked to that product with this kind."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(source=F("target")),
                name="crosssell_relation_not_self",
                violation_error_code="self_link",
                violation_error_message=_("A product cannot be linked to itself."),
            ),
            _window_constraint("crosssell_relation_window"),
        ]
        indexes = [
            models.Index(fields=["source", "kind", "position"], name="crosssell_rel_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.target} ({self.get_kind_display()})"


class TierLadder(models.Model):
    """Models of one line ordered from entry level up: the basis of upsell and downsell."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    description = models.TextField(_("description"), blank=True)
    audience = models.ForeignKey(
        "django_crosssell.Audience",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("audience"),
        help_text=_("Only customers in this audience see it; empty for everyone."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("tier ladder")
        verbose_name_plural = _("tier ladders")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TierStep(models.Model):
    ladder = models.ForeignKey(
        TierLadder, on_delete=models.CASCADE, related_name="steps", verbose_name=_("ladder")
    )
    product = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_tier_steps",
        verbose_name=_("product"),
    )
    rank = models.PositiveSmallIntegerField(
        _("rank"), help_text=_("Higher ranks are the higher models.")
    )
    label = models.CharField(
        _("label"), max_length=100, blank=True, help_text=_("For example Standard or Premium.")
    )
    pitch = models.TextField(
        _("pitch"), blank=True, help_text=_("What the customer gets at this tier.")
    )

    class Meta:
        verbose_name = _("tier step")
        verbose_name_plural = _("tier steps")
        ordering = ["ladder", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["ladder", "rank"],
                name="crosssell_tierstep_rank_unique",
                violation_error_code="duplicate_rank",
                violation_error_message=_("Each rank can be used only once per ladder."),
            ),
            models.UniqueConstraint(
                fields=["ladder", "product"],
                name="crosssell_tierstep_product_unique",
                violation_error_code="duplicate_product",
                violation_error_message=_("A product can appear only once per ladder."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ladder}: {self.label or self.rank} ({self.product})"


class AffinityRun(models.Model):
    """One recompute of co-purchase affinity; readers only ever see the current run."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.QUEUED
    )
    is_current = models.BooleanField(_("current"), default=False)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    orders_read = models.PositiveIntegerField(_("orders read"), default=0)
    lines_read = models.PositiveBigIntegerField(_("lines read"), default=0)
    products = models.PositiveIntegerField(_("products"), default=0)
    pairs_written = models.PositiveBigIntegerField(_("pairs written"), default=0)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("affinity run")
        verbose_name_plural = _("affinity runs")
        ordering = ["-started_at", "-pk"]
        get_latest_by = "started_at"
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"],
                condition=Q(is_current=True),
                name="crosssell_affinityrun_one_current",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()} {self.started_at:%Y-%m-%d %H:%M}"


class ProductAffinity(models.Model):
    """A computed partner of a product, with the metrics an analyst expects.

    Computed data, rewritten in bulk by one writer (``writer.write_affinities``) that
    only writes products it has just read from the catalogue, one row per pair. So the
    table carries no enforced foreign keys and no uniqueness index: PostgreSQL checking
    three foreign keys and maintaining five indexes for every written row made the write
    several times slower than reading the orders. Deletes still cascade (Django's collector
    deletes a product's or a run's rows), and the one index serves every reader and pruning.
    On PostgreSQL the table is partitioned by run (migration 0008, :mod:`.partitions`): a
    schema change to it needs a hand-written migration (the parent and its partitions).
    """

    run = models.ForeignKey(
        AffinityRun,
        on_delete=models.CASCADE,
        related_name="affinities",
        verbose_name=_("run"),
        db_constraint=False,
        db_index=False,
    )
    source = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_affinities",
        verbose_name=_("source product"),
        db_constraint=False,
        db_index=False,
    )
    target = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_affinities_to",
        verbose_name=_("partner product"),
        db_constraint=False,
        db_index=False,
    )
    co_count = models.PositiveIntegerField(_("orders with both"))
    support = models.FloatField(_("support"))
    confidence = models.FloatField(_("confidence"))
    lift = models.FloatField(_("lift"))
    score = models.FloatField(_("score"))

    class Meta:
        verbose_name = _("product affinity")
        verbose_name_plural = _("product affinities")
        ordering = ["run", "source", "-score", "target"]
        indexes = [
            # The widget reads (current run, source in (...), best score first) and pruning
            # (DELETE ... WHERE run_id IN (...)) both use this index's leading columns.
            models.Index(fields=["run", "source", "-score"], name="crosssell_aff_run_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.target} ({self.score:.3f})"


class ProductSales(models.Model):
    """How many orders of a run's window hold a product: the run's bestseller list.

    Written with every run from the engine's item counts (it has them anyway), so the
    storefront's bestseller fallback reads a few rows of one index instead of aggregating
    every order line of the lookback window on a cold cache. Computed data like
    :class:`ProductAffinity`: no enforced foreign keys, one index.
    """

    run = models.ForeignKey(
        AffinityRun,
        on_delete=models.CASCADE,
        related_name="sales",
        verbose_name=_("run"),
        db_constraint=False,
        db_index=False,
    )
    product = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_sales",
        verbose_name=_("product"),
        db_constraint=False,
        db_index=False,
    )
    orders = models.PositiveIntegerField(_("orders"))

    class Meta:
        verbose_name = _("product sales")
        verbose_name_plural = _("product sales")
        ordering = ["run", "-orders", "product"]
        indexes = [
            models.Index(fields=["run", "-orders"], name="crosssell_sales_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.product}: {self.orders}"


class ProductSimilarity(models.Model):
    """A content neighbour of a product with too few co-purchases (cold start).

    Computed with the run from product names (character n-gram TF-IDF, see
    :mod:`.similarity`); its own table so that computed co-purchase partners keep their
    meaning ("bought together") and the storefront can rank and label these apart
    ("Similar products").
    """

    run = models.ForeignKey(
        AffinityRun,
        on_delete=models.CASCADE,
        related_name="similarities",
        verbose_name=_("run"),
        db_constraint=False,
        db_index=False,
    )
    source = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_similarities",
        verbose_name=_("source product"),
        db_constraint=False,
        db_index=False,
    )
    target = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_similarities_to",
        verbose_name=_("similar product"),
        db_constraint=False,
        db_index=False,
    )
    score = models.FloatField(_("score"))

    class Meta:
        verbose_name = _("similar product")
        verbose_name_plural = _("similar products")
        ordering = ["run", "source", "-score", "target"]
        indexes = [
            models.Index(fields=["run", "source", "-score"], name="crosssell_sim_run_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} ~ {self.target} ({self.score:.3f})"


class AffinityCounts(models.Model):
    """The integer counts behind a run, kept so the next run can be incremental.

    Every pair count of the window (count-1 pairs included) and the window's orders with
    their products (so the item and order counts), as one ``numpy`` archive of compact
    arrays (:func:`.incremental.dump`), written and read as binary on PostgreSQL; the
    window's bounds beside it. An incremental run adds the orders placed since
    ``window_end`` and subtracts those that left the window, then re-ranks; integers add
    and subtract exactly, so the result equals a full recompute of the same window.
    """

    run = models.OneToOneField(
        AffinityRun, on_delete=models.CASCADE, related_name="counts", verbose_name=_("run")
    )
    window_start = models.DateTimeField(_("window start"), null=True, blank=True)
    window_end = models.DateTimeField(_("window end"))
    data = models.BinaryField(_("counts"))

    class Meta:
        verbose_name = _("affinity counts")
        verbose_name_plural = _("affinity counts")

    def __str__(self) -> str:
        return f"counts of run #{self.run_id}"


class BundleRule(CampaignWindowMixin):
    """A discount that applies when the cart holds the right combination of units."""

    class Kind(models.TextChoices):
        FIXED_SET = "fixed_set", _("Set: every listed item in its quantity")
        MIX_AND_MATCH = "mix_and_match", _("Mix and match: any N units of the listed products")
        MULTI_BUY = "multi_buy", _("Multi-buy: N units of the same listed product")

    class DiscountType(models.TextChoices):
        PERCENT = "percent", _("Percent off")
        AMOUNT = "amount", _("Amount off")
        FIXED_PRICE = "fixed_price", _("Fixed bundle price")

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("Higher priority wins when discounts are equal.")
    )
    discount_type = models.CharField(
        _("discount type"), max_length=20, choices=DiscountType.choices
    )
    value = models.DecimalField(
        _("value"),
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Percent (1-100), amount off per bundle, or the bundle's fixed price."),
    )
    min_quantity = models.PositiveSmallIntegerField(
        _("units needed"),
        null=True,
        blank=True,
        validators=[MinValueValidator(2)],
        help_text=_("N for mix-and-match and multi-buy rules; sets use the item quantities."),
    )
    max_applications = models.PositiveSmallIntegerField(
        _("max applications per cart"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(999)],
        help_text=_("Leave empty for no limit."),
    )
    combinable = models.BooleanField(
        _("combinable"),
        default=False,
        help_text=_("May share units with other rules' discounts."),
    )
    pitch = models.CharField(_("pitch"), max_length=255, blank=True)
    audience = models.ForeignKey(
        "django_crosssell.Audience",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("audience"),
        help_text=_("Only customers in this audience see it; empty for everyone."),
    )

    class Meta:
        verbose_name = _("bundle rule")
        verbose_name_plural = _("bundle rules")
        ordering = ["-priority", "name"]
        constraints = [
            _window_constraint("crosssell_bundle_window"),
            models.CheckConstraint(
                condition=Q(value__gte=0),
                name="crosssell_bundle_value_not_negative",
                violation_error_code="negative_value",
                violation_error_message=_("The value cannot be negative."),
            ),
            models.CheckConstraint(
                condition=~Q(discount_type="percent") | (Q(value__gt=0) & Q(value__lte=100)),
                name="crosssell_bundle_percent_range",
                violation_error_code="percent_range",
                violation_error_message=_("A percentage must be more than 0 and at most 100."),
            ),
            models.CheckConstraint(
                # IS NOT NULL spelled out: a CHECK passes when its condition is NULL.
                condition=Q(kind="fixed_set") | Q(min_quantity__isnull=False, min_quantity__gte=2),
                name="crosssell_bundle_min_quantity",
                violation_error_code="min_quantity",
                violation_error_message=_(
                    "Mix-and-match and multi-buy rules need at least 2 units."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Field-level versions of the constraints, plus what a constraint cannot express.

        Checks that need the items (at least two products for a set, a fixed price below the
        items' regular total) live in ``django_crosssell.forms.validate_items`` because the
        admin edits the items in an inline formset next to this form.
        """
        from .conf import app_settings

        errors: dict[str, list] = {}
        if self.kind == self.Kind.FIXED_SET:
            self.min_quantity = None  # sets count the item quantities instead
        elif self.kind and self.min_quantity is None:  # below 2: the field's validator says so
            errors.setdefault("min_quantity", []).append(
                _("Mix-and-match and multi-buy rules need at least 2 units.")
            )
        if self.value is not None:
            value = Decimal(self.value)
            if self.discount_type == self.DiscountType.PERCENT and not 0 < value <= 100:
                errors.setdefault("value", []).append(
                    _("A percentage must be more than 0 and at most 100.")
                )
            elif self.discount_type in (self.DiscountType.AMOUNT, self.DiscountType.FIXED_PRICE):
                decimals = int(app_settings.CURRENCY_DECIMALS)
                if value.is_finite() and value != value.quantize(Decimal(1).scaleb(-decimals)):
                    errors.setdefault("value", []).append(
                        _("The currency allows at most %(decimals)d decimal places.")
                        % {"decimals": decimals}
                    )
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors.setdefault("ends_at", []).append(_("The end must be after the start."))
        if errors:
            raise ValidationError(errors)


class BundleItem(models.Model):
    rule = models.ForeignKey(
        BundleRule, on_delete=models.CASCADE, related_name="items", verbose_name=_("rule")
    )
    product = models.ForeignKey(
        PRODUCT_MODEL,
        on_delete=models.CASCADE,
        related_name="crosssell_bundle_items",
        verbose_name=_("product"),
    )
    quantity = models.PositiveSmallIntegerField(
        _("quantity"), default=1, validators=[MinValueValidator(1)]
    )

    class Meta:
        verbose_name = _("bundle item")
        verbose_name_plural = _("bundle items")
        ordering = ["rule", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "product"],
                name="crosssell_bundleitem_unique",
                violation_error_code="duplicate",
                violation_error_message=_("A product can be listed only once per rule."),
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=1),
                name="crosssell_bundleitem_quantity",
                violation_error_message=_("The quantity must be at least 1."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"


from .customers.models import *  # noqa: E402, F403  (the customers package's models)
from .followup.models import *  # noqa: E402, F403  (the follow-up package's models)
from .measure.models import *  # noqa: E402, F403  (the measurement package's models)
