"""``path("mail/", include("django_crosssell.followup.urls"))`` in the host's URLconf."""

from django.urls import path

from . import views

app_name = "crosssell_followup"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe_view, name="unsubscribe"),
]
