"""Bounds on what a request or an editor may ask for, checked before it costs anything.

A load test found values that were accepted and broke things later: an ``ends_at`` in the
year 9999 (admin lists and offers then fail with ``OverflowError`` adding a day), a
``half_life_days`` of ``1e-300`` (the run then fails), and list bodies whose length was
checked only after every item had been validated. The checks live here so the admin, the
API and the recompute say the same thing.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .conf import app_settings

#: The shortest half-life or look-back window that makes sense: one hour, in days.
MIN_DAYS = 1 / 24


def max_year() -> int:
    return int(app_settings.MAX_YEAR)


#: Earliest year of a campaign date: earlier ones overflow in time zones west of UTC.
MIN_YEAR = 1970


def check_year(value: date | None) -> None:
    """A date within the system-wide range (``MIN_YEAR``..``MAX_YEAR``), or a
    ``ValidationError``."""
    if value is not None and value.year > max_year():
        raise ValidationError(
            _("Enter a date in or before %(year)d.") % {"year": max_year()}, code="max_year"
        )
    if value is not None and value.year < MIN_YEAR:
        raise ValidationError(
            _("Enter a date in or after %(year)d.") % {"year": MIN_YEAR}, code="min_year"
        )


def check_days(value: Any) -> None:
    """0 (off) or a finite number of days of at least one hour."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(_("Enter a number of days."), code="invalid")
    if not math.isfinite(value) or (value != 0 and value < MIN_DAYS) or value < 0:
        raise ValidationError(
            _("Enter 0 or a number of days of at least one hour (%(least)s)."),
            code="min_value",
            params={"least": f"{MIN_DAYS:.4f}"},
        )
