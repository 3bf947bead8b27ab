"""Serializers of the REST API.

Over 600 lines on purpose for now: every request and response shape of the API in one
place, in the order of the endpoints; it splits into storefront, curation and runs modules
when the measurement endpoints add their own.

Curation serializers validate through the models' own ``full_clean`` (field validators,
``clean()``, unique and check constraints) so the API refuses exactly what the admin refuses,
with the same messages, as field errors. The remaining serializers describe request bodies
and the service layer's result dataclasses.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from ..adapter import CartLine, get_adapter
from ..conf import (
    ENGINE_CHOICES,
    METRIC_CHOICES,
    WEIGHTING_CHOICES,
    app_settings,
    get_product_model,
)
from ..errors import RecomputeParameterError
from ..forms import validate_items
from ..limits import check_days
from ..models import (
    AffinityRun,
    BundleItem,
    BundleRule,
    ProductAffinity,
    ProductRelation,
    TierLadder,
    TierStep,
)
from ..params import PARAMETER_NAMES, resolve_parameters
from .fields import (
    BoundedListField,
    ModelChoiceField,
    ProductIdField,
    ProductRelatedField,
    ProductRepresentationField,
    UTCDateTimeField,
    format_amount,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# --- Model validation ---------------------------------------------------------------------


def drf_errors(exc: DjangoValidationError) -> dict[str, Any]:
    """Django's validation error as DRF's error structure (``__all__`` → non_field_errors)."""
    if not hasattr(exc, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: list(exc.messages)}
    return {
        (api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
        for field, messages in exc.message_dict.items()
    }


def model_clean(instance: models.Model, **kwargs: Any) -> None:
    """``full_clean`` raising DRF's ``ValidationError`` so the view answers 400."""
    try:
        instance.full_clean(**kwargs)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(drf_errors(exc)) from exc


#: The model a curation serializer writes.
_M = TypeVar("_M", bound=models.Model)


def build_instance(model: type[_M], instance: _M | None, attrs: dict[str, Any]) -> _M:
    """The object as it would be saved: a copy of ``instance`` (or a new one) with ``attrs``."""
    candidate = copy.copy(instance) if instance is not None else model()
    for name, value in attrs.items():
        setattr(candidate, name, value)
    return candidate


def integrity_error_as_validation(exc: IntegrityError) -> serializers.ValidationError:
    """A constraint hit by a concurrent write after validation passed: still a 400, not 500."""
    return serializers.ValidationError(
        {
            api_settings.NON_FIELD_ERRORS_KEY: [
                _("The change conflicts with data saved meanwhile; reload and retry.")
            ]
        }
    )


class ModelCleanSerializer(serializers.ModelSerializer[_M]):
    """A ModelSerializer that defers all validation of the row to ``Model.full_clean``."""

    serializer_choice_field = ModelChoiceField
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UTCDateTimeField,
    }

    @property
    def nested_fields(self) -> tuple[str, ...]:
        """Fields written as child rows, left out of the row's ``full_clean`` (none here)."""
        return ()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        own = {k: v for k, v in attrs.items() if k not in self.nested_fields}
        candidate = build_instance(self.Meta.model, self.instance, own)
        model_clean(candidate)
        self.candidate = candidate
        # Model.clean() may normalise values (BundleRule drops min_quantity for sets): save
        # what was validated, as a ModelForm would.
        for field in self.fields.values():
            # A bound field's source is a str (DRF sets it from the field name when binding).
            source = cast(str, field.source)
            if field.read_only or source in self.nested_fields:
                continue
            value = getattr(candidate, source, None)
            if source in own or (
                self.instance is not None and value != getattr(self.instance, source)
            ):
                attrs[source] = value
        return attrs

    def create(self, validated_data: dict[str, Any]) -> _M:
        try:
            with transaction.atomic():
                return super().create(validated_data)
        except IntegrityError as exc:
            raise integrity_error_as_validation(exc) from exc

    def update(self, instance: _M, validated_data: dict[str, Any]) -> _M:
        try:
            with transaction.atomic():
                return super().update(instance, validated_data)
        except IntegrityError as exc:
            raise integrity_error_as_validation(exc) from exc


# --- Curation -----------------------------------------------------------------------------


