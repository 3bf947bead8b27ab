"""``manage.py crosssell_recompute``: the same recompute the Celery task runs, in the shell."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_crosssell.conf import METRIC_CHOICES, WEIGHTING_CHOICES
from django_crosssell.errors import RecomputeLocked, RecomputeParameterError
from django_crosssell.recompute import run_recompute


class Command(BaseCommand):
    help = (
        "Recompute co-purchase affinity from the shop's orders and make it current. "
        "Options left out come from the CROSSSELL settings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-co-count", type=int, help="Orders a pair needs (>= 1).")
        parser.add_argument("--top-k", type=int, help="Partners kept per product (0: all).")
        parser.add_argument(
            "--lookback-days", type=float, help="Only orders this recent (0: every order)."
        )
        parser.add_argument(
            "--half-life-days", type=float, help="Weigh recent orders more (0: no decay)."
        )
        parser.add_argument("--metric", choices=METRIC_CHOICES, help="Ranking metric.")
        parser.add_argument(
            "--order-weighting", choices=WEIGHTING_CHOICES, help="Weight of each order."
        )
        parser.add_argument(
            "--max-basket-size", type=int, help="Orders with more products add no pairs (0: all)."
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Slide the current run's counts (INCREMENTAL) instead of reading every order; "
            "falls back to a full run when it cannot.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Read and compute, write nothing."
        )
        parser.add_argument(
            "--allow-shrink",
            action="store_true",
            help="Replace the current run even if this one reads far fewer orders "
            "(MIN_ORDERS_RATIO).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        started = time.monotonic()
        last: dict[str, Any] = {"stage": None, "at": 0.0}

        def progress(stage: str, done: int, total: int | None) -> None:
            # One line per stage change and at most one every two seconds within a stage,
            # so a ten-minute run shows it is alive without flooding a cron mail.
            now = time.monotonic()
            if verbosity < 1 or stage == "done":
                return
            if stage == last["stage"] and now - last["at"] < 2 and done != total:
                return
            last.update(stage=stage, at=now)
            if stage == "swap":
                self.stdout.write(f"  [{now - started:7.1f}s] made current")
                return
            labels = {
                "read": "order lines read",
                "pairs": "products with partners computed",
                "write": "pairs written",
            }
            of = f" / {total:,}" if total else ""
            self.stdout.write(f"  [{now - started:7.1f}s] {labels.get(stage, stage)}: {done:,}{of}")

        try:
            run = run_recompute(
                min_co_count=options["min_co_count"],
                top_k=options["top_k"],
                lookback_days=options["lookback_days"],
                half_life_days=options["half_life_days"],
                metric=options["metric"],
                order_weighting=options["order_weighting"],
                max_basket_size=options["max_basket_size"],
                incremental=options["incremental"],
                dry_run=options["dry_run"],
                allow_shrink=options["allow_shrink"],
                progress=progress,
            )
        except RecomputeParameterError as exc:
            raise CommandError(str(exc)) from exc
        except RecomputeLocked as exc:
            # Not an error for a scheduler: the running recompute produces the same data.
            self.stderr.write(self.style.WARNING(f"{exc} Nothing was done."))
            return
        except Exception as exc:
            raise CommandError(
                f"The recompute failed; the previous recommendations stay in use. {exc}"
            ) from exc
        elapsed = time.monotonic() - started
        params = run.parameters
        what = "Dry run (nothing written)" if options["dry_run"] else f"Affinity run #{run.pk}"
        self.stdout.write(
            self.style.SUCCESS(
                f"{what}: {run.orders_read:,} orders, {run.lines_read:,} lines, "
                f"{run.products:,} products, {run.pairs_written:,} pairs in {elapsed:.1f}s "
                f"(metric={params.get('metric')}, min_co_count={params.get('min_co_count')}, "
                f"top_k={params.get('top_k')}, lookback_days={params.get('lookback_days')}, "
                f"half_life_days={params.get('half_life_days')}, "
                f"order_weighting={params.get('order_weighting')})."
            )
        )
        if "incremental" in params:
            if params["incremental"]:
                self.stdout.write(
                    f"Incremental: {params['orders_added']:,} orders added, "
                    f"{params['orders_removed']:,} removed."
                )
            else:
                self.stdout.write(f"Full run: {params.get('full_because')}.")
