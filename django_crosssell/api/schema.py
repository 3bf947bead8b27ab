"""Error responses shared by every endpoint, documented once.

DRF's exception handler answers errors as ``{"detail": "..."}`` (401, 403, 404, 405, 415,
429 and JSON parse errors) or, for validation, as an object mapping each field to its
messages (nested for list items). Declaring them all keeps clients and schemathesis honest:
an undocumented status code is a schema violation.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorDetail = inline_serializer(
    name="ErrorDetail",
    fields={"detail": serializers.CharField(help_text="Human-readable explanation.")},
)

VALIDATION_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Field errors: each invalid field maps to a list of messages (objects keyed by item "
        "index for list fields); `non_field_errors` holds errors about the whole body; a body "
        "that is not JSON gives `detail`."
    ),
    "additionalProperties": {},
}

_DESCRIPTIONS = {
    400: "Invalid input; see the field errors.",
    401: "Authentication required (when the first authentication class sends a challenge).",
    403: "Not logged in, or not allowed (staff with the matching model permission only).",
    404: "No such object, or a malformed id.",
    415: "The body must be JSON (`Content-Type: application/json`).",
    429: "Too many requests; retry after the `Retry-After` header's number of seconds.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Responses for the given error status codes."""
    responses: dict[int, OpenApiResponse] = {}
    for code in codes:
        schema = VALIDATION_ERROR_SCHEMA if code == 400 else ErrorDetail
        responses[code] = OpenApiResponse(response=schema, description=_DESCRIPTIONS[code])
    return responses


#: Errors any endpoint can answer: wrong credentials (401/403 even on public endpoints, as
#: authentication runs first), a missing CSRF token for session users (403) and throttling.
COMMON = (401, 403, 429)
