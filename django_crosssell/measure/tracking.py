"""Per-request tracking state: who may be counted, serves buffered during render, cookies.

The cost rule is that a warm widget runs no query. So the render path only *buffers*: each
rendered widget's HTML carries placeholders (written once into the cached markup), which
:func:`finish_widget` swaps for a fresh serve id and signed click tokens, and the serve is
appended to the request's buffer. :class:`~django_crosssell.measure.middleware.TrackingMiddleware`
writes the buffer once per response with one ``bulk_create`` (and the click read from the
``cs`` query parameter, and first exposures), after deciding whether this request may be
counted at all. Anything that may cost a query (the user for the staff check, the host's
consent callable) is asked at most once per request, and only when something was buffered.

Excluded: ``TRACKING = "off"`` (nothing is written and links carry no token), HEAD
requests, prefetches (``Sec-Purpose: prefetch`` / ``Purpose: prefetch``), known crawlers
(the maintained ``crawlerdetect`` list), staff users, and under ``"consent"`` every request
the host's callable does not approve. Imports ``conf``, ``measure.subjects``; never numpy.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache as memoize
from functools import lru_cache
from typing import Any

from django.core import signing
from django.utils import timezone
from django.utils.module_loading import import_string

from ..conf import app_settings
from . import subjects

logger = logging.getLogger("django_crosssell")

STATE_ATTR = "crosssell_tracking"
MODES = ("always", "consent", "off")
#: Written into cached widget markup; replaced per response (see module docstring).
PLACEHOLDER = "XCSSERVEX"
CLICK_PARAM = "cs"
CLICK_SALT = "django_crosssell.measure.click"
ASSIGNMENT_COOKIE_SALT = "django_crosssell.measure.assignments"
ASSIGNMENT_COOKIE = "crosssell_exp"
VISITOR_MAX_AGE = 365 * 24 * 3600

_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_TOKEN = re.compile(PLACEHOLDER + r"(?:\.(\d+))?")
_STRIP_LINK = re.compile(r"(?:\?|&amp;|&)" + CLICK_PARAM + "=" + PLACEHOLDER + r"\.\d+")
#: An element of a shown item: ``data-crosssell-item="<product key>"`` with
#: ``data-crosssell-position="<n>"`` on the same tag, in either order.
_ITEM_TAG = re.compile(r'<[^>]*\bdata-crosssell-item="[^"]*"[^>]*>')
_ITEM_KEY = re.compile(r'\bdata-crosssell-item="([^"]*)"')
_ITEM_POSITION = re.compile(r'\bdata-crosssell-position="(\d+)"')


@memoize
def _crawler_detector() -> Any:
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


@lru_cache(maxsize=2048)
def is_bot(user_agent: str) -> bool:
    """Asked once per distinct user agent (the list is a few hundred patterns)."""
    if not user_agent:
        return True  # browsers always send one; scripts and health checks often do not
    try:
        return bool(_crawler_detector().isCrawler(user_agent))
    except Exception:  # a broken list must not break the page
        logger.warning("django-crosssell: crawlerdetect failed", exc_info=True)
        return False


def is_prefetch(request: Any) -> bool:
    meta = request.META
    for header in ("HTTP_SEC_PURPOSE", "HTTP_PURPOSE", "HTTP_X_PURPOSE", "HTTP_X_MOZ"):
        if "prefetch" in meta.get(header, "").lower():
            return True
    return False


def mode() -> str:
    value = app_settings.TRACKING
    return value if value in MODES else "off"


def excluded_without_queries(request: Any) -> bool:
    """The exclusions readable from the request line and headers alone."""
    if mode() == "off" or request.method == "HEAD" or is_prefetch(request):
        return True
    return is_bot(request.META.get("HTTP_USER_AGENT", ""))


def host_consents(request: Any) -> bool:
    path = app_settings.TRACKING_CONSENT
    if not path:
        return False
    try:
        return bool(import_string(path)(request))
    except Exception:
        logger.warning("django-crosssell: TRACKING_CONSENT failed; not tracking", exc_info=True)
        return False


def is_staff(request: Any) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and getattr(user, "is_staff", False))


@dataclass
class TrackingState:
    """What measurement knows about one request; created by the middleware."""

    request: Any
    visitor_id: str
    session_id: str
    new_visitor: bool = False
    new_session: bool = False
    serves: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    exposures: dict[int, int] = field(default_factory=dict)
    assignments: dict[str, int] | None = None
    new_assignments: bool = False
    _allowed: bool | None = None
    _excluded: bool | None = None
    _consented: bool | None = None
    _experiments: Any = None
    configs: dict[str, Any] = field(default_factory=dict)
    #: In the global holdout (None: not asked yet; see ``experiments.config_for``).
    held_out: bool | None = None
    #: The customer's recorded variants (see ``experiments.recorded_variants``).
    recorded: dict[int, int] | None = None
    #: The widget cache version the serves record, read once per request (see
    #: ``widgets.finish``): one cache round trip per page, not one per widget.
    cache_version: int | None = None

    @classmethod
    def for_request(cls, request: Any) -> TrackingState:
        cookies = request.COOKIES
        visitor = cookies.get(app_settings.TRACKING_COOKIE, "")
        session = cookies.get(app_settings.TRACKING_SESSION_COOKIE, "")
        valid = _VALID_ID
        state = cls(request=request, visitor_id=visitor, session_id=session)
        if not valid.match(visitor):
            state.visitor_id, state.new_visitor = subjects.new_id(), True
        if not valid.match(session):
            state.session_id, state.new_session = subjects.new_id(), True
        return state

    # --- may this request be counted? ---------------------------------------------------

    def cheap_excluded(self) -> bool:
        if self._excluded is None:
            self._excluded = excluded_without_queries(self.request)
        return self._excluded

    def consented(self) -> bool:
        if self._consented is None:
            self._consented = mode() == "always" or (
                mode() == "consent" and host_consents(self.request)
            )
        return self._consented

    def allowed(self) -> bool:
        """Whether anything of this request may be written (asked once, then memoised)."""
        if self._allowed is None:
            self._allowed = (
                not self.cheap_excluded() and self.consented() and not is_staff(self.request)
            )
        return self._allowed

    # --- who ----------------------------------------------------------------------------

    @property
    def visitor(self) -> str:
        return subjects.hashed("visitor", self.visitor_id)

    @property
    def session(self) -> str:
        return subjects.hashed("session", self.session_id)

    def customer(self) -> str:
        user = getattr(self.request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return ""
        from ..adapter import get_adapter

        return subjects.hashed("customer", get_adapter().customer_key(user))

    # --- buffers ------------------------------------------------------------------------

    def add_serve(self, **serve: Any) -> str:
        if "id" not in serve:
            serve["id"] = uuid.uuid4()
        if "created_at" not in serve:
            serve["created_at"] = timezone.now()
        self.serves.append(serve)
        return serve["id"].hex

    def add_event(self, **event: Any) -> None:
        event.setdefault("created_at", timezone.now())
        self.events.append(event)

    def assignment_cookie(self) -> dict[str, int]:
        if self.assignments is None:
            raw = self.request.COOKIES.get(ASSIGNMENT_COOKIE, "")
            try:
                value = signing.loads(raw, salt=ASSIGNMENT_COOKIE_SALT) if raw else {}
            except signing.BadSignature:
                value = {}
            self.assignments = (
                {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}
            )
        return self.assignments


#: The state of the request being handled, for code that gets no request (Oscar's
#: ``order_placed`` signal); set by the middleware for the duration of the request.
CURRENT: contextvars.ContextVar[TrackingState | None] = contextvars.ContextVar(
    "crosssell_tracking", default=None
)


def state_of(request: Any) -> TrackingState | None:
    return getattr(request, STATE_ATTR, None) if request is not None else None


def current() -> TrackingState | None:
    return CURRENT.get()


# --- click tokens -----------------------------------------------------------------------


def signed_serve(serve_id: str) -> str:
    """``<serve id>:<signature>``: one HMAC per serve, shared by its links.

    Exactly what ``signing.Signer(salt=CLICK_SALT).sign()`` returns (the same key
    derivation and encoding, so :func:`read_click_token` and links signed either way read
    alike), computed with the derived key kept between calls: it runs on every tracked page.
    """
    mac = subjects.salted_sha256(CLICK_SALT + "signer", serve_id)
    return f"{serve_id}:{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


def click_token(serve_id: str, position: int) -> str:
    """``<serve id>:<signature>.<position>``. The position is not signed: it only picks
    one of the items the signed serve showed (checked against the serve when counted)."""
    return f"{signed_serve(serve_id)}.{int(position)}"


def read_click_token(token: str) -> tuple[uuid.UUID, int] | None:
    try:
        signed, _, position = token.rpartition(".")
        serve = signing.Signer(salt=CLICK_SALT).unsign(signed)
        return uuid.UUID(hex=serve), int(position)
    except (signing.BadSignature, ValueError):
        return None


def with_click_token(url: str, serve_id: str, position: int) -> str:
    """``url`` carrying the signed serve id and position a click is counted from."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{CLICK_PARAM}={click_token(serve_id, position)}"


