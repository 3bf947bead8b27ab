"""Models of the customers package, imported into :mod:`django_crosssell.models`.

* :class:`Segment` - a cell range of the R x F grid with a name staff can edit (the ten
  common RFM segments ship with English and Japanese names, by data migration).
* :class:`CustomerMetrics` - one row per customer: the latest snapshot's recency,
  frequency, monetary value, scores, decile and segment, with the previous segment and when
  it changed. Written in bulk by :mod:`django_crosssell.customers.snapshot`, never by hand.
* :class:`MetricsSnapshot` - one row per snapshot run: when, which scorer, and the segment
  counts and transitions the admin charts show.
* :class:`Audience` - a saved rule set over the metrics, the segment, purchase history and
  consent; relations, tier ladders and bundle rules may be restricted to one.

Customer keys are stored as strings (``str(adapter.customer_key(user))``), like the consent
ledger does, so integer and UUID user keys work alike. This module imports nothing from the
rest of the package (``django_crosssell.models`` imports it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _

# The same placeholder as django_crosssell.models (a missing setting is crosssell.E001).
PRODUCT_MODEL = getattr(settings, "CROSSSELL_PRODUCT_MODEL", None) or (
    "django_crosssell.UnsetProductModel"
)

#: What ``from .customers.models import *`` in :mod:`django_crosssell.models` brings in.
__all__ = ["Audience", "CustomerItemWeight", "CustomerMetrics", "MetricsSnapshot", "Segment"]

SCORE_VALIDATORS = [MinValueValidator(1), MaxValueValidator(5)]


class Segment(models.Model):
    """A rectangle of the recency x frequency score grid (scores 1-5) with a name.

    The shipped map is the common ten-cell grid (Champions, Loyal, ...); staff may rename
    the segments or move their ranges. Where rectangles overlap, the lower ``position``
    wins; a cell no rectangle covers leaves its customers without a segment (system check
    ``crosssell.W041`` reports such cells).
    """

    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_ja = models.CharField(_("Japanese name"), max_length=100, blank=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    r_min = models.PositiveSmallIntegerField(_("lowest R score"), validators=SCORE_VALIDATORS)
    r_max = models.PositiveSmallIntegerField(_("highest R score"), validators=SCORE_VALIDATORS)
    f_min = models.PositiveSmallIntegerField(_("lowest F score"), validators=SCORE_VALIDATORS)
    f_max = models.PositiveSmallIntegerField(_("highest F score"), validators=SCORE_VALIDATORS)
    position = models.PositiveSmallIntegerField(
        _("position"), default=0, help_text=_("Where ranges overlap, the lower number wins.")
    )

    class Meta:
        verbose_name = _("customer segment")
        verbose_name_plural = _("customer segments")
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(r_min__lte=models.F("r_max")) & Q(f_min__lte=models.F("f_max")),
                name="crosssell_segment_range",
                violation_error_message=_("The lowest score must not exceed the highest."),
            )
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """The name in the active language (the Japanese name under ``ja`` when set)."""
        language = translation.get_language() or ""
        if language.startswith("ja") and self.name_ja:
            return self.name_ja
        return self.name

    def covers(self, r: int, f: int) -> bool:
        return self.r_min <= r <= self.r_max and self.f_min <= f <= self.f_max

    def clean(self) -> None:
        for low, high in ((self.r_min, self.r_max), (self.f_min, self.f_max)):
            if low is not None and high is not None and low > high:
                raise ValidationError(_("The lowest score must not exceed the highest."))


class MetricsSnapshot(models.Model):
    """One run of the snapshot: the scorer used and what the admin charts read."""

    computed_at = models.DateTimeField(_("computed at"), db_index=True)
    as_of = models.DateTimeField(_("as of"))
    scorer = models.CharField(_("scorer"), max_length=30)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    #: ``{"r": [upper bounds], "f": [...], "m": [...]}``: what put a customer in each score.
    thresholds = models.JSONField(_("thresholds"), default=dict)
    #: ``{segment slug: customers}``.
    segment_counts = models.JSONField(_("customers per segment"), default=dict)
    #: ``{"from slug|to slug": customers}`` for customers whose segment changed.
    transitions = models.JSONField(_("segment changes"), default=dict)
    #: ``[[customers of R=r, F=f] for f 1..5] for r 1..5]``.
    grid = models.JSONField(_("R x F grid"), default=list)
    duration = models.FloatField(_("seconds"), default=0.0)

    class Meta:
        verbose_name = _("customer metrics snapshot")
        verbose_name_plural = _("customer metrics snapshots")
        ordering = ["-computed_at", "-pk"]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"{self.computed_at:%Y-%m-%d %H:%M} ({self.scorer}, {self.customers})"


class CustomerMetrics(models.Model):
    """The latest RFM figures of one customer (rewritten by every snapshot)."""

    customer = models.CharField(_("customer"), max_length=255, unique=True)
    first_order_at = models.DateTimeField(_("first order"))
    last_order_at = models.DateTimeField(_("last order"))
    recency_days = models.PositiveIntegerField(_("recency (days)"))
    frequency = models.PositiveIntegerField(_("orders"))
    monetary = models.DecimalField(_("revenue"), max_digits=18, decimal_places=2)
    average_order_value = models.DecimalField(
        _("average order value"), max_digits=18, decimal_places=2
    )
    median_gap_days = models.FloatField(_("median days between orders"), null=True, blank=True)
    r_score = models.PositiveSmallIntegerField(_("R score"), validators=SCORE_VALIDATORS)
    f_score = models.PositiveSmallIntegerField(_("F score"), validators=SCORE_VALIDATORS)
    m_score = models.PositiveSmallIntegerField(_("M score"), validators=SCORE_VALIDATORS)
    decile = models.PositiveSmallIntegerField(
        _("decile"),
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("1 holds the tenth of customers with the most revenue."),
    )
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("segment"),
    )
    previous_segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("previous segment"),
    )
    segment_changed_at = models.DateTimeField(_("segment changed at"), null=True, blank=True)
    #: Category ids (as strings) the customer bought from: LWP's "What".
    categories = models.JSONField(_("categories bought"), default=list, blank=True)
    snapshot = models.ForeignKey(
        MetricsSnapshot,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("snapshot"),
    )

    class Meta:
        verbose_name = _("customer metrics")
        verbose_name_plural = _("customer metrics")
        ordering = ["decile", "-monetary", "customer"]
        indexes = [
            models.Index(fields=["segment"], name="crosssell_cm_segment_idx"),
            models.Index(fields=["r_score", "f_score"], name="crosssell_cm_rf_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} R{self.r_score}F{self.f_score}M{self.m_score}"


class Audience(models.Model):
    """A saved rule set: who sees a restricted offer, who gets a targeted mail.

    Every filled-in rule must hold (AND); a list rule holds when any listed value does
    (``segments``: in any of them; ``bought_products``: bought any of them;
    ``not_bought_products``: bought none of them). Visitors who are not logged in match
    only when ``include_anonymous`` is set; a logged-in customer without metrics yet (no
    order before the last snapshot) matches only rules that need no metrics.
    """

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    include_anonymous = models.BooleanField(
        _("visitors who are not logged in match"),
        default=False,
        help_text=_("Otherwise only logged-in customers whose data fits the rules match."),
    )
    segments = models.ManyToManyField(
        Segment, blank=True, related_name="audiences", verbose_name=_("segments (any of)")
    )
    recency_min = models.PositiveIntegerField(_("recency at least (days)"), null=True, blank=True)
    recency_max = models.PositiveIntegerField(_("recency at most (days)"), null=True, blank=True)
    frequency_min = models.PositiveIntegerField(_("orders at least"), null=True, blank=True)
    frequency_max = models.PositiveIntegerField(_("orders at most"), null=True, blank=True)
    monetary_min = models.DecimalField(
        _("revenue at least"), max_digits=18, decimal_places=2, null=True, blank=True
    )
    monetary_max = models.DecimalField(
        _("revenue at most"), max_digits=18, decimal_places=2, null=True, blank=True
    )
    deciles = models.JSONField(
        _("deciles (any of)"), default=list, blank=True, help_text=_("For example [1, 2].")
    )
    bought_products: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        PRODUCT_MODEL,
        blank=True,
        related_name="+",
        verbose_name=_("bought any of these products"),
    )
    not_bought_products: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        PRODUCT_MODEL,
        blank=True,
        related_name="+",
        verbose_name=_("bought none of these products"),
    )
    bought_categories = models.JSONField(
        _("bought from any of these categories"),
        default=list,
        blank=True,
        help_text=_("Category ids, for example [3, 7]."),
    )
    consent_purpose = models.CharField(
        _("needs consent for"),
        max_length=20,
        blank=True,
        help_text=_("Only customers whose current consent for this purpose is a grant."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("audience")
        verbose_name_plural = _("audiences")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        for low, high in (
            (self.recency_min, self.recency_max),
            (self.frequency_min, self.frequency_max),
            (self.monetary_min, self.monetary_max),
        ):
            if low is not None and high is not None and low > high:
                raise ValidationError(_("A lower bound is above its upper bound."))
        if not isinstance(self.deciles, list) or not all(
            isinstance(value, int) and 1 <= value <= 10 for value in self.deciles
        ):
            raise ValidationError({"deciles": _("Give a list of whole numbers from 1 to 10.")})
        if not isinstance(self.bought_categories, list):
            raise ValidationError({"bought_categories": _("Give a list of category ids.")})

    @property
    def uses_metrics(self) -> bool:
        """Whether a rule reads the customer's metrics row (customers without one fail it)."""
        values: list[Any] = [
            self.recency_min,
            self.recency_max,
            self.frequency_min,
            self.frequency_max,
            self.monetary_min,
            self.monetary_max,
        ]
        return any(value is not None for value in values) or bool(self.deciles)


class CustomerItemWeight(models.Model):
    """The customer model's item-to-item weights (top-K per source product).

    Learned by the snapshot from who bought what (EASE, a closed-form linear item model on
    the customer x product matrix); ``recommend_for_customer`` sums the weights of the
    products a customer bought. Measured on a time split of a real shop's orders it beats
    bestsellers, the affinity engine's partners and implicit's ALS (README, "Know the
    customers"). Rewritten by every snapshot.
    """

    source = models.ForeignKey(
        PRODUCT_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("bought")
    )
    target = models.ForeignKey(
        PRODUCT_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("suggested")
    )
    weight = models.FloatField(_("weight"))

    class Meta:
        verbose_name = _("customer model weight")
        verbose_name_plural = _("customer model weights")
        indexes = [models.Index(fields=["source", "-weight"], name="crosssell_ciw_source_idx")]

    def __str__(self) -> str:
        return f"{self.source_id} -> {self.target_id} ({self.weight:.3f})"
