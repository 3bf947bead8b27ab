"""``path("crosssell/", include("django_crosssell.measure.urls"))``: the event endpoint of
``tracking.js`` and the staff-only figures of the dashboard (JSON)."""

from django.urls import path

from . import api_views, views

app_name = "crosssell_measure"

urlpatterns = [
    path("events/", views.events, name="events"),
    path("performance/", api_views.PerformanceView.as_view(), name="performance"),
    path("experiments/<str:key>/", api_views.ExperimentView.as_view(), name="experiment"),
]
