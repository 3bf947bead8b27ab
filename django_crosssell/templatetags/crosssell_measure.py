"""``{% crosssell_tracking_script %}``: the tracking script tag (re-exported by ``crosssell``).

A ``<script src defer>`` with the endpoint in a data attribute: no inline JavaScript, so a
strict Content-Security-Policy (``script-src 'self'``) needs no exception. Renders nothing
when ``TRACKING`` is "off" or the endpoint is not in the URLconf. No query.

The tag is on every tracked page and ``reverse()`` plus ``static()`` cost more than the rest
of a page's tracking, so the markup is memoised per what it depends on (the request's script
prefix and URLconf, the active language for ``i18n_patterns``) and forgotten when a setting
it depends on changes.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags.static import static
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from django_crosssell.measure import tracking

register = template.Library()

_markup: dict[tuple[Any, ...], SafeString] = {}


@register.simple_tag
def crosssell_tracking_script() -> SafeString:
    if tracking.mode() == "off":
        return mark_safe("")
    key = (get_script_prefix(), get_urlconf(), get_language())
    found = _markup.get(key)
    if found is None:
        if len(_markup) >= 64:  # a host minting URLconfs per request: stay bounded
            _markup.clear()
        found = _markup[key] = _render()
    return found


def _render() -> SafeString:
    try:
        endpoint = reverse("crosssell_measure:events")
    except NoReverseMatch:
        return mark_safe("")
    return format_html(
        '<script src="{}" data-endpoint="{}" defer></script>',
        static("django_crosssell/tracking.js"),
        endpoint,
    )


#: The settings the markup depends on (besides what the memo is keyed by).
_DEPENDS_ON = frozenset(
    {
        "ROOT_URLCONF",
        "FORCE_SCRIPT_NAME",
        "INSTALLED_APPS",
        "STATIC_URL",
        "STORAGES",
        "STATICFILES_STORAGE",
        "USE_I18N",
        "LANGUAGES",
        "LANGUAGE_CODE",
        "PREFIX_DEFAULT_LANGUAGE",
    }
)


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting in _DEPENDS_ON:
        _markup.clear()
