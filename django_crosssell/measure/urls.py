"""``path("crosssell/", include("django_crosssell.measure.urls"))``: the event endpoint."""

from django.urls import path

from . import views

app_name = "crosssell_measure"

urlpatterns = [path("events/", views.events, name="events")]
