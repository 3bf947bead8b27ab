"""A thumbnailer for the Oscar test host that needs neither sorl-thumbnail nor Pillow work:
Oscar's ``{% oscar_thumbnail %}`` gets the original image's URL back."""

from types import SimpleNamespace
from typing import Any

from django.conf import settings
from oscar.core.thumbnails import AbstractThumbnailer


class OriginalImage(AbstractThumbnailer):
    def generate_thumbnail(self, source: Any, **opts: Any) -> SimpleNamespace:
        url = getattr(source, "url", None) or f"{settings.MEDIA_URL}{source}"
        return SimpleNamespace(url=url)

    def delete_thumbnails(self, source: Any) -> None:
        return None
