"""Views of the REST API.

Public views validate the request, look the product up with the host's key type (a
malformed id is a 404, never a database error) and hand over to the service layer; they
hold no recommendation or discount logic of their own. Staff views are plain model CRUD
validated by the models themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import Prefetch, QuerySet
from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, serializers, status, viewsets
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import APIException, NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from .. import bundles, recommend
from ..conf import product_does_not_exist
from ..enqueue import enqueue_recompute
from ..errors import RecomputeParameterError
from ..models import (
    AffinityRun,
    BundleItem,
    BundleRule,
    ProductAffinity,
    ProductRelation,
    TierLadder,
    TierStep,
)
from ..products import product_queryset
from ..timeouts import bounded, is_timeout
from . import schema
from . import serializers as s
from .fields import parse_product_pk, price_context
from .parsers import BodyTooLarge, StrictJSONParser, too_large
from .permissions import IsStaffWithModelPermission
from .throttling import CrossSellAnonThrottle, CrossSellUserThrottle

logger = logging.getLogger("django_crosssell")

TAG_PUBLIC = "storefront"
TAG_CURATION = "curation"
TAG_ANALYTICS = "affinity"


def _user(request: Request) -> Any:
    """The logged-in customer, or None (audience-restricted offers see a visitor)."""
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


if TYPE_CHECKING:
    _ViewBase = APIView
else:
    _ViewBase = object


class CrossSellAPIMixin(_ViewBase):
    """Throttles and JSON-only bodies for every view of the app, independent of the host's
    ``REST_FRAMEWORK`` defaults (authentication and renderers stay the host's)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Refuse an oversized body from its ``Content-Length``, before a byte is read
        (DRF reads the whole body into memory before its parser runs)."""
        too_large(request)
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RequestDataTooBig):  # a body without Content-Length, read too far
            exc = BodyTooLarge()
        return super().handle_exception(exc)

    # Typed as APIView declares them, so the mixin combines with every view class.
    throttle_classes: Sequence[type[BaseThrottle]] = [CrossSellAnonThrottle, CrossSellUserThrottle]
    parser_classes: Sequence[type[BaseParser]] = [StrictJSONParser]
    # Any segment reaches the view, so "runs/1.5/" is a JSON 404 like "runs/abc/", not
    # Django's HTML page for an unmatched URL.
    lookup_value_regex = "[^/]+"


class QueryTimedOut(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The shop is busy; please try again in a moment.")
    default_code = "query_timeout"


class PublicEndpointMixin(APIView):
    """The storefront endpoints (anyone may call them).

    They only read: their queries run with bounded waits (``timeouts``), and a query that
    runs out of time is a quick JSON 503 with ``Retry-After`` instead of a worker held
    until the proxy gives up. They ignore HTTP Basic authentication even when the host
    enables it: authentication runs before the throttles, and every bogus ``Authorization:
    Basic`` header would cost a password hash (about 0.5 s of CPU) unthrottled.
    """

    def get_authenticators(self) -> list[Any]:
        return [
            authenticator
            for authenticator in super().get_authenticators()
            if not isinstance(authenticator, BasicAuthentication)
        ]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with bounded():
            return super().dispatch(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if is_timeout(exc):
            logger.warning("django-crosssell: %s timed out: %s", type(self).__name__, exc)
            response = super().handle_exception(QueryTimedOut())
            response["Retry-After"] = "1"
            return response
        return super().handle_exception(exc)


class ComputedAnswerMixin:
    """For the public views that compute their answer rather than list a model."""

    def get_queryset(self) -> QuerySet:
        """None. DRF's browsable API asks for one to build its forms (``Accept: text/html``
        was a 500 without it)."""
        return _product_queryset().none()


#: Response headers of a counted recommendations answer (see ``tracked``).
SERVE_HEADER = "Crosssell-Serve"
CLICK_TOKEN_HEADER = "Crosssell-Click-Token"


def tracked(
    request: Request,
    response: Response,
    placement: str,
    results: Sequence[Any],
    *,
    strategy: str = "",
    source: str = "",
) -> None:
    """Record the answer as a serve (channel "api") and give the client its id in
    ``Crosssell-Serve`` (what it posts events for) and the signed click token in
    ``Crosssell-Click-Token`` (a link's ``cs`` is the token, ``.``, the position). Headers
    rather than body fields, so the JSON list stays as it was; nothing when the request is
    not counted. Never fails the answer."""
    from ..measure.api import record_response_serve

    try:
        recorded = record_response_serve(
            request,
            placement=placement,
            products=[rec.product for rec in results],
            positions=[rec.position for rec in results],
            strategy=strategy,
            source=source,
        )
    except Exception:
        logger.warning("django-crosssell: the API serve was not recorded", exc_info=True)
        return
    if recorded is not None:
        response[SERVE_HEADER], response[CLICK_TOKEN_HEADER] = recorded


def not_found(request: Any, *args: Any, **kwargs: Any) -> JsonResponse:
    """Every unknown path under the API: a JSON error like the endpoints' own."""
    return JsonResponse({"detail": str(_("No such endpoint."))}, status=404)


class StaffPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _product_queryset() -> QuerySet:
    return product_queryset()


class ProductView(CrossSellAPIMixin, generics.GenericAPIView):
    """Base of the ``products/{product_id}/...`` views.

    ``get_queryset`` returns the host's products so drf-spectacular documents the path
    parameter with the product key's real type (integer or UUID).
    """

    lookup_url_kwarg = "product_id"
    lookup_field = "pk"

    def get_queryset(self) -> QuerySet:
        return _product_queryset()

    def get_product(self) -> models.Model:
        try:
            pk = parse_product_pk(self.kwargs[self.lookup_url_kwarg])
        except DjangoValidationError as exc:
            raise NotFound(_("No product with this id.")) from exc
        try:
            return self.get_queryset().get(pk=pk)
        except product_does_not_exist() as exc:
            raise NotFound(_("No product with this id.")) from exc


# --- Storefront (public) ------------------------------------------------------------------


@extend_schema(
    tags=[TAG_PUBLIC],
    summary="Recommendations for a product page",
    parameters=[s.RecommendationQuerySerializer],
    responses={
        200: s.RecommendationSerializer(many=True),
        **schema.errors(400, 404, *schema.COMMON),
    },
)
class ProductRecommendationsView(PublicEndpointMixin, ProductView):
    """Curated links first, then products bought together, then bestsellers if configured:
    the same list ``{% get_recommendations %}`` gives a template."""

    permission_classes = [AllowAny]
    serializer_class = s.RecommendationSerializer

    def get(self, request: Request, product_id: str) -> Response:
        product = self.get_product()
        query = s.RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        results = recommend.recommend_for_product(
            product,
            kind=query.validated_data.get("kind"),
            limit=query.validated_data.get("limit"),
            user=user,
        )
        context = price_context(request, [rec.product for rec in results])
        data = s.RecommendationSerializer(results, many=True, context=context).data
        response = Response(data)
        tracked(
            request,
            response,
            "product_recommendations",
            results,
            strategy=query.validated_data.get("kind") or "",
            source=str(product.pk),
        )
        return response


@extend_schema(
    tags=[TAG_PUBLIC],
    summary="Next tier up and down",
    responses={200: s.TierOffersSerializer, **schema.errors(404, *schema.COMMON)},
)
class ProductUpgradesView(PublicEndpointMixin, ProductView):
    """The neighbouring models on the product's tier ladder (``null`` where there is none)."""

    permission_classes = [AllowAny]
    serializer_class = s.TierOffersSerializer

    def get(self, request: Request, product_id: str) -> Response:
        product = self.get_product()
        offers = recommend.tier_offers(product, user=_user(request))
        data = s.TierOffersSerializer(offers, context={"request": request}).data
        return Response(data)


@extend_schema(
    tags=[TAG_PUBLIC],
    summary="Recommendations for a cart",
    request=s.CartRecommendationRequestSerializer,
    responses={
        200: s.RecommendationSerializer(many=True),
        **schema.errors(400, 415, *schema.COMMON),
    },
)
class CartRecommendationsView(
    PublicEndpointMixin, ComputedAnswerMixin, CrossSellAPIMixin, generics.GenericAPIView
):
    """Products that go with the whole cart (cart items themselves are left out)."""

    permission_classes = [AllowAny]
    serializer_class = s.CartRecommendationRequestSerializer

    def post(self, request: Request) -> Response:
        body = s.CartRecommendationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        results = recommend.recommend_for_cart(
            body.validated_data["product_ids"],
            limit=body.validated_data.get("limit"),
            user=user,
        )
        context = price_context(request, [rec.product for rec in results])
        data = s.RecommendationSerializer(results, many=True, context=context).data
        response = Response(data)
        tracked(
            request,
            response,
            "cart_recommendations",
            results,
            source=",".join(str(pk) for pk in body.validated_data["product_ids"]),
        )
        return response


@extend_schema(
    tags=[TAG_PUBLIC],
    summary="Price a cart with bundle discounts",
    request=s.BundleEvaluateRequestSerializer,
    responses={200: s.BundleEvaluationSerializer, **schema.errors(400, 415, *schema.COMMON)},
)
class BundleEvaluateView(
    PublicEndpointMixin, ComputedAnswerMixin, CrossSellAPIMixin, generics.GenericAPIView
):
    """Which bundle discounts a cart earns. Unit prices are read from the products on the
    server (``PRICE_FIELD``); a client cannot send its own."""

    permission_classes = [AllowAny]
    serializer_class = s.BundleEvaluateRequestSerializer

    def post(self, request: Request) -> Response:
        body = s.BundleEvaluateRequestSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        evaluation = bundles.evaluate(body.cart_lines(), user=_user(request))
        data = s.BundleEvaluationSerializer(evaluation, context={"request": request}).data
        return Response(data)


@extend_schema(
    tags=[TAG_PUBLIC],
    summary="Bundle offers",
    parameters=[
        OpenApiParameter(
            "product",
            type=OpenApiTypes.STR,
            required=True,
            description="Product id: the offers (current rules) that include this product.",
        )
    ],
    responses={200: s.BundleOfferSerializer(many=True), **schema.errors(400, *schema.COMMON)},
)
class BundleOffersView(
    PublicEndpointMixin, ComputedAnswerMixin, CrossSellAPIMixin, generics.GenericAPIView
):
    """Bundle rules running now that a product takes part in, with the saving at current
    prices (what the product page's bundle widget shows)."""

    permission_classes = [AllowAny]
    serializer_class = s.BundleOfferSerializer

    def get(self, request: Request) -> Response:
        raw = request.query_params.get("product")
        if raw is None:
            raise serializers.ValidationError({"product": [_("This parameter is required.")]})
        try:
            pk = parse_product_pk(raw)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"product": list(exc.messages)}) from exc
        product = _product_queryset().filter(pk=pk).first()
        if product is None:
            raise serializers.ValidationError(
                {"product": [_("No product with id %(pk)s.") % {"pk": pk}]}
            )
        offers = bundles.offers_for_product(product, user=_user(request))
        data = s.BundleOfferSerializer(offers, many=True, context={"request": request}).data
        return Response(data)


