"""JSON parsing that turns every malformed body into a 400."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, plus a 400 for bodies nested too deeply to decode.

    ``json.loads`` raises ``RecursionError`` (not ``ValueError``) for a body such as
    ``[[[[...`` a few thousand levels deep, which DRF would let through as a 500.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(_("JSON parse error - the body is nested too deeply.")) from exc
