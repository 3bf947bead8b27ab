"""The dashboard's figures through the REST API, for staff (``IsAdminUser``).

``GET performance/?days=30`` and ``GET experiments/<key>/`` under the URLconf of
:mod:`django_crosssell.measure.urls`. The experiment report loads scipy lazily.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .dashboard import performance
from .models import Experiment


class PerformanceView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="crosssell_performance",
        parameters=[OpenApiParameter("days", int, description="days back (1-366, default 30)")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        try:
            days = int(request.query_params.get("days", 30))
        except ValueError:
            days = 30
        return Response(performance(max(1, min(days, 366))))


class ExperimentView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="crosssell_experiment_report",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, key: str) -> Response:
        try:
            experiment = Experiment.objects.get(key=key)
        except Experiment.DoesNotExist as exc:
            raise Http404 from exc
        from .report import experiment_report

        report: dict[str, Any] = experiment_report(experiment)
        return Response(report)