# --- Staff: affinity and recompute ----------------------------------------------------------


@extend_schema(
    tags=[TAG_ANALYTICS],
    summary="Computed partners of a product (current run)",
    responses={200: s.ProductAffinityListSerializer, **schema.errors(404, *schema.COMMON)},
)
class ProductAffinityView(ProductView):
    """Rows of the current affinity run for the product, best score first, with metrics."""

    permission_classes = [IsStaffWithModelPermission]
    permission_model = ProductAffinity
    serializer_class = s.ProductAffinityListSerializer

    def get(self, request: Request, product_id: str) -> Response:
        product = self.get_product()
        run = AffinityRun.objects.filter(is_current=True).first()
        rows = (
            ProductAffinity.objects.filter(run=run, source_id=product.pk)
            .select_related("target")
            .order_by("-score", "target")
            if run is not None
            else ProductAffinity.objects.none()
        )
        data = s.ProductAffinityListSerializer(
            {"run": run, "results": rows}, context={"request": request}
        ).data
        return Response(data)


@extend_schema(
    tags=[TAG_ANALYTICS],
    summary="Start a recompute",
    request=s.RecomputeRequestSerializer,
    responses={
        202: OpenApiResponse(
            s.AffinityRunSerializer, description="Queued; poll `runs/{id}/` for its status."
        ),
        **schema.errors(400, 415, *schema.COMMON),
    },
)
class RecomputeView(CrossSellAPIMixin, generics.GenericAPIView):
    """Queue a recompute of co-purchase affinity on the Celery worker."""

    permission_classes = [IsStaffWithModelPermission]
    permission_model = AffinityRun
    permission_action = "add"
    serializer_class = s.RecomputeRequestSerializer

    def get_queryset(self) -> QuerySet:
        return AffinityRun.objects.all()

    def post(self, request: Request) -> Response:
        body = s.RecomputeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = enqueue_recompute(**body.validated_data)
        except RecomputeParameterError as exc:
            raise serializers.ValidationError(
                {exc.field or api_settings.NON_FIELD_ERRORS_KEY: [str(exc)]}
            ) from exc
        run.refresh_from_db()
        data = s.AffinityRunSerializer(run, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="Affinity runs",
        responses={
            200: s.AffinityRunSerializer(many=True),
            **schema.errors(404, *schema.COMMON),
        },
    ),
    retrieve=extend_schema(
        summary="One affinity run",
        responses={200: s.AffinityRunSerializer, **schema.errors(404, *schema.COMMON)},
    ),
)
@extend_schema(tags=[TAG_ANALYTICS])
class AffinityRunViewSet(CrossSellAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Recompute runs, newest first: status, counts, parameters and the error if it failed."""

    queryset = AffinityRun.objects.all()
    serializer_class = s.AffinityRunSerializer
    permission_classes = [IsStaffWithModelPermission]
    pagination_class = StaffPagination


# --- Staff: curation ----------------------------------------------------------------------


def _staff_crud_schema(noun: str, serializer: type[serializers.Serializer], **list_extra: Any):
    """The same documentation (summaries, error responses) for every curation viewset."""
    read = schema.errors(404, *schema.COMMON)
    create = schema.errors(400, 415, *schema.COMMON)
    write = schema.errors(400, 404, 415, *schema.COMMON)
    return extend_schema_view(
        list=extend_schema(
            summary=f"List {noun}s",
            responses={200: serializer(many=True), **schema.errors(400, 404, *schema.COMMON)},
            **list_extra,
        ),
        create=extend_schema(summary=f"Create a {noun}", responses={201: serializer, **create}),
        retrieve=extend_schema(summary=f"One {noun}", responses={200: serializer, **read}),
        update=extend_schema(summary=f"Replace a {noun}", responses={200: serializer, **write}),
        partial_update=extend_schema(
            summary=f"Change a {noun}", responses={200: serializer, **write}
        ),
        destroy=extend_schema(summary=f"Delete a {noun}", responses={204: None, **read}),
    )


class CurationViewSet(CrossSellAPIMixin, viewsets.ModelViewSet):
    """Staff CRUD. Cached recommendations go stale through the app's model signals
    (``django_crosssell.signals``), exactly as for admin edits."""

    permission_classes = [IsStaffWithModelPermission]
    pagination_class = StaffPagination


@_staff_crud_schema(
    "product relation",
    s.ProductRelationSerializer,
    parameters=[
        OpenApiParameter(
            "source", OpenApiTypes.STR, description="Only links from this product id."
        ),
        OpenApiParameter("kind", OpenApiTypes.STR, enum=ProductRelation.Kind.values),
    ],
)
@extend_schema(tags=[TAG_CURATION])
class ProductRelationViewSet(CurationViewSet):
    """Curated links; they rank above computed affinity."""

    serializer_class = s.ProductRelationSerializer
    queryset = ProductRelation.objects.all()

    def get_queryset(self) -> QuerySet:
        queryset = ProductRelation.objects.select_related("source", "target")
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if "source" in params:
            try:
                pk = parse_product_pk(params["source"])
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"source": list(exc.messages)}) from exc
            queryset = queryset.filter(source_id=pk)
        if "kind" in params:
            kind = params["kind"]
            if kind not in ProductRelation.Kind.values:
                raise serializers.ValidationError(
                    {"kind": [_("Choose one of: %s.") % ", ".join(ProductRelation.Kind.values)]}
                )
            queryset = queryset.filter(kind=kind)
        return queryset


@_staff_crud_schema("tier ladder", s.TierLadderSerializer)
@extend_schema(tags=[TAG_CURATION])
class TierLadderViewSet(CurationViewSet):
    """Ladders with their steps, written together."""

    serializer_class = s.TierLadderSerializer
    queryset = TierLadder.objects.all()

    def get_queryset(self) -> QuerySet:
        steps = TierStep.objects.select_related("product").order_by("rank")
        return TierLadder.objects.prefetch_related(Prefetch("steps", queryset=steps))


@_staff_crud_schema("bundle rule", s.BundleRuleSerializer)
@extend_schema(tags=[TAG_CURATION])
class BundleRuleViewSet(CurationViewSet):
    """Bundle rules with their items, written together."""

    serializer_class = s.BundleRuleSerializer
    queryset = BundleRule.objects.all()

    def get_queryset(self) -> QuerySet:
        items = BundleItem.objects.select_related("product").order_by("pk")
        # Through .all(): the stubs' Manager.prefetch_related() rejects a Prefetch (a stubs bug).
        return BundleRule.objects.all().prefetch_related(Prefetch("items", queryset=items))
