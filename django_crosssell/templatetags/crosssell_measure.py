"""``{% crosssell_tracking_script %}``: the tracking script tag (re-exported by ``crosssell``).

A ``<script src defer>`` with the endpoint in a data attribute: no inline JavaScript, so a
strict Content-Security-Policy (``script-src 'self'``) needs no exception. Renders nothing
when ``TRACKING`` is "off" or the endpoint is not in the URLconf. No query.
"""

from __future__ import annotations

from django import template
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from django_crosssell.measure import tracking

register = template.Library()


@register.simple_tag
def crosssell_tracking_script() -> SafeString:
    if tracking.mode() == "off":
        return mark_safe("")
    try:
        endpoint = reverse("crosssell_measure:events")
    except NoReverseMatch:
        return mark_safe("")
    return format_html(
        '<script src="{}" data-endpoint="{}" defer></script>',
        static("django_crosssell/tracking.js"),
        endpoint,
    )
