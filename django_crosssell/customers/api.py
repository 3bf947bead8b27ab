"""REST endpoints of the customers package (wired in ``django_crosssell/api/urls.py``).

Storefront: ``me/for-you/`` and ``me/buy-again/`` (the visitor's own; visitors who are not
logged in get bestsellers and nothing). Staff, with the admin's view permission of the
model: ``customers/`` (metrics, filter by segment), ``customers/{customer}/`` (scores with
their thresholds, the segment's range, LWP), ``segments/`` (the map with the latest counts)
and ``audiences/`` with ``audiences/{id}/members/``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from .. import recommend
from ..api import schema
from ..api import serializers as s
from ..api.fields import price_context
from ..api.permissions import IsStaffWithModelPermission
from ..api.views import CrossSellAPIMixin, StaffPagination, _user
from . import audiences, lwp
from .models import Audience, CustomerMetrics, MetricsSnapshot, Segment

TAG_CUSTOMERS = "customers"


class LimitSerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1, required=False, help_text="How many products at most (capped at MAX_LIMIT)."
    )


class SegmentSerializer(serializers.ModelSerializer):
    customers = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = ["id", "slug", "name", "name_ja", "r_min", "r_max", "f_min", "f_max", "position"]
        fields += ["customers"]

    def get_customers(self, obj: Segment) -> int:
        counts = self.context.get("counts") or {}
        return int(counts.get(obj.slug, 0))


class CustomerMetricsSerializer(serializers.ModelSerializer):
    segment: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    previous_segment: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = CustomerMetrics
        fields = [
            "customer",
            "first_order_at",
            "last_order_at",
            "recency_days",
            "frequency",
            "monetary",
            "average_order_value",
            "median_gap_days",
            "r_score",
            "f_score",
            "m_score",
            "decile",
            "segment",
            "previous_segment",
            "segment_changed_at",
            "categories",
        ]


class CustomerDetailSerializer(CustomerMetricsSerializer):
    thresholds = serializers.SerializerMethodField()
    scorer = serializers.SerializerMethodField()
    lwp = serializers.SerializerMethodField()

    class Meta(CustomerMetricsSerializer.Meta):
        fields = [*CustomerMetricsSerializer.Meta.fields, "scorer", "thresholds", "lwp"]

    def get_scorer(self, obj: CustomerMetrics) -> str:
        return obj.snapshot.scorer if obj.snapshot else ""

    def get_thresholds(self, obj: CustomerMetrics) -> dict[str, Any]:
        """Per metric, the bound of each score (recency: at most; F and M: at least)."""
        return dict(obj.snapshot.thresholds) if obj.snapshot else {}

    def get_lwp(self, obj: CustomerMetrics) -> dict[str, Any]:
        analysis = lwp.analyse(obj)
        return {
            "bought_categories": analysis.bought,
            "complementary_categories": analysis.complements,
            "priority": analysis.priority,
            "reasons": analysis.reasons,
            "pace": [
                {
                    "product": str(row.product),
                    "purchases": row.purchases,
                    "median_gap_days": row.median_gap_days,
                    "last_bought": row.last_bought,
                    "next_due": row.next_due,
                }
                for row in analysis.pace
            ],
        }


class AudienceSerializer(serializers.ModelSerializer):
    segments: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", many=True, read_only=True
    )

    class Meta:
        model = Audience
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "is_active",
            "include_anonymous",
            "segments",
            "recency_min",
            "recency_max",
            "frequency_min",
            "frequency_max",
            "monetary_min",
            "monetary_max",
            "deciles",
            "bought_categories",
            "consent_purpose",
        ]


def _recommendations(request: Request, compute: Any) -> Response:
    query = LimitSerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    results = compute(_user(request), query.validated_data.get("limit"))
    context = price_context(request, [rec.product for rec in results])
    return Response(s.RecommendationSerializer(results, many=True, context=context).data)


@extend_schema(
    tags=["storefront"],
    summary="Picked for the visitor (for you)",
    parameters=[LimitSerializer],
    responses={200: s.RecommendationSerializer(many=True), **schema.errors(400, *schema.COMMON)},
)
class ForYouView(CrossSellAPIMixin, generics.GenericAPIView):
    """What the logged-in customer is likely to buy next (bestsellers for visitors)."""

    permission_classes = [AllowAny]
    serializer_class = s.RecommendationSerializer

    def get(self, request: Request) -> Response:
        return _recommendations(request, recommend.recommend_for_customer)


@extend_schema(
    tags=["storefront"],
    summary="Due again at the customer's own pace (buy again)",
    parameters=[LimitSerializer],
    responses={200: s.RecommendationSerializer(many=True), **schema.errors(400, *schema.COMMON)},
)
class BuyAgainView(CrossSellAPIMixin, generics.GenericAPIView):
    """Products the logged-in customer buys repeatedly and is due to buy again."""

    permission_classes = [AllowAny]
    serializer_class = s.RecommendationSerializer

    def get(self, request: Request) -> Response:
        return _recommendations(request, recommend.buy_again)


@extend_schema(
    tags=[TAG_CUSTOMERS],
    summary="Customers' metrics",
    parameters=[OpenApiParameter("segment", str, description="A segment's slug.")],
    responses={200: CustomerMetricsSerializer(many=True), **schema.errors(*schema.COMMON)},
)
class CustomerListView(CrossSellAPIMixin, generics.ListAPIView):
    """The latest snapshot's metrics, best revenue first."""

    permission_classes = [IsStaffWithModelPermission]
    permission_action = "view"
    serializer_class = CustomerMetricsSerializer
    pagination_class = StaffPagination

    def get_queryset(self) -> QuerySet:
        rows = CustomerMetrics.objects.select_related("segment", "previous_segment")
        segment = self.request.query_params.get("segment")
        if segment:
            rows = rows.filter(segment__slug=segment)
        return rows.order_by("decile", "-monetary", "customer")


