"""The event endpoint: batches of view/click/add-to-cart events from ``tracking.js``.

``POST`` a JSON object ``{"events": [{"serve": id, "type": "view", "product": "", "position": 0},
...]}`` (``navigator.sendBeacon`` sends it as ``text/plain`` or ``application/json``). The
body is size-checked before it is parsed and the batch length before any item is looked at;
each request is throttled per visitor (or address). Errors are JSON. Exempt from CSRF
because a beacon cannot carry the token: a cross-site ``Origin`` is refused instead, and an
event only counts for a serve id (random, 128 bits) the visitor was shown.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from django.core.cache import caches
from django.http import HttpRequest, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..conf import app_settings
from . import tracking

ACCEPTED_TYPES = ("view", "click", "add_to_cart")


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def throttled(request: HttpRequest, state: tracking.TrackingState) -> bool:
    rate = int(app_settings.TRACKING_RATE_PER_MINUTE)
    if rate <= 0:
        return False
    who = state.visitor if not state.new_visitor else request.META.get("REMOTE_ADDR", "")
    key = f"crosssell:events:{who}:{int(time.time() // 60)}"
    store = caches[app_settings.CACHE_ALIAS]
    try:
        if store.add(key, 1, 70):
            return False
        return int(store.incr(key)) > rate
    except Exception:  # a cache outage must not stop the shop
        return False


def _item(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or raw.get("type") not in ACCEPTED_TYPES:
        return None
    try:
        serve = uuid.UUID(str(raw.get("serve", "")))
        position = int(raw.get("position") or 0)
    except (TypeError, ValueError):
        return None
    product = raw.get("product", "")
    if not isinstance(product, str | int) or len(str(product)) > 64 or not 0 <= position < 1000:
        return None
    return {"serve_id": serve, "type": raw["type"], "product": str(product), "position": position}


@csrf_exempt
@require_POST
def events(request: HttpRequest) -> JsonResponse:
    limit = int(app_settings.TRACKING_MAX_BODY)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return _error("request body too large", 413)
    origin = request.META.get("HTTP_ORIGIN")
    if origin and not url_has_allowed_host_and_scheme(
        origin + "/", allowed_hosts={request.get_host()}
    ):
        return _error("cross-site origin", 403)
    state = tracking.state_of(request) or tracking.TrackingState.for_request(request)
    if throttled(request, state):
        return _error("too many requests", 429)
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error("request body too large", 413)
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error("invalid JSON", 400)
    batch = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(batch, list):
        return _error('expected {"events": [...]}', 400)
    if len(batch) > int(app_settings.TRACKING_MAX_BATCH):
        return _error("too many events in one request", 413)
    items = [item for item in map(_item, batch) if item is not None]
    if not state.allowed() or not items:
        return JsonResponse({"accepted": 0, "rejected": len(batch) - len(items)}, status=202)
    from .middleware import write_events

    for item in items:
        state.add_event(**item)
    pending, state.events = state.events, []
    accepted = write_events(
        pending, visitor=state.visitor, session=state.session, customer=state.customer()
    )
    return JsonResponse({"accepted": accepted, "rejected": len(batch) - len(items)}, status=202)
