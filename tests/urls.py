from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("shop/", include("tests.testapp.urls")),
    path("api/crosssell/", include("django_crosssell.api.urls")),
    path("mail/", include("django_crosssell.followup.urls")),
    # The event endpoint of tracking.js (measurement).
    path("crosssell/", include("django_crosssell.measure.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
