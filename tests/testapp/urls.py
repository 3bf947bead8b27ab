from django.http import HttpResponse
from django.urls import path

app_name = "testapp"

urlpatterns = [
    path("products/<uuid:pk>/", lambda request, pk: HttpResponse(str(pk)), name="product"),
]
