"""``manage.py crosssell_send_due``: the follow-up due scan the Celery task runs, in the shell.

``--now 2026-04-01`` (or ``2026-04-01T09:30``, in the shop's time zone) pretends it is that
moment, to see what a flow would send on a date; mails really go out through
``EMAIL_BACKEND`` (the console or file backend in a demo).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_crosssell.conf import app_settings
from django_crosssell.followup.replenishment import learn_intervals
from django_crosssell.followup.sending import run_due_scan, shop_zone
from django_crosssell.followup.views import mask


def parse_now(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(
            f"--now must be a date or date and time (ISO 8601), not {value!r}."
        ) from exc
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=shop_zone())
    return parsed


class Command(BaseCommand):
    help = (
        "Send the follow-up and replenishment mails that are due, after checking consent, "
        "suppressions, cancellations, repurchases, caps and quiet hours again; print what was "
        "sent and what was skipped and why."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now", type=parse_now, help="Pretend it is this date or time (shop's time zone)."
        )
        parser.add_argument("--limit", type=int, help="Messages to handle at most.")
        parser.add_argument(
            "--learn",
            action="store_true",
            help="Learn the replenishment intervals from the orders first.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not app_settings.FOLLOWUP_ENABLED:
            self.stdout.write(
                "Follow-up mail is switched off (CROSSSELL['FOLLOWUP_ENABLED']). Nothing was done."
            )
            return
        now = options["now"] or timezone.now()
        if options["learn"]:
            learned = learn_intervals(now=now)
            self.stdout.write(
                f"Learned intervals of {len(learned)} products with repeat purchases."
            )
        outcomes = run_due_scan(now=now, limit=options["limit"])
        zone = shop_zone()
        for outcome in outcomes:
            message = outcome.message
            due = message.due_at.astimezone(zone)
            line = (
                f"{outcome.status:<8} #{message.pk} {message.flow.slug} -> "
                f"{mask(message.email) if message.email else '-'} "
                f"(order {message.anchor_order}, due {due:%Y-%m-%d %H:%M})"
            )
            if outcome.reason:
                line += f" {outcome.reason}"
            if outcome.detail:
                line += f": {outcome.detail}"
            self.stdout.write(line)
        counts = Counter(outcome.status for outcome in outcomes)
        self.stdout.write(
            f"{counts['sent']} sent, {counts['skipped']} skipped, {counts['failed']} failed, "
            f"{counts['deferred']} deferred (at {now.astimezone(zone):%Y-%m-%d %H:%M %Z})."
        )
