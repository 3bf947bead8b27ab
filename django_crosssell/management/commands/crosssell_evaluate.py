"""``manage.py crosssell_evaluate``: offline leave-one-out evaluation of the engine's settings.

Answers "which ``METRIC`` / ``ORDER_WEIGHTING`` should this shop use?" with the protocol of
the reference data's README: each item of a test basket hidden in turn, the rest scored by
summed partner scores, hit rate at 10 and catalogue coverage against a popularity baseline.
It reads the shop's own orders through the configured source (a random 80/20 split over
seeds), a basket file (``--csv``, one basket per line, comma-separated; random split), or an
order-line file (``--lines``, CSV or CSV.gz with times; trained on the earlier 80% of the
orders, tested on the later 20%). ``--table`` runs the candidate defaults over several
files and prints the README's table. ``--implicit`` adds ``implicit``'s item-item models
(``pip install django-crosssell[bench]``). Nothing is written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_crosssell import datasets, evaluation
from django_crosssell.conf import app_settings
from django_crosssell.reader import read_order_lines


def read_basket_file(path: Path) -> list[list[str]]:
    return datasets.read_basket_file(path).baskets


class Command(BaseCommand):
    help = (
        "Compare ranking settings by leave-one-out basket completion (hit rate at 10 and "
        "catalogue coverage against a popularity baseline). Writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--csv", type=Path, help="basket file instead of the shop's orders")
        parser.add_argument(
            "--lines", type=Path, help="order-line file (CSV or CSV.gz with times): time split"
        )
        parser.add_argument(
            "--table",
            type=Path,
            nargs="+",
            help="basket or order-line files: the candidate defaults over all of them",
        )
        parser.add_argument(
            "--implicit", action="store_true", help="add implicit's item-item models"
        )
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
        extra: tuple[evaluation.Configuration, ...] = ()
        if options["implicit"]:
            extra = evaluation.implicit_models()
            if not extra:
                raise CommandError(
                    "--implicit needs the implicit package: pip install 'django-crosssell[bench]'."
                )
        if options["table"]:
            self._table(options["table"], extra, options)
            return
        started = time.monotonic()
        data = self._baskets(options)
        baskets = data.baskets
        if len([b for b in baskets if len(b) >= 2]) < 10:
            raise CommandError(
                "Too few orders with two or more products to evaluate anything "
                f"({len(baskets)} orders)."
            )
        times = data.times
        if len(baskets) > options["max_baskets"]:
            rng = np.random.default_rng(0)
            keep = sorted(rng.choice(len(baskets), size=options["max_baskets"], replace=False))
            baskets = [baskets[i] for i in keep]
            times = times[keep] if times is not None else None
        configurations = [*evaluation.EVALUATION_CONFIGURATIONS, shipped(), *extra]
        rows = evaluation.evaluate(
            baskets, times, configurations, seeds=range(options["seeds"]), k=options["k"]
        )
        k = options["k"]
        split = (
            "time split (last 20% of orders)"
            if times is not None
            else (f"{options['seeds']} seeds")
        )
        self.stdout.write(
            f"{len(baskets):,} baskets, {len({i for b in baskets for i in b}):,} products, "
            f"{split}, {rows[0].trials:,} hidden items in all"
        )
        width = max(len(row.name) for row in rows)
        self.stdout.write(f"{'ranking':<{width}}  hit rate@{k}  coverage")
        for row in rows:
            self.stdout.write(f"{row.name:<{width}}  {row.hit_rate:11.3f}  {row.coverage:8.3f}")
        self.stdout.write(f"({time.monotonic() - started:.1f}s)")

    def _baskets(self, options: dict[str, Any]) -> datasets.Baskets:
        for option in ("csv", "lines"):
            path = options[option]
            if path is not None:
                if not path.is_file():
                    raise CommandError(f"File not found: {path}")
                try:
                    if option == "csv":
                        return datasets.read_basket_file(path)
                    return datasets.baskets_from_lines(datasets.read_order_lines(path))
                except (ValueError, KeyError) as exc:
                    raise CommandError(str(exc)) from exc
        lines = read_order_lines(lookback_days=app_settings.LOOKBACK_DAYS)
        if not len(lines):
            raise CommandError("No orders to evaluate (check ORDER_LINE_MODEL and ORDER_FILTER).")
        frame = pd.DataFrame({"order": lines.orders, "product": lines.products})
        return datasets.Baskets(
            [
                list(dict.fromkeys(products.tolist()))
                for _, products in frame.groupby("order", sort=False)["product"]
            ],
            None,
        )

    def _table(
        self,
        paths: list[Path],
        extra: tuple[evaluation.Configuration, ...],
        options: dict[str, Any],
    ) -> None:
        configurations = [*evaluation.DEFAULTS_CANDIDATES, shipped(), *extra]
        results: dict[str, dict[str, evaluation.EvaluationRow]] = {}
        notes = []
        for path in paths:
            if not path.is_file():
                raise CommandError(f"File not found: {path}")
            data = datasets.load(path)
            began = time.monotonic()
            rows = evaluation.evaluate(
                data.baskets,
                data.times,
                configurations,
                seeds=range(options["seeds"]),
                k=options["k"],
            )
            results[path.name] = {row.name: row for row in rows}
            split = "time split" if data.times is not None else f"{options['seeds']} seeds"
            se = max(row.standard_error for row in rows)
            notes.append(
                f"{path.name}: {len(data):,} orders, {split}, {rows[0].trials:,} hidden items, "
                f"standard error <= {se:.3f} ({time.monotonic() - began:.0f}s)"
            )
        names = list(results)
        self.stdout.write(f"| hit rate@{options['k']} (coverage) | " + " | ".join(names) + " |")
        self.stdout.write("|---|" + "---|" * len(names))
        best = {name: max(row.hit_rate for row in results[name].values()) for name in names}
        for config in configurations:
            cells = []
            for name in names:
                row = results[name].get(config.name)
                if row is None:
                    cells.append("n/a")
                    continue
                mark = "**" if row.hit_rate >= best[name] - 1e-12 else ""
                cells.append(f"{mark}{row.hit_rate:.3f}{mark} ({row.coverage:.2f})")
            self.stdout.write(f"| {config.name} | " + " | ".join(cells) + " |")
        self.stdout.write("")
        for note in notes:
            self.stdout.write(note)


def shipped() -> evaluation.Configuration:
    """The configured settings as one more row (what this shop would get)."""
    return evaluation.Configuration(
        f"{app_settings.METRIC}, {app_settings.ORDER_WEIGHTING}, min_co_count "
        f"{app_settings.MIN_CO_COUNT}, top {app_settings.TOP_K}, cap "
        f"{app_settings.MAX_BASKET_SIZE} (settings)",
        app_settings.METRIC,
        app_settings.MIN_CO_COUNT,
        app_settings.TOP_K or None,
        app_settings.ORDER_WEIGHTING,
        None,
        app_settings.MAX_BASKET_SIZE,
    )
