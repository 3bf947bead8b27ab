"""Cache invalidation: any edit that can change a widget bumps the cache version.

Connected from ``CrossSellConfig.ready()``. Curated links, ladders, bundle rules, affinity
runs, the host's products (name, price, stock decide the cards) and the models the adapter
names in ``invalidation_models()`` (a stock record, a price list) all count. Computed
affinity rows are bulk-written by a recompute, which calls :func:`cache.invalidate` itself
after swapping runs; they are deliberately not connected, since deleting an old run would
otherwise fire one invalidation per row.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models, router, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from . import cache
from .adapter import get_adapter
from .conf import get_product_model
from .models import (
    AffinityRun,
    Audience,
    BundleItem,
    BundleRule,
    ProductRelation,
    Segment,
    TierLadder,
    TierStep,
)

# Audiences and segments decide who sees restricted rows (cached audience ids).
WATCHED = (
    ProductRelation,
    TierLadder,
    TierStep,
    BundleRule,
    BundleItem,
    AffinityRun,
    Audience,
    Segment,
)


def invalidate_recommendations(sender: type[models.Model], **kwargs: Any) -> None:
    """Bump the version now and again when the transaction commits.

    Now, so this process never serves a stale widget; on commit, because another request
    may recompute from the not yet committed (old) rows in between and cache them under the
    new version.
    """
    cache.invalidate()
    using = kwargs.get("using") or router.db_for_write(sender)
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(cache.invalidate, using=using)


def _models() -> list[type[models.Model]]:
    watched = list(WATCHED)
    # A misconfigured host gets system check crosssell.E001 instead of an error here.
    with contextlib.suppress(ImproperlyConfigured):
        watched.append(get_product_model())
    # A broken ADAPTER setting gets system check crosssell.E017 instead of an error here.
    with contextlib.suppress(ImproperlyConfigured):
        watched.extend(get_adapter().invalidation_models())
    return list(dict.fromkeys(watched))


def connect() -> None:
    """Connect the receivers (idempotent thanks to ``dispatch_uid``)."""
    for model in _models():
        label = model._meta.label_lower
        post_save.connect(
            invalidate_recommendations, sender=model, dispatch_uid=f"crosssell-save-{label}"
        )
        post_delete.connect(
            invalidate_recommendations, sender=model, dispatch_uid=f"crosssell-delete-{label}"
        )
        for field in model._meta.local_many_to_many:
            m2m_changed.connect(
                invalidate_recommendations,
                sender=field.remote_field.through,
                dispatch_uid=f"crosssell-m2m-{label}-{field.name}",
            )


@receiver(setting_changed)
def _reconnect(*, setting: str, **kwargs: Any) -> None:
    """A new ``ADAPTER`` (tests' ``override_settings``) may name more models to watch."""
    if setting == "CROSSSELL":
        connect()
