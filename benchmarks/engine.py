"""Benchmark: the engine rework (issue 12), its rows in the "Engine" section of RESULTS.md.

(d) Fit speed on real orders: the engine's compute (basket matrix + pairs, shipped
    defaults) against ``implicit``'s item-item fits (BM25, TF-IDF, cosine; one thread and
    all threads) on ``../shared/data/online_retail_2010-12_2011-06.csv.gz``, in the same
    process, interleaved, best of 5.
(e) The 1M-line synthetic shop of ``benchmarks/affinity.py`` (b), in a PostgreSQL database
    of its own (``crosssell_engine_bench``): a full recompute with ``INCREMENTAL`` (it reads
    order times and stores the counts), then 1% of the orders slid (new orders added, as
    many old ones out of the window) and recomputed incrementally, then a full recompute
    of the same window to compare: the rows must be equal (else the run fails). Also the
    plain full recompute without ``INCREMENTAL`` (the default) for reference.
(f) Bestseller fallback on that shop: the cold query aggregating the order lines against
    the one reading the run's stored sales (best of 5, one query each).
(g) Cold start: content neighbours for 20,000 product names (the online-retail
    descriptions, repeated with sizes) and for the 3,407 real ones.
(h) Dask: the 1M-line shop's blocks on a two-worker ``LocalCluster`` (processes) against
    local; the pairs must be bitwise equal (else the run fails).

``--quick`` (CI): (d) on the first 20,000 lines of the file, the shop at 50,000 lines,
(g) on 2,000 names. Missed times are reported, never failed; wrong numbers fail the run.

``--part d`` (repeatable: ``--part d --part g``) runs only those parts ((e) and (f) run
together) and leaves RESULTS.md alone: the section is written only from a full run.

    python benchmarks/engine.py [--quick] [--no-write] [--part {d,e,f,g,h}]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.affinity import (  # noqa: E402
    django_setup,
    ensure_database,
    load_shop,
    synthetic_lines,
)
from benchmarks.results import machine, write_section  # noqa: E402
from django_crosssell import affinity, datasets, similarity  # noqa: E402

RETAIL = ROOT / ".." / "shared" / "data" / "online_retail_2010-12_2011-06.csv.gz"
SECTION = "## Engine: weighting, incremental, Dask, cold start, bestsellers"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/crosssell_engine_bench"


def best(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


# --- (d) fit speed ---------------------------------------------------------------------


def bench_fit(quick: bool) -> dict:
    if not RETAIL.exists():
        return {"skipped": f"{RETAIL} is absent"}
    data = datasets.load(RETAIL)
    baskets = data.baskets[:1500] if quick else data.baskets
    orders, products = affinity.baskets_to_lines(baskets)
    codes = np.unique(products, return_inverse=True)[1]
    from scipy import sparse

    user_items = sparse.csr_matrix(
        (np.ones(len(codes), np.float32), (orders, codes)), shape=(len(baskets), codes.max() + 1)
    )

    def engine(threads=1):
        return affinity.compute_affinity(
            orders, products, order_weighting="inverse_size", max_basket_size=300, threads=threads
        )

    rows = {
        "engine (cosine, 1/size, cap 300, top 50; 1 thread)": engine,
        "engine (same, all threads)": lambda: engine(threads=0),
    }
    try:
        import implicit.nearest_neighbours as nearest
    except ImportError:
        nearest = None
    if nearest is not None:
        for label, cls in (
            ("BM25", nearest.BM25Recommender),
            ("TF-IDF", nearest.TFIDFRecommender),
            ("cosine", nearest.CosineRecommender),
        ):
            for threads in (1, 0):

                def fit(cls=cls, threads=threads):
                    model = cls(num_threads=threads)
                    model.fit(user_items, show_progress=False)
                    return model

                name = f"implicit {label} (K=20, {'1 thread' if threads else 'all threads'})"
                rows[name] = fit
    times = {name: [] for name in rows}
    rounds = 3 if quick else 5
    for _ in range(rounds):  # interleaved: load hits every row alike
        for name, func in rows.items():
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    first = engine()
    # Correct: the block split and the threads change nothing.
    split = affinity.AffinityResult.concat(
        list(
            affinity.iter_pair_blocks(
                affinity.weigh_orders(
                    affinity.build_basket_matrix(orders, products), "inverse_size", 300
                ),
                block_budget=50_000,
            )
        )
    )
    threaded = engine(threads=0)
    same = all(
        np.array_equal(getattr(first, name), getattr(other, name))
        for name in affinity.PAIR_FIELDS
        for other in (split, threaded)
    )
    return {
        "lines": len(orders),
        "orders": len(baskets),
        "rounds": rounds,
        "load": os.getloadavg(),
        "seconds": {name: min(values) for name, values in times.items()},
        "correct": same,
        "pairs": first.n_pairs,
    }


# --- (e)(f) the PostgreSQL shop -----------------------------------------------------------


def bench_shop(quick: bool) -> dict:
    url = os.environ.get("ENGINE_BENCH_DATABASE_URL", DEFAULT_URL) + ("_quick" if quick else "")
    try:
        ensure_database(url)
    except Exception as exc:
        return {"skipped": f"PostgreSQL not reachable at {url}: {exc}"}
    n_orders, n_lines, n_products = (
        (10_000, 50_000, 2_000) if quick else (200_000, 1_000_000, 20_000)
    )
    django_setup(url)
    from django.conf import settings
    from django.db import connection
    from django.test import override_settings
    from django.utils import timezone

    from django_crosssell import cache
    from django_crosssell.models import AffinityCounts, ProductAffinity
    from django_crosssell.recommend import queries
    from django_crosssell.recompute import run_recompute

    load_shop(n_orders, n_lines, n_products)
    with connection.cursor() as cursor:
        # Orders an interrupted run of this benchmark added are not part of the shop.
        cursor.execute("DELETE FROM shop_orderline WHERE order_id > %s", [n_orders])
        cursor.execute("DELETE FROM shop_order WHERE id > %s", [n_orders])
        cursor.execute("SELECT min(placed_at), max(placed_at) FROM shop_order")
        oldest, newest = cursor.fetchone()
    base = dict(settings.CROSSSELL)
    # The window holds every order at the start; one step moves it by 1% of the orders.
    span = newest - oldest
    step = span / 100
    lookback = (span + timedelta(hours=1)) / timedelta(days=1)
    counted = {**base, "INCREMENTAL": True, "LOOKBACK_DAYS": lookback, "SIMILAR_PRODUCTS": False}
    plain = {**base, "LOOKBACK_DAYS": lookback, "SIMILAR_PRODUCTS": False}
    out: dict = {"sizes": (n_lines, n_orders, n_products)}
    now = timezone.now()
    cache.invalidate()

    def timed_run(settings_: dict, at, **kwargs):
        with (
            override_settings(CROSSSELL=settings_),
            mock.patch("django.utils.timezone.now", return_value=at),
        ):
            start = time.perf_counter()
            run = run_recompute(allow_shrink=True, **kwargs)
            return time.perf_counter() - start, run

    def rows(run):
        return list(
            ProductAffinity.objects.filter(run=run)
            .order_by("source_id", "-score", "target_id")
            .values_list(
                "source_id", "target_id", "co_count", "support", "confidence", "lift", "score"
            )
        )

    def unchanged_sources(old_rows, new_rows) -> tuple[int, int]:
        """(sources whose partners, counts, confidence and score are all bit for bit the
        same after the slide, sources): rows a copy of the previous run could reuse."""

        def by_source(rows_):
            grouped: dict = {}
            for source, target, co, _support, confidence, _lift, score in rows_:
                grouped.setdefault(source, []).append((target, co, confidence, score))
            return grouped

        old_by, new_by = by_source(old_rows), by_source(new_rows)
        return sum(old_by.get(key) == value for key, value in new_by.items()), len(new_by)

    def add_orders() -> int:
        """1% new orders: copies of the newest 1% (same baskets), placed one step later."""
        with connection.cursor() as cursor:
            cursor.execute(
                """
                WITH ins AS (
                  INSERT INTO shop_order (status, placed_at, subtotal, discount, total)
                  SELECT 'paid', placed_at + %s, 0, 0, 0
                  FROM shop_order WHERE placed_at > %s AND id <= %s
                  RETURNING id
                )
                SELECT count(*) FROM ins
                """,
                [step, newest - step, n_orders],
            )
            added = cursor.fetchone()[0]
            cursor.execute(
                """
                INSERT INTO shop_orderline (order_id, product_id, product_name, quantity,
                                            unit_price)
                SELECT n.id, l.product_id, '', 1, 1000
                FROM shop_order o JOIN shop_orderline l ON l.order_id = o.id
                JOIN shop_order n ON n.placed_at = o.placed_at + %s AND n.id > %s
                WHERE o.placed_at > %s AND o.id <= %s
                """,
                [step, n_orders, newest - step, n_orders],
            )
        return added

    def remove_orders() -> None:
        """The added orders removed again: the shop as it was loaded."""
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM shop_orderline WHERE order_id > %s", [n_orders])
            cursor.execute("DELETE FROM shop_order WHERE id > %s", [n_orders])

    # Each round: the two full runs of the first window; 1% of the orders added; the
    # incremental run from the counted one; then both full runs of the slid window (the
    # references, in turn first and second). Best of the rounds for each, ratios from those.
    later = now + step
    names = ("full_plain_s", "full_counted_s", "incremental_s", "full_same_window_s")
    names += ("full_plain_same_window_s",)
    times: dict[str, list[float]] = {name: [] for name in names}
    stages: dict[str, dict] = {}
    equal = True
    remove_orders()
    for round_ in range(1 if quick else 3):
        references = [
            ("full_same_window_s", counted, later, {}),
            ("full_plain_same_window_s", plain, later, {}),
        ]
        if round_ % 2:  # each reference also runs second (after the last run's pruning)
            references.reverse()
        for name, settings_, at, kwargs in (
            ("full_plain_s", plain, now, {}),
            ("full_counted_s", counted, now, {}),
            (None, None, None, None),
            ("incremental_s", counted, later, {"incremental": True}),
            *references,
        ):
            if name is None:
                out["orders_added_sql"] = add_orders()
                continue
            seconds, run = timed_run(settings_, at, **kwargs)
            if not times[name] or seconds < min(times[name]):
                stages[name] = run.parameters.get("stage_seconds", {})
            times[name].append(seconds)
            if name == "full_counted_s":
                out["counts_mb"] = len(AffinityCounts.objects.get(run=run).data) / 2**20
                before = run
            elif name == "incremental_s":
                slid = run
                out["slid"] = {
                    k: run.parameters.get(k)
                    for k in ("incremental", "orders_added", "orders_removed")
                }
            elif name == "full_same_window_s":
                after = rows(slid)
                equal &= bool(slid.parameters.get("incremental")) and after == rows(run)
                out["pairs"] = run.pairs_written
                out["unchanged_sources"] = unchanged_sources(rows(before), after)
        remove_orders()
    out.update({name: min(values) for name, values in times.items()})
    out["rounds"] = len(times["incremental_s"])
    out["stages"] = stages
    out["equal"] = equal

    # (f) bestseller fallback, cold: aggregate the order lines vs read the run's sales.
    from django.db import reset_queries
    from django.test.utils import CaptureQueriesContext

    def fallback(source: str) -> tuple[float, int]:
        with override_settings(CROSSSELL={**plain, "BESTSELLERS_SOURCE": source}):
            seconds = best(lambda: list(queries.bestsellers((1,), None)), 5)
            with CaptureQueriesContext(connection) as captured:
                list(queries.bestsellers((1,), None))
            return seconds, len(captured)

    reset_queries()
    out["bestsellers"] = {source: fallback(source) for source in ("order_lines", "run")}
    return out


# --- (g) cold start ----------------------------------------------------------------------


def bench_cold_start(quick: bool) -> dict:
    if not RETAIL.exists():
        return {"skipped": f"{RETAIL} is absent"}
    names = sorted(set(datasets.load(RETAIL).names.values()))
    sizes = ["", " small", " large", " set of 3", " 500ml", " pack of 12"]
    many = [f"{name}{sizes[i % len(sizes)]}" for i in range(6) for name in names][
        : 2_000 if quick else 20_000
    ]
    out = {}
    for label, texts in (("real", names[: 2_000 if quick else None]), ("many", many)):
        start = time.perf_counter()
        found = similarity.neighbours(texts, np.arange(len(texts)))
        out[label] = (len(texts), time.perf_counter() - start, len(found))
    return out


# --- (h) Dask ------------------------------------------------------------------------------


def bench_dask(quick: bool) -> dict:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return {"skipped": "dask.distributed is not installed (the [dask] extra)"}
    from django_crosssell import distributed

    n_orders, n_lines, n_products = (
        (10_000, 50_000, 2_000) if quick else (200_000, 1_000_000, 20_000)
    )
    orders, products = synthetic_lines(n_orders, n_lines, n_products)
    baskets = affinity.weigh_orders(
        affinity.build_basket_matrix(orders, products), "inverse_size", 300
    )
    kwargs = {"min_co_count": 2, "top_k": 50, "metric": "cosine"}
    plan = affinity.plan_blocks(baskets, **kwargs, min_blocks=8)
    empty = affinity.empty_result(baskets, **kwargs)
    start = time.perf_counter()
    local = affinity.AffinityResult.concat(list(affinity.plan_results(plan, empty)))
    local_s = time.perf_counter() - start
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        remote = affinity.AffinityResult.concat(
            list(distributed.plan_results(plan, empty, scheduler=client))
        )
        dask_s = time.perf_counter() - start
    equal = all(
        np.array_equal(getattr(local, name), getattr(remote, name)) for name in affinity.PAIR_FIELDS
    )
    return {"local_s": local_s, "dask_s": dask_s, "equal": equal, "blocks": len(plan.blocks)}


# --- Report --------------------------------------------------------------------------------


def report(fit: dict, shop: dict, cold: dict, dask: dict) -> tuple[list[str], bool]:
    out: list[str] = []
    correct = True
    out += ["### (d) Fit speed on the online-retail file", ""]
    if "skipped" in fit:
        out.append(f"Skipped: {fit['skipped']}.")
    else:
        engine_name = next(iter(fit["seconds"]))
        engine_s = fit["seconds"][engine_name]
        out += [
            f"{fit['lines']:,} lines, {fit['orders']:,} orders; best of {fit['rounds']}, "
            f"interleaved (load average {fit['load'][0]:.2f} after them); "
            f"engine {fit['pairs']:,} pairs, block split and threads change nothing: "
            f"{'yes' if fit['correct'] else 'NO'}.",
            "",
            "| fit | seconds | engine / this |",
            "|---|---|---|",
        ]
        for name, seconds in fit["seconds"].items():
            out.append(f"| {name} | {seconds:.3f} | {engine_s / seconds:.2f}× |")
        correct &= fit["correct"]
    out += ["", "### (e) Incremental recompute on the PostgreSQL shop", ""]
    if "skipped" in shop:
        out.append(f"Skipped: {shop['skipped']}.")
    else:
        n_lines, n_orders, n_products = shop["sizes"]
        inc, full = shop["incremental_s"], shop["full_same_window_s"]
        plain = shop["full_plain_same_window_s"]
        slid = shop["slid"]

        def row(label: str, name: str) -> str:
            parts = shop["stages"].get(name, {})
            cells = [f"{parts.get(key, 0):.2f}" for key in ("read", "pairs", "counts")]
            rest = shop[name] - sum(parts.get(key, 0) for key in ("read", "pairs", "counts"))
            return f"| {label} | {shop[name]:.2f} | {' | '.join(cells)} | {rest:.2f} |"

        out += [
            f"{n_lines:,} lines, {n_orders:,} orders, {n_products:,} products; best of "
            f"{shop['rounds']} rounds (each: the two full runs, 1% of the orders added, the "
            "incremental run, the two full runs of the slid window in turns). Stages of "
            "the best run: read (and slide), pairs (compute and COPY of the rows, "
            "overlapped), counts (dump and store), rest (sales, swap, pruning old runs).",
            "",
            "| run | seconds | read | pairs | counts | rest |",
            "|---|---|---|---|---|---|",
            row("full, INCREMENTAL off (no counts kept)", "full_plain_s"),
            row(
                f"full with INCREMENTAL (stores {shop['counts_mb']:.1f} MB of counts)",
                "full_counted_s",
            ),
            row(
                f"incremental: {slid['orders_added']:,} orders added, "
                f"{slid['orders_removed']:,} removed (1% slide)",
                "incremental_s",
            ),
            row("full with INCREMENTAL of the slid window (the reference)", "full_same_window_s"),
            row("full, INCREMENTAL off, of the slid window", "full_plain_same_window_s"),
            "",
            f"Incremental / full with counts of the same window: {inc / full:.2f} (target "
            f"<= 0.25: {'met' if inc <= 0.25 * full else 'NOT met'}); incremental / full "
            f"without counts of the same window: {inc / plain:.2f} ("
            f"{'met' if inc <= 0.25 * plain else 'NOT met'}). Rows equal to the full run's "
            f"in every round: {'yes' if shop['equal'] else 'NO'} ({shop['pairs']:,} pairs). "
            f"Sources whose rows (partners, co_count, confidence, score) the slide left bit "
            f"for bit the same: {shop['unchanged_sources'][0]:,} of "
            f"{shop['unchanged_sources'][1]:,} (support and lift change with the order "
            "count anyway).",
            "",
            "### (f) Bestseller fallback (cold, one category)",
            "",
            "| BESTSELLERS_SOURCE | seconds (best of 5) | queries |",
            "|---|---|---|",
        ]
        for source, (seconds, count) in shop["bestsellers"].items():
            out.append(f"| {source} | {seconds * 1000:.1f} ms | {count} |")
        correct &= shop["equal"]
    out += ["", "### (g) Cold start: content neighbours", ""]
    if "skipped" in cold:
        out.append(f"Skipped: {cold['skipped']}.")
    else:
        for label, (n, seconds, pairs) in cold.items():
            what = "real descriptions" if label == "real" else "descriptions with size variants"
            out.append(f"- {n:,} {what}, all cold: {seconds:.2f} s, {pairs:,} neighbours.")
    out += ["", "### (h) Dask: blocks on a two-worker LocalCluster", ""]
    if "skipped" in dask:
        out.append(f"Skipped: {dask['skipped']}.")
    else:
        out.append(
            f"{dask['blocks']} blocks: local {dask['local_s']:.2f} s, Dask {dask['dask_s']:.2f} s "
            f"(two worker processes on this 2-core machine, plan sent once); bitwise equal: "
            f"{'yes' if dask['equal'] else 'NO'}."
        )
        correct &= dask["equal"]
    return out, correct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument(
        "--part",
        action="append",
        choices=("d", "e", "f", "g", "h"),
        help="run only this part (repeatable); implies --no-write",
    )
    args = parser.parse_args()
    parts = set(args.part or "defgh")
    started = time.perf_counter()
    skipped = {"skipped": "not run (--part)"}
    fit = bench_fit(args.quick) if "d" in parts else skipped
    cold = bench_cold_start(args.quick) if "g" in parts else skipped
    dask = bench_dask(args.quick) if "h" in parts else skipped
    shop = bench_shop(args.quick) if parts & {"e", "f"} else skipped
    lines, correct = report(fit, shop, cold, dask)
    print("\n".join(lines))
    print(f"\n(benchmark wall time {time.perf_counter() - started:.0f} s)")
    if not args.no_write and not args.part:
        info = (
            f"{machine()}; load average {os.getloadavg()[0]:.1f} at the end of the run "
            "(the machine may be shared, so compare the ratios measured in one run). "
            "Reproduce with `python benchmarks/engine.py`; "
            "the defaults table with `manage.py crosssell_evaluate --implicit --table "
            "../shared/data/groceries.csv ../shared/data/groceries_members.csv "
            "../shared/data/online_retail_2010-12_2011-06.csv.gz` (README, Choosing the "
            "defaults)."
        )
        write_section(SECTION, "\n".join([info, "", *lines]))
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
