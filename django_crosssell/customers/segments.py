"""The default segment map: the common ten-cell R x F grid with English and Japanese names.

Migration 0006 seeds it (with its own copy, as migrations must); :func:`ensure_segments`
seeds it again when the table is empty (a test database made without migrations, or staff
who deleted every segment), so a snapshot never leaves every customer without a segment.
"""

from __future__ import annotations

from .models import Segment

#: (slug, English name, Japanese name, R range, F range)
DEFAULT_SEGMENTS = [
    ("champions", "Champions", "優良顧客", (5, 5), (4, 5)),
    ("loyal", "Loyal", "ロイヤル顧客", (3, 4), (4, 5)),
    ("potential-loyalists", "Potential loyalists", "ロイヤル予備軍", (4, 5), (2, 3)),
    ("new", "New", "新規顧客", (5, 5), (1, 1)),
    ("promising", "Promising", "有望顧客", (4, 4), (1, 1)),
    ("need-attention", "Need attention", "要注意顧客", (3, 3), (3, 3)),
    ("about-to-sleep", "About to sleep", "休眠予備軍", (3, 3), (1, 2)),
    ("at-risk", "At risk", "離反危険顧客", (1, 2), (3, 4)),
    ("cant-lose", "Can't lose", "失いたくない顧客", (1, 2), (5, 5)),
    ("hibernating", "Hibernating", "休眠顧客", (1, 2), (1, 2)),
]


def ensure_segments() -> list[Segment]:
    """The segments in map order, the defaults created first when there are none."""
    segments = list(Segment.objects.order_by("position", "pk"))
    if segments:
        return segments
    Segment.objects.bulk_create(
        Segment(
            slug=slug,
            name=name,
            name_ja=name_ja,
            r_min=r_min,
            r_max=r_max,
            f_min=f_min,
            f_max=f_max,
            position=position,
        )
        for position, (slug, name, name_ja, (r_min, r_max), (f_min, f_max)) in enumerate(
            DEFAULT_SEGMENTS
        )
    )
    return list(Segment.objects.order_by("position", "pk"))
