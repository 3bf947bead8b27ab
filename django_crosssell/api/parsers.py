"""JSON parsing that turns every malformed or oversized body into a JSON error."""

from __future__ import annotations

import io
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from ..conf import app_settings


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "body_too_large"


def too_large(request: Any) -> None:
    """Raise :class:`BodyTooLarge` when the declared body exceeds ``API_MAX_BODY_BYTES``."""
    limit = int(app_settings.API_MAX_BODY_BYTES)
    meta = getattr(request, "META", {})
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        length = 0
    if length > limit:
        raise BodyTooLarge(
            _("The request body is too large (at most %(limit)d bytes).") % {"limit": limit}
        )


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, plus a size limit and a 400 for bodies nested too deeply.

    The size (``API_MAX_BODY_BYTES``) is checked from ``Content-Length`` before a byte is
    read, and again while reading for bodies without one: a 2.4 MB list of ids otherwise
    costs its decoding and the validation of every id before the length check refuses it.

    ``json.loads`` raises ``RecursionError`` (not ``ValueError``) for a body such as
    ``[[[[...`` a few thousand levels deep, which DRF would let through as a 500.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = int(app_settings.API_MAX_BODY_BYTES)
        too_large((parser_context or {}).get("request"))
        if stream is not None:
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise BodyTooLarge(
                    _("The request body is too large (at most %(limit)d bytes).") % {"limit": limit}
                )
            stream = io.BytesIO(body)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(_("JSON parse error - the body is nested too deeply.")) from exc
