"""The one-click unsubscribe endpoint (RFC 8058).

``POST`` with a valid token (what Gmail's and Yahoo's "Unsubscribe" button sends, with the
body ``List-Unsubscribe=One-Click``, and what the confirmation page's button sends)
withdraws consent for the mail's purpose, suppresses the address and answers 200 with a
short page: no login, no redirect, no CSRF token (the mail provider has none; the signed
token is the credential). ``GET`` shows the confirmation page and changes nothing, because
link scanners and previews open every link in a mail.

Imports ``followup.unsubscribe``.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .unsubscribe import read_token, unsubscribe

TEMPLATE = "django_crosssell/followup/unsubscribe.html"


def mask(email: str) -> str:
    """``h***@example.jp``: the page may be seen by whoever has the link (a forwarded mail)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _respond(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    response = render(request, TEMPLATE, context, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    message = read_token(token)
    if message is None or not message.email:
        return _respond(request, {"state": "invalid"}, status=404)
    with translation.override(message.language or translation.get_language()):
        context = {
            "state": "confirm",
            "message": message,
            "purpose": message.flow.get_purpose_display(),
            "email": mask(message.email),
        }
        if request.method == "POST":
            every_purpose = request.POST.get("scope") == "all"
            unsubscribe(message, every_purpose=every_purpose)
            context.update(state="done", every_purpose=every_purpose)
        return _respond(request, context)
