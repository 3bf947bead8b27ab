"""``{% load crosssell %}``: storefront widgets. Tags hold no queries; they call services."""

from django import template

register = template.Library()


# Bundle tags live in their own module (crosssell_bundles) and are re-exported here so a
# host needs one ``{% load crosssell %}`` for every widget.
from .crosssell_bundles import register as _bundle_register  # noqa: E402

register.tags.update(_bundle_register.tags)
register.filters.update(_bundle_register.filters)