def placeholder_url(url: str, position: int) -> str:
    """A card link as cached: the token is filled in per response by :func:`finish_widget`."""
    if not url:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{CLICK_PARAM}={PLACEHOLDER}.{int(position)}"


# --- the widget render hook -------------------------------------------------------------


def strip(html: str) -> str:
    return _STRIP_LINK.sub("", html).replace(PLACEHOLDER, "")


def items_of(html: str) -> list[list[Any]]:
    """``[product key, position]`` of each item the markup shows, in document order."""
    return [list(item) for item in _parsed(html).items]


@dataclass(frozen=True)
class _Markup:
    """What a widget's cached markup holds for tracking, read once per distinct markup."""

    items: tuple[tuple[str, int], ...]
    #: The markup cut at each placeholder: ``texts[0]``, token, ``texts[1]``, token...
    texts: tuple[str, ...]
    #: Per placeholder: None (the serve id) or the position of a card link's token.
    tokens: tuple[int | None, ...]


@lru_cache(maxsize=512)
def _parsed(html: str) -> _Markup:
    """Memoised on the markup: a warm widget's cached HTML is the same string on every
    page, and scanning it (items, placeholders) is the dearest part of buffering a serve."""
    items: list[tuple[str, int]] = []
    for tag in _ITEM_TAG.findall(html):
        key = _ITEM_KEY.search(tag)
        position = _ITEM_POSITION.search(tag)
        if key is not None:
            items.append((key.group(1), int(position.group(1)) if position else 1))
    pieces = _TOKEN.split(html)  # text, group, text, group, ..., text
    return _Markup(
        items=tuple(items),
        texts=tuple(pieces[0::2]),
        tokens=tuple(None if group is None else int(group) for group in pieces[1::2]),
    )


