"""``TrackingMiddleware``: one write per response, after the response has been sent.

Put it after ``AuthenticationMiddleware`` (the staff exclusion reads ``request.user``). It
gives each request a :class:`~django_crosssell.measure.tracking.TrackingState`, lets the
page render (widgets only buffer), then decides whether the request may be counted and, if
so, sets the first-party cookies on the response (they must leave with it). The rows (the
buffered serves in one INSERT, the click carried by a recommendation link's ``cs``
parameter, so a click counts without JavaScript, and the first exposures to experiments)
are written once the response has been sent: Django sends ``request_finished`` from the
response's ``close()``, which a WSGI server calls after the body is out (ASGI: after the
last body message). So the visitor does not wait for the INSERT; the worker does, as
before. Where there is no request cycle (the middleware called directly, a request whose
``request_started`` this thread did not see) the rows are written before returning, as
before. A process that dies between the response and ``close()`` loses that page's rows.
A failure here is logged, never raised: it must not cost the shop a page.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from ..conf import app_settings
from . import tracking

logger = logging.getLogger("django_crosssell")


class TrackingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if tracking.mode() == "off":
            return self.get_response(request)
        state = tracking.TrackingState.for_request(request)
        setattr(request, tracking.STATE_ATTR, state)
        # ``request.GET`` parses the query string: only when a click token may be in it
        query = request.META.get("QUERY_STRING", "")
        token = request.GET.get(tracking.CLICK_PARAM, "") if tracking.CLICK_PARAM in query else ""
        current = tracking.CURRENT.set(state)
        try:
            response = self.get_response(request)
        finally:
            tracking.CURRENT.reset(current)
        try:
            if token:
                clicked = tracking.read_click_token(token)
                if clicked is not None:
                    state.add_event(type="click", serve_id=clicked[0], position=clicked[1])
            if pending(state):
                set_cookies(state, response)
                if not _defer(state, request):
                    write(state)
        except Exception:
            logger.warning("django-crosssell: tracking data was not written", exc_info=True)
        return response


def pending(state: tracking.TrackingState) -> bool:
    """Whether the request buffered rows and may be counted (asked before the response
    leaves: the answer decides the cookies)."""
    return bool(state.serves or state.events or state.exposures) and state.allowed()


def flush(state: tracking.TrackingState, response: HttpResponse | None = None) -> int:
    """Write what the request buffered (when it may be counted) now; the rows written."""
    if not pending(state):
        return 0
    if response is not None:
        set_cookies(state, response)
    return write(state)


def write(state: tracking.TrackingState) -> int:
    """Write and empty the buffers; the rows written. The buffers are emptied first, so
    a state reached twice (a deferred write and a retry) writes its rows once."""
    serves, events, exposures = state.serves, state.events, state.exposures
    state.serves, state.events, state.exposures = [], [], {}
    if not (serves or events or exposures):
        return 0
    from django.utils import timezone

    from .models import Exposure, Serve

    visitor, session, customer = state.visitor, state.session, state.customer()
    written = 0
    if serves:
        insert_serves(
            [
                Serve(visitor=visitor, session=session, customer=customer, **serve)
                for serve in serves
            ]
        )
        written += len(serves)
    if events:
        written += write_events(events, visitor=visitor, session=session, customer=customer)
    if exposures:
        now = timezone.now()
        subject = {"visitor": visitor, "customer": customer}
        units = {row["id"]: row["unit"] for row in state._experiments or []}
        Exposure.objects.bulk_create(
            [
                Exposure(
                    experiment_id=experiment,
                    variant_id=variant,
                    subject=subject.get(units.get(experiment, "visitor"), visitor),
                    first_at=now,
                )
                for experiment, variant in exposures.items()
                if subject.get(units.get(experiment, "visitor"), visitor)
            ],
            ignore_conflicts=True,
        )
    return written


# --- Writing after the response ----------------------------------------------------------
#
# Same pattern as ``stampede``'s revalidations: ``request_started`` opens a list for this
# thread's request, the middleware appends its state, ``request_finished`` (sent by the
# response's ``close()`` once the server has sent it) writes. The list remembers the
# request's WSGI ``environ`` (or ASGI ``scope``): only the request that started this cycle
# defers, so a request built by hand (``RequestFactory``) is written at once. Django's
# ASGI handler closes the response in the middleware's thread (tested); its test
# ``AsyncClient`` does not, and its rows come with that thread's next request.

_cycle = threading.local()


def request_started(environ: Any = None, scope: Any = None, **kwargs: Any) -> None:
    left = getattr(_cycle, "pending", None)
    _cycle.marker = environ if environ is not None else scope
    _cycle.pending = []
    if left:
        # The server never called the previous response's close(): write its rows now
        # rather than lose them (the cost falls on this request, as without deferring).
        logger.warning("django-crosssell: a response was not closed; writing its tracking rows")
        _write_all(left)


def request_finished(**kwargs: Any) -> None:
    """Write the rows of the response this thread has just sent."""
    states = getattr(_cycle, "pending", None)
    _cycle.pending, _cycle.marker = None, None
    if states:
        _write_all(states)


def _defer(state: tracking.TrackingState, request: HttpRequest) -> bool:
    states = getattr(_cycle, "pending", None)
    marker = getattr(_cycle, "marker", None)
    if states is None or marker is None:
        return False
    if marker is not getattr(request, "environ", None) and marker is not getattr(
        request, "scope", None
    ):
        return False
    states.append(state)
    return True


def _write_all(states: list[tracking.TrackingState]) -> None:
    from django.db import connections, router

    from .models import Serve

    connection = connections[router.db_for_write(Serve)]
    closed = connection.connection is None
    for state in states:
        try:
            write(state)
        except Exception:
            logger.warning("django-crosssell: tracking data was not written", exc_info=True)
    if closed:
        # Django's own request_finished receiver closed the request's connection before
        # this one ran (it is normally moved after ours, see ``receivers.connect``): keep
        # its policy (``CONN_MAX_AGE``) for the connection the write opened.
        connection.close_if_unusable_or_obsolete()


def insert_serves(serves: list[Any]) -> None:
    """One INSERT statement for the response's serves.

    ``bulk_create`` wraps even one statement in BEGIN/COMMIT in autocommit mode: two more
    round trips on every tracked page. A single multi-row INSERT is atomic by itself, so
    when every serve fits one batch it goes through the manager's ``_insert`` (what
    ``bulk_create`` calls inside its transaction; the ids are set by the model, nothing
    needs returning); otherwise, or if that private method changes, ``bulk_create``.
    """
    from django.db import connections, router

    from .models import Serve

    using = router.db_for_write(Serve)
    connection = connections[using]
    fields = [field for field in Serve._meta.concrete_fields]
    insert = getattr(Serve._base_manager, "_insert", None)
    batch = connection.ops.bulk_batch_size(fields, serves)
    if insert is None or len(serves) > batch:
        Serve.objects.bulk_create(serves)
        return
    for serve in serves:
        for field in fields:
            if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
                setattr(serve, field.attname, field.pre_save(serve, add=True))
    try:
        insert(serves, fields=fields, using=using)
    except TypeError:  # the private signature changed: the public path
        Serve.objects.bulk_create(serves)


def write_events(events: list[dict[str, Any]], *, visitor: str, session: str, customer: str) -> int:
    """Events for serves that exist; a click's product is the serve's item at its position.

    Duplicates (same serve, type and product) are dropped by the unique constraint.
    """
    from .models import Event, Serve

    ids = {uuid.UUID(str(event["serve_id"])) for event in events}
    items = dict(Serve.objects.filter(pk__in=ids).values_list("pk", "items"))
    rows = []
    for event in events:
        serve_id = uuid.UUID(str(event["serve_id"]))
        if serve_id not in items:
            continue
        position = int(event.get("position") or 0)
        product = str(event.get("product") or "")
        if event["type"] in ("click", "add_to_cart") and position:
            shown = {int(at): str(key) for key, at in items[serve_id]}
            if position not in shown:
                continue
            product = shown[position]
        rows.append(
            Event(
                serve_id=serve_id,
                type=event["type"],
                product=product[:64],
                position=position,
                created_at=event["created_at"],
                visitor=visitor,
                session=session,
                customer=customer,
            )
        )
    Event.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def set_cookies(state: tracking.TrackingState, response: HttpResponse) -> None:
    if not (state.new_visitor or state.new_session or state.new_assignments):
        return  # a returning visitor's page: nothing to set
    secure = state.request.is_secure()
    if state.new_visitor:
        response.set_cookie(
            app_settings.TRACKING_COOKIE,
            state.visitor_id,
            max_age=tracking.VISITOR_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=secure,
        )
        state.new_visitor = False
    if state.new_session:
        response.set_cookie(
            app_settings.TRACKING_SESSION_COOKIE,
            state.session_id,
            httponly=True,
            samesite="Lax",
            secure=secure,
        )
        state.new_session = False
    if state.new_assignments and state.assignments is not None:
        from django.core import signing

        response.set_cookie(
            tracking.ASSIGNMENT_COOKIE,
            signing.dumps(state.assignments, salt=tracking.ASSIGNMENT_COOKIE_SALT, compress=True),
            max_age=tracking.VISITOR_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=secure,
        )
        state.new_assignments = False