class ProductRelationSerializer(ModelCleanSerializer[ProductRelation]):
    # Stubs limitation: DRF's SerializerMetaclass moves declared fields off the class, so a
    # field named "source" (or "label") does not replace Field.source; the stubs cannot tell.
    source = ProductRelatedField(help_text=_("Id of the product the link is shown on."))  # type: ignore[assignment]
    target = ProductRelatedField(help_text=_("Id of the recommended product."))
    is_current = serializers.SerializerMethodField()

    class Meta:
        model = ProductRelation
        fields = [
            "id",
            "source",
            "target",
            "kind",
            "position",
            "note",
            "is_active",
            "starts_at",
            "ends_at",
            "is_current",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # Model.full_clean checks the unique constraint with the admin's message.
        validators: list[Any] = []

    def get_is_current(self, relation: ProductRelation) -> bool:
        """Active and inside the campaign window right now."""
        return relation.is_current()


class NestedRowsSerializer(ModelCleanSerializer[_M]):
    """A parent row with a list of child rows written in one request (ladder steps, items).

    Children are validated with ``full_clean`` too, minus the constraints that involve the
    parent, which may not exist yet; those (unique per parent) are checked across the
    submitted list with the constraints' own messages. On update, a submitted list replaces
    the parent's children; an omitted one leaves them alone.
    """

    child_field: str = ""
    child_model: type[models.Model]
    child_parent: str = ""
    #: field name -> constraint name, for "unique per parent" checks across the list.
    child_unique: dict[str, str] = {}

    @property
    def nested_fields(self) -> tuple[str, ...]:
        return (self.child_field,)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        rows = attrs.get(self.child_field)
        if rows is not None:
            self.validate_children(rows)
        self.validate_together(self.candidate, rows)
        return attrs

    def validate_together(self, parent: _M, rows: Sequence[dict[str, Any]] | None) -> None:
        """Checks that need the parent and all its rows (``rows`` None: unchanged rows)."""

    def validate_children(self, rows: Sequence[dict[str, Any]]) -> None:
        errors: list[dict[str, Any]] = [{} for _row in rows]
        for index, row in enumerate(rows):
            child = self.child_model(**row)
            try:
                child.full_clean(
                    exclude=[self.child_parent], validate_unique=False, validate_constraints=False
                )
            except DjangoValidationError as exc:
                errors[index] = drf_errors(exc)
        messages = {
            constraint.name: constraint.violation_error_message
            for constraint in self.child_model._meta.constraints
        }
        for field, constraint_name in self.child_unique.items():
            seen: set[Any] = set()
            for index, row in enumerate(rows):
                value = row.get(field)
                value = getattr(value, "pk", value)
                if value in seen:
                    errors[index].setdefault(field, []).append(str(messages[constraint_name]))
                seen.add(value)
        if any(errors):
            raise serializers.ValidationError({self.child_field: errors})

    def _write_children(self, parent: _M, rows: Iterable[dict[str, Any]]) -> None:
        manager = getattr(parent, self.child_field)
        manager.all().delete()
        self.child_model._default_manager.bulk_create(
            [self.child_model(**{self.child_parent: parent}, **row) for row in rows]
        )

    def create(self, validated_data: dict[str, Any]) -> _M:
        rows = validated_data.pop(self.child_field, [])
        try:
            with transaction.atomic():
                model: type[_M] = self.Meta.model
                parent = model._default_manager.create(**validated_data)
                self._write_children(parent, rows)
        except IntegrityError as exc:
            raise integrity_error_as_validation(exc) from exc
        return parent

    def update(self, instance: _M, validated_data: dict[str, Any]) -> _M:
        rows = validated_data.pop(self.child_field, None)
        try:
            with transaction.atomic():
                for name, value in validated_data.items():
                    setattr(instance, name, value)
                instance.save()
                if rows is not None:
                    self._write_children(instance, rows)
        except IntegrityError as exc:
            raise integrity_error_as_validation(exc) from exc
        return instance


class TierStepSerializer(serializers.ModelSerializer):
    product = ProductRelatedField()

    class Meta:
        model = TierStep
        fields = ["id", "rank", "product", "label", "pitch"]
        read_only_fields = ["id"]
        validators: list[Any] = []


class TierLadderSerializer(NestedRowsSerializer[TierLadder]):
    steps = TierStepSerializer(
        many=True,
        required=False,
        help_text=_("The ladder's steps; sending them replaces the existing steps."),
    )

    child_field = "steps"
    child_model = TierStep
    child_parent = "ladder"
    child_unique = {
        "rank": "crosssell_tierstep_rank_unique",
        "product": "crosssell_tierstep_product_unique",
    }

    class Meta:
        model = TierLadder
        fields = [
            "id",
            "name",
            "slug",
            "is_active",
            "description",
            "steps",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs: dict[str, dict[str, Any]] = {"slug": {"validators": []}}
        validators: list[Any] = []


class BundleItemSerializer(serializers.ModelSerializer):
    product = ProductRelatedField()

    class Meta:
        model = BundleItem
        fields = ["id", "product", "quantity"]
        read_only_fields = ["id"]
        validators: list[Any] = []


class BundleRuleSerializer(NestedRowsSerializer[BundleRule]):
    items = BundleItemSerializer(
        many=True,
        required=False,
        help_text=_("The rule's products; sending them replaces the existing items."),
    )
    is_current = serializers.SerializerMethodField()

    child_field = "items"
    child_model = BundleItem
    child_parent = "rule"
    child_unique = {"product": "crosssell_bundleitem_unique"}

    class Meta:
        model = BundleRule
        fields = [
            "id",
            "name",
            "slug",
            "kind",
            "priority",
            "discount_type",
            "value",
            "min_quantity",
            "max_applications",
            "combinable",
            "pitch",
            "is_active",
            "starts_at",
            "ends_at",
            "is_current",
            "items",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs: dict[str, dict[str, Any]] = {"slug": {"validators": []}}
        validators: list[Any] = []

    def get_is_current(self, rule: BundleRule) -> bool:
        """Active and inside the campaign window right now."""
        return rule.is_current()

    def validate_together(self, parent: BundleRule, rows: Sequence[dict[str, Any]] | None) -> None:
        """The admin's item checks (``forms.validate_items``) against the rule as it will be:
        with the submitted items, or the saved ones when the request leaves them alone."""
        if rows is None:
            if self.instance is None:
                rows = []
            else:
                saved = self.instance.items.select_related("product")
                rows = [{"product": i.product, "quantity": i.quantity} for i in saved]
        items = [(row["product"], row.get("quantity", 1)) for row in rows]
        try:
            validate_items(parent, items)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"items": list(exc.messages)}) from exc


# --- Affinity and runs --------------------------------------------------------------------


class AffinityRunSerializer(serializers.ModelSerializer):
    serializer_choice_field = ModelChoiceField
    serializer_field_mapping = ModelCleanSerializer.serializer_field_mapping

    class Meta:
        model = AffinityRun
        fields = [
            "id",
            "status",
            "is_current",
            "started_at",
            "finished_at",
            "orders_read",
            "lines_read",
            "products",
            "pairs_written",
            "parameters",
            "error",
        ]
        read_only_fields = fields


class ProductAffinitySerializer(serializers.ModelSerializer):
    product = ProductRepresentationField(source="target")

    class Meta:
        model = ProductAffinity
        fields = ["product", "co_count", "support", "confidence", "lift", "score"]
        read_only_fields = fields


class ProductAffinityListSerializer(serializers.Serializer):
    run = AffinityRunSerializer(allow_null=True, help_text=_("The current run, if any."))
    results = ProductAffinitySerializer(many=True)


# --- Recommendations ----------------------------------------------------------------------


class RecommendationQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=ProductRelation.Kind.choices,
        required=False,
        help_text=_("Only this kind of curated link; computed partners count as cross-sells."),
    )
    limit = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text=_("How many products at most (default DEFAULT_LIMIT, capped at MAX_LIMIT)."),
    )

    def validate_limit(self, value: int) -> int:
        return min(value, app_settings.MAX_LIMIT)


