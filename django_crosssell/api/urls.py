"""URLs of the REST API: ``path("api/crosssell/", include("django_crosssell.api.urls"))``.

Product ids in paths are untyped on purpose: the view validates them with the host's key
field, so ``products/abc/...`` is a JSON 404 on an integer shop rather than Django's HTML
404, and drf-spectacular still documents the real key type.
"""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from ..customers import api as customers
from . import views

app_name = "crosssell_api"

router = SimpleRouter()
router.register("relations", views.ProductRelationViewSet, basename="relation")
router.register("ladders", views.TierLadderViewSet, basename="ladder")
router.register("bundle-rules", views.BundleRuleViewSet, basename="bundle-rule")
router.register("runs", views.AffinityRunViewSet, basename="run")

urlpatterns = [
    path(
        "products/<product_id>/recommendations/",
        views.ProductRecommendationsView.as_view(),
        name="product-recommendations",
    ),
    path(
        "products/<product_id>/upgrades/",
        views.ProductUpgradesView.as_view(),
        name="product-upgrades",
    ),
    path(
        "products/<product_id>/affinity/",
        views.ProductAffinityView.as_view(),
        name="product-affinity",
    ),
    path(
        "cart/recommendations/",
        views.CartRecommendationsView.as_view(),
        name="cart-recommendations",
    ),
    path("bundles/", views.BundleOffersView.as_view(), name="bundle-offers"),
    path("bundles/evaluate/", views.BundleEvaluateView.as_view(), name="bundle-evaluate"),
    path("recompute/", views.RecomputeView.as_view(), name="recompute"),
    path("me/for-you/", customers.ForYouView.as_view(), name="for-you"),
    path("me/buy-again/", customers.BuyAgainView.as_view(), name="buy-again"),
    path("customers/", customers.CustomerListView.as_view(), name="customer-list"),
    path(
        "customers/<str:customer>/",
        customers.CustomerDetailView.as_view(),
        name="customer-detail",
    ),
    path("segments/", customers.SegmentListView.as_view(), name="segment-list"),
    path("audiences/", customers.AudienceListView.as_view(), name="audience-list"),
    path(
        "audiences/<pk>/members/",
        customers.AudienceMembersView.as_view(),
        name="audience-members",
    ),
    path("", include(router.urls)),
    # Keep last: any other path under the API is a JSON 404, not Django's HTML page.
    re_path(r"^", views.not_found, name="not-found"),
]
