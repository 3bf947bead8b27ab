"""What a variant's ``config`` may say, checked by ``Variant.clean()``.

Apart from :mod:`.experiments` (which applies it) so that the model can check it without an
import cycle. Imports only Django's translation.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

CONFIG_KEYS = {"enabled": bool, "limit": int, "kind": str, "upsell": bool, "bundles": bool}
#: Values of ``kind``: the curated links ``also_recommended`` shows.
CONFIG_KINDS = ("cross_sell", "related")


def config_errors(config: Any) -> list[str]:
    """What is wrong with a variant's ``config`` (empty: nothing). Not a per-variant
    ``METRIC``: the affinity run is computed with one metric for the whole shop."""
    if not isinstance(config, dict):
        return [str(_("The configuration must be a JSON object."))]
    errors = []
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        errors.append(
            str(_("Unknown keys: %(unknown)s. A variant can set: %(known)s."))
            % {"unknown": ", ".join(unknown), "known": ", ".join(CONFIG_KEYS)}
        )
    for key, kind in CONFIG_KEYS.items():
        if key not in config:
            continue
        value = config[key]
        if kind is int:
            valid = isinstance(value, int) and not isinstance(value, bool) and value > 0
        else:
            valid = isinstance(value, kind)
        if key == "kind" and valid:
            valid = value in CONFIG_KINDS
        if not valid:
            expected = {
                bool: _("true or false"),
                int: _("a whole number above 0"),
                str: " / ".join(f'"{k}"' for k in CONFIG_KINDS),
            }[kind]
            errors.append(
                str(_("%(key)s must be %(expected)s.")) % {"key": key, "expected": expected}
            )
    return errors
