"""``manage.py crosssell_evaluate``: offline leave-one-out evaluation of the ranking metrics.

Answers "which ``METRIC`` should this shop use?" with the protocol of the reference data's
README: an 80/20 split of baskets, each item of a test basket hidden in turn, the rest
scored by summed partner scores, hit rate at 10 and catalogue coverage against a
popularity baseline, averaged over seeds. It reads the shop's own orders through the
configured source, or a basket file (``--csv``, one basket per line, comma-separated).
Nothing is written.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_crosssell import affinity
from django_crosssell.conf import app_settings
from django_crosssell.reader import read_order_lines


def read_basket_file(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        baskets = [
            list(dict.fromkeys(item.strip() for item in row if item.strip()))
            for row in csv.reader(handle)
        ]
    return [basket for basket in baskets if basket]


class Command(BaseCommand):
    help = (
        "Compare ranking metrics by leave-one-out basket completion (hit rate at 10 and "
        "catalogue coverage against a popularity baseline). Writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--csv", type=Path, help="basket file instead of the shop's orders")
        parser.add_argument("--seeds", type=int, default=5, help="random splits (default 5)")
        parser.add_argument("--k", type=int, default=10, help="list length (default 10)")
        parser.add_argument(
            "--max-baskets",
            type=int,
            default=50_000,
            help="sample this many baskets at most (the evaluation is O(baskets x catalogue))",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["seeds"] < 1 or options["k"] < 1 or options["max_baskets"] < 10:
            raise CommandError("--seeds and --k must be at least 1, --max-baskets at least 10.")
        started = time.monotonic()
        baskets = self._baskets(options)
        if len([b for b in baskets if len(b) >= 2]) < 10:
            raise CommandError(
                "Too few orders with two or more products to evaluate anything "
                f"({len(baskets)} orders)."
            )
        if len(baskets) > options["max_baskets"]:
            rng = np.random.default_rng(0)
            keep = rng.choice(len(baskets), size=options["max_baskets"], replace=False)
            baskets = [baskets[i] for i in sorted(keep)]
        shipped = (
            f"{app_settings.METRIC}, min_co_count {app_settings.MIN_CO_COUNT}, "
            f"top {app_settings.TOP_K} (settings)"
        )
        configurations = [
            *affinity.EVALUATION_CONFIGURATIONS,
            (shipped, app_settings.METRIC, app_settings.MIN_CO_COUNT, app_settings.TOP_K),
        ]
        rows = affinity.evaluate_leave_one_out(
            baskets, configurations, seeds=range(options["seeds"]), k=options["k"]
        )
        k = options["k"]
        self.stdout.write(
            f"{len(baskets):,} baskets, {len({i for b in baskets for i in b}):,} products, "
            f"{options['seeds']} seeds, {rows[0].trials:,} hidden items in all"
        )
        width = max(len(row.name) for row in rows)
        self.stdout.write(f"{'ranking':<{width}}  hit rate@{k}  coverage")
        for row in rows:
            self.stdout.write(f"{row.name:<{width}}  {row.hit_rate:11.3f}  {row.coverage:8.3f}")
        self.stdout.write(f"({time.monotonic() - started:.1f}s)")

    def _baskets(self, options: dict[str, Any]) -> list[list[Any]]:
        if options["csv"] is not None:
            if not options["csv"].is_file():
                raise CommandError(f"Basket file not found: {options['csv']}")
            return read_basket_file(options["csv"])
        lines = read_order_lines(lookback_days=app_settings.LOOKBACK_DAYS)
        if not len(lines):
            raise CommandError("No orders to evaluate (check ORDER_LINE_MODEL and ORDER_FILTER).")
        frame = pd.DataFrame({"order": lines.orders, "product": lines.products})
        return [
            list(dict.fromkeys(products.tolist()))
            for _, products in frame.groupby("order", sort=False)["product"]
        ]