@extend_schema(
    tags=[TAG_CUSTOMERS],
    summary="One customer's scores explained",
    responses={200: CustomerDetailSerializer, **schema.errors(404, *schema.COMMON)},
)
class CustomerDetailView(CrossSellAPIMixin, generics.RetrieveAPIView):
    """Scores with the thresholds that gave them, the segment, LWP and the A-D priority."""

    permission_classes = [IsStaffWithModelPermission]
    permission_action = "view"
    serializer_class = CustomerDetailSerializer
    lookup_field = "customer"

    def get_queryset(self) -> QuerySet:
        return CustomerMetrics.objects.select_related("segment", "previous_segment", "snapshot")


@extend_schema(
    tags=[TAG_CUSTOMERS],
    summary="The segment map with the latest counts",
    responses={200: SegmentSerializer(many=True), **schema.errors(*schema.COMMON)},
)
class SegmentListView(CrossSellAPIMixin, generics.ListAPIView):
    permission_classes = [IsStaffWithModelPermission]
    permission_action = "view"
    serializer_class = SegmentSerializer
    queryset = Segment.objects.all()

    def get_serializer_context(self) -> dict[str, Any]:
        latest = MetricsSnapshot.objects.order_by("-computed_at", "-pk").first()
        return {
            **super().get_serializer_context(),
            "counts": latest.segment_counts if latest else {},
        }


@extend_schema(
    tags=[TAG_CUSTOMERS],
    summary="Saved audiences",
    responses={200: AudienceSerializer(many=True), **schema.errors(*schema.COMMON)},
)
class AudienceListView(CrossSellAPIMixin, generics.ListAPIView):
    permission_classes = [IsStaffWithModelPermission]
    permission_action = "view"
    serializer_class = AudienceSerializer
    queryset = Audience.objects.prefetch_related("segments")
    pagination_class = StaffPagination


@extend_schema(
    tags=[TAG_CUSTOMERS],
    summary="An audience's members now",
    parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The audience.")],
    responses={200: CustomerMetricsSerializer(many=True), **schema.errors(404, *schema.COMMON)},
)
class AudienceMembersView(CrossSellAPIMixin, generics.ListAPIView):
    """Customers in the audience (customers with orders in the last snapshot)."""

    permission_classes = [IsStaffWithModelPermission]
    permission_action = "view"
    permission_model = Audience
    serializer_class = CustomerMetricsSerializer
    pagination_class = StaffPagination
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet:
        # Any segment reaches the view, so "audiences/abc/members/" is a JSON 404 too.
        pk = str(self.kwargs["pk"])
        if not pk.isdigit():
            raise NotFound(_("No audience with this id."))
        audience = get_object_or_404(Audience, pk=int(pk))
        rows = audiences.members(audience).select_related("segment", "previous_segment")
        return rows.order_by("decile", "-monetary", "customer")