def finish_widget(
    request: Any,
    widget: str,
    html: str,
    *,
    version: int = 0,
    strategy: str = "",
    source: str = "",
    experiment: tuple[int, int] | None = None,
    now: datetime | None = None,
) -> str:
    """The widget's HTML for this response: a new serve buffered, or the tokens removed.

    Runs no query: the serve is written by the middleware when the response leaves.
    """
    if PLACEHOLDER not in html:
        return html
    state = state_of(request)
    if state is None or state.cheap_excluded() or "data-crosssell-serve" not in html:
        return strip(html)
    markup = _parsed(html)
    serve_id = state.add_serve(
        placement=widget,
        strategy=strategy or widget,
        strategy_version=str(version),
        source=source[:255],
        items=[list(item) for item in markup.items],
        experiment_id=experiment[0] if experiment else None,
        variant_id=experiment[1] if experiment else None,
        created_at=now or timezone.now(),
    )
    signed = signed_serve(serve_id)
    parts = [markup.texts[0]]
    for position, text in zip(markup.tokens, markup.texts[1:], strict=True):
        parts.append(serve_id if position is None else f"{signed}.{position}")
        parts.append(text)
    return "".join(parts)


def record_holdout(request: Any, widget: str) -> None:
    """A held-out visitor met a widget: a serve without items marks the exposure."""
    state = state_of(request)
    if state is not None and not state.cheap_excluded():
        state.add_serve(placement=widget, strategy="holdout", held_out=True, items=[])


def suppress_errors() -> contextlib.AbstractContextManager[None]:
    return contextlib.suppress(Exception)
