from django.apps import apps
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/crosssell/", include("django_crosssell.api.urls")),
    path("crosssell/", include("django_crosssell.measure.urls")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