class RecommendationSerializer(serializers.Serializer):
    product = ProductRepresentationField()
    score = serializers.FloatField(help_text=_("On the scale of the source; higher first."))
    source = serializers.CharField(  # type: ignore[assignment]  # a field, not Field.source
        help_text="curated, bought_together, fallback, upgrade or downgrade."
    )
    reason = serializers.CharField(help_text=_("A short text saying why it is shown."))
    position = serializers.IntegerField(min_value=1)


class CartRecommendationRequestSerializer(serializers.Serializer):
    """Product ids of the cart; the server looks the products up (unknown ids are errors)."""

    limit = serializers.IntegerField(min_value=1, required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["product_ids"] = BoundedListField(
            child=ProductIdField(),
            allow_empty=True,
            max_length=app_settings.API_MAX_CART_LINES,
            help_text=_("Ids of the products in the cart (at most API_MAX_CART_LINES)."),
        )
        return fields

    def validate_limit(self, value: int) -> int:
        return min(value, app_settings.MAX_LIMIT)

    def validate_product_ids(self, ids: list[Any]) -> list[Any]:
        """The distinct ids, in cart order; unknown ids are errors at their index."""
        unique = list(dict.fromkeys(ids))
        found = set(
            get_product_model()._default_manager.filter(pk__in=unique).values_list("pk", flat=True)
        )
        missing = {
            index: [_("No product with id %(pk)s.") % {"pk": pk}]
            for index, pk in enumerate(ids)
            if pk not in found
        }
        if missing:
            # Keyed by list index, like DRF's own ListField errors; the stubs allow str keys only.
            raise serializers.ValidationError(missing)  # type: ignore[arg-type]
        return unique


class TierOfferSerializer(serializers.Serializer):
    product = ProductRepresentationField()
    direction = serializers.ChoiceField(choices=["upgrade", "downgrade"])
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    pitch = serializers.CharField()
    rank = serializers.IntegerField()
    ladder = serializers.CharField(help_text=_("The ladder's name."))
    ladder_slug = serializers.CharField()
    price = serializers.SerializerMethodField()
    current_price = serializers.SerializerMethodField()
    price_difference = serializers.SerializerMethodField(
        help_text=_("What the upgrade costs more or the downgrade saves (never negative).")
    )
    reason = serializers.CharField()

    def get_price(self, offer: Any) -> str | None:
        return format_amount(offer.price)

    def get_current_price(self, offer: Any) -> str | None:
        return format_amount(offer.current_price)

    def get_price_difference(self, offer: Any) -> str | None:
        return format_amount(offer.price_difference)


class TierOffersSerializer(serializers.Serializer):
    upgrade = TierOfferSerializer(allow_null=True, help_text=_("The next tier up, if any."))
    downgrade = TierOfferSerializer(allow_null=True, help_text=_("The next tier down, if any."))


# --- Bundles ------------------------------------------------------------------------------


@extend_schema_field({"type": "string", "format": "decimal", "example": "1200.00"})
class AmountField(serializers.Field):
    """A read-only money amount as a decimal string."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:
        return format_amount(value)


class CartLineSerializer(serializers.Serializer):
    product = ProductIdField(help_text=_("Product id."))

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["quantity"] = serializers.IntegerField(
            min_value=1,
            max_value=app_settings.API_MAX_QUANTITY,
            help_text=_("Units of the product (1 to API_MAX_QUANTITY)."),
        )
        return fields


class BundleEvaluateRequestSerializer(serializers.Serializer):
    """Cart lines without prices: the server prices them from the products."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["lines"] = BoundedListField(
            child=CartLineSerializer(),
            allow_empty=True,
            max_length=app_settings.API_MAX_CART_LINES,
            help_text=_("One line per product (at most API_MAX_CART_LINES)."),
        )
        return fields

    def validate_lines(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = get_product_model()._default_manager.in_bulk({line["product"] for line in lines})
        self._prices = get_adapter().prices(found.values(), self.context.get("request"))
        errors: dict[int, dict[str, list[StrOrPromise]]] = {}
        seen: set[Any] = set()
        for index, line in enumerate(lines):
            pk = line["product"]
            product = found.get(pk)
            if product is None:
                errors[index] = {"product": [_("No product with id %(pk)s.") % {"pk": pk}]}
            elif pk in seen:
                errors[index] = {"product": [_("This product is already in another line.")]}
            elif pk not in self._prices:
                errors[index] = {"product": [_("This product has no price.")]}
            else:
                line["product"] = product
            seen.add(pk)
        if errors:
            # Keyed by line index, like DRF's own ListField errors; the stubs allow str keys only.
            raise serializers.ValidationError(errors)  # type: ignore[arg-type]
        return lines

    def cart_lines(self) -> list[Any]:
        """Lines for ``bundles.evaluate``, priced by the adapter on the server."""
        return [
            CartLine(line["product"], line["quantity"], self._prices[line["product"].pk])
            for line in self.validated_data["lines"]
        ]


class BundleRuleSummarySerializer(serializers.ModelSerializer):
    serializer_choice_field = ModelChoiceField

    class Meta:
        model = BundleRule
        fields = ["id", "slug", "name", "kind", "discount_type", "value", "pitch"]
        read_only_fields = fields


class BundleUnitsSerializer(serializers.Serializer):
    product = ProductIdField(help_text=_("Product id."))
    quantity = serializers.IntegerField()


class AppliedBundleSerializer(serializers.Serializer):
    rule = BundleRuleSummarySerializer()
    times = serializers.IntegerField(help_text=_("How many times the rule applies."))
    units = serializers.SerializerMethodField()
    discount = AmountField()
    covered_subtotal = AmountField(help_text=_("Regular price of the covered units."))

    @extend_schema_field(BundleUnitsSerializer(many=True))
    def get_units(self, applied: Any) -> list[dict[str, Any]]:
        """Units covered per product (a list: product keys may be UUIDs, not JSON keys)."""
        return [{"product": key, "quantity": qty} for key, qty in applied.units.items()]


class MissingItemSerializer(serializers.Serializer):
    product = ProductRepresentationField()
    quantity = serializers.IntegerField()


class NudgeSerializer(serializers.Serializer):
    rule = BundleRuleSummarySerializer()
    missing = MissingItemSerializer(many=True, help_text=_("Units to add."))
    units = serializers.IntegerField(help_text=_("How many units to add in all."))
    saving = AmountField(help_text=_("What adding them would save."))
    message = serializers.CharField(help_text=_("For example: Add 1 more for 100 yen off."))


class BundleEvaluationSerializer(serializers.Serializer):
    subtotal = AmountField()
    total_discount = AmountField()
    total = AmountField()
    applied = AppliedBundleSerializer(many=True)
    nudges = NudgeSerializer(many=True)
    exact = serializers.BooleanField(
        help_text=_("False when a search limit was hit (the discount is still valid).")
    )


class BundleOfferSerializer(serializers.Serializer):
    rule = BundleRuleSummarySerializer()
    product = ProductRepresentationField()
    partners = serializers.ListField(
        child=ProductRepresentationField(), help_text=_("The other products of a set.")
    )
    units = serializers.IntegerField(help_text=_("Units needed for one application."))
    regular_total = AmountField()
    saving = AmountField()
    bundle_total = AmountField()
    message = serializers.CharField()


# --- Recompute ----------------------------------------------------------------------------


class RecomputeRequestSerializer(serializers.Serializer):
    """Optional overrides of the affinity settings for this one run (omitted: the settings)."""

    min_co_count = serializers.IntegerField(
        min_value=1, max_value=1_000_000, required=False, help_text=_("Orders a pair needs.")
    )
    top_k = serializers.IntegerField(
        min_value=1, max_value=10_000, required=False, help_text=_("Partners kept per product.")
    )
    lookback_days = serializers.FloatField(
        min_value=0,
        max_value=36_500,
        required=False,
        help_text=_("0 reads every order; otherwise at least one hour (0.0417)."),
        validators=[check_days],
    )
    half_life_days = serializers.FloatField(
        min_value=0,
        max_value=36_500,
        required=False,
        help_text=_("0 weighs orders equally; otherwise at least one hour (0.0417)."),
        validators=[check_days],
    )
    metric = serializers.ChoiceField(
        choices=METRIC_CHOICES, required=False, help_text=_("Ranking metric of the partners.")
    )
    allow_shrink = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_(
            "Replace the current run even if this one reads far fewer orders "
            "(see MIN_ORDERS_RATIO)."
        ),
    )
    order_weighting = serializers.ChoiceField(
        choices=WEIGHTING_CHOICES,
        required=False,
        help_text=_("How each order weighs in the ranking score (see ORDER_WEIGHTING)."),
    )
    max_basket_size = serializers.IntegerField(
        min_value=0,
        max_value=1_000_000,
        required=False,
        help_text=_("Orders with more products are left out of the pairs; 0 keeps every order."),
    )
    engine = serializers.ChoiceField(
        choices=ENGINE_CHOICES,
        required=False,
        help_text=_("Where the blocks are computed: here, or on the Dask cluster (see ENGINE)."),
    )
    incremental = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_(
            "Slide the current run's counts instead of reading every order (see INCREMENTAL); "
            "falls back to a full run when it cannot."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The settings' own validation (:func:`~..params.resolve_parameters`), per field."""
        try:
            resolve_parameters(**{name: attrs[name] for name in PARAMETER_NAMES if name in attrs})
        except RecomputeParameterError as exc:
            raise serializers.ValidationError(
                {exc.field or api_settings.NON_FIELD_ERRORS_KEY: [str(exc)]}
            ) from exc
        return attrs
