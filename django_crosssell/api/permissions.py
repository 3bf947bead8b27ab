"""Who may call what.

Public endpoints are read-only views of what the storefront shows anyway. Curation and
analytics need a staff account holding the same model permission the admin would ask for,
so a shop that restricts its merchandisers in the admin restricts them here too.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

ACTION_FOR_METHOD = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "add",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def perm_name(model: type[models.Model], action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


class IsStaffWithModelPermission(BasePermission):
    """Staff with the admin's permission for the view's model and the request's method.

    A view names its model in ``permission_model`` (default: its queryset's model) and may
    pin the action with ``permission_action`` (e.g. ``add`` for starting a recompute).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_staff and user.is_active):
            return False
        model = getattr(view, "permission_model", None) or view.get_queryset().model
        action = getattr(view, "permission_action", None) or ACTION_FOR_METHOD.get(
            request.method or "", "change"
        )
        if request.method in SAFE_METHODS and action == "view":
            # Like the admin: change permission implies view permission.
            return user.has_perm(perm_name(model, "view")) or user.has_perm(
                perm_name(model, "change")
            )
        return user.has_perm(perm_name(model, action))
