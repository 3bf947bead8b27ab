"""Bundle widgets (``bundle_offers``, ``bundle_progress``); loaded through ``crosssell``."""

from django import template

register = template.Library()
