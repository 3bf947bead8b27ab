from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    # REST API for headless storefronts, its OpenAPI schema and a browsable page for it
    # (Swagger UI served from drf-spectacular-sidecar's static files, no CDN).
    path("api/crosssell/", include("django_crosssell.api.urls")),
    # One-click unsubscribe links of follow-up mails (POST-only, signed tokens).
    path("mail/", include("django_crosssell.followup.urls")),
    # The event endpoint of tracking.js (measurement).
    path("crosssell/", include("django_crosssell.measure.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/schema/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema"),
        name="api-docs",
    ),
    path("", include("example_shop.shop.urls")),
]
