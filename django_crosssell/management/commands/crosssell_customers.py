"""``manage.py crosssell_customers``: compute the customer metrics snapshot now.

The same work as the nightly task ``django_crosssell.customers.tasks.snapshot_customers``,
in this process, with the counts per segment printed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ...customers.checks import SCORERS


class Command(BaseCommand):
    help = "Compute every customer's RFM metrics, scores and segment (the snapshot)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scorer", choices=SCORERS, help="override CUSTOMERS_SCORER")
        parser.add_argument(
            "--as-of", help="the moment recency is measured from (ISO 8601; default: now)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from ...customers.snapshot import run_snapshot  # numpy: not at import time

        as_of: datetime | None = None
        if options["as_of"]:
            as_of = parse_datetime(options["as_of"])
            if as_of is None:
                raise CommandError(f"--as-of {options['as_of']!r} is not an ISO 8601 date-time.")
            if timezone.is_naive(as_of):
                as_of = timezone.make_aware(as_of)
        try:
            snapshot = run_snapshot(as_of=as_of, scorer=options["scorer"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Scored {snapshot.customers} customers with {snapshot.scorer!r} "
                f"in {snapshot.duration:.1f} s."
            )
        )
        for slug, count in sorted(snapshot.segment_counts.items(), key=lambda item: -item[1]):
            self.stdout.write(f"  {slug or '(no segment)'}: {count}")
