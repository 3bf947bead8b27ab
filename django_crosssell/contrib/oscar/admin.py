"""Curated links on Oscar's product admin page.

Oscar registers ``catalogue.Product`` in the Django admin (with ``search_fields``, so the
link picker is an autocomplete). This module adds django-crosssell's
``ProductRelationInline`` to that registration when the admin discovers it; a shop with its
own admin site calls :func:`add_relation_inline` with it. Curation happens in the Django
admin: Oscar's dashboard does not show these links (it edits Oscar's own
``ProductRecommendation``, which ``crosssell_import_oscar_recommendations`` can import).
"""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from oscar.core.loading import get_model

from django_crosssell.admin import ProductRelationInline


def add_relation_inline(site: admin.AdminSite = admin.site) -> bool:
    """Add ``ProductRelationInline`` to the product admin registered on ``site``.

    Idempotent; returns False when ``site`` has no product admin.
    """
    product = get_model("catalogue", "Product")
    try:
        model_admin = site.get_model_admin(product)
    except NotRegistered:
        return False
    if ProductRelationInline not in model_admin.inlines:
        # On this instance only: another site may register the same ModelAdmin class.
        model_admin.inlines = [*model_admin.inlines, ProductRelationInline]  # type: ignore[misc]
    return True


# Oscar's catalogue admin registers the product admin; make sure it ran whatever the order
# of INSTALLED_APPS (the admin imports each app's admin module in that order).
import_module(f"{apps.get_app_config('catalogue').name}.admin")
add_relation_inline()
