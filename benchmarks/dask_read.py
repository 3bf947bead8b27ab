"""Benchmark: the sharded read on Dask (``DASK_READ = "sharded"``) against a local read.

The 1M-line synthetic shop of ``benchmarks/affinity.py`` (b) (200,000 orders, 20,000
products) in a PostgreSQL database of its own (``crosssell_dask_bench``, or
``DASK_BENCH_DATABASE_URL``; ``_quick`` appended with ``--quick``), and a two-worker
``LocalCluster`` (worker processes, one thread each) started here, as a shop would start
its cluster: the library itself only connects to ``DASK_SCHEDULER``.

Full recomputes alternate between the local read (``ENGINE = "local"``) and the sharded read
(``ENGINE = "dask"``, ``DASK_READ = "sharded"``), each in a fresh process so its peak
resident memory (``VmHWM``) is its own; three of each (one with ``--quick``). Reported: the
median time of each, their ratio, the recompute process's peak memory, the workers' peak
memory, and whether the rows are equal: the last runs of each kind are compared row by row,
floats exactly, and a difference fails the run (a bug, not noise).

``--quick`` (CI) uses 50,000 lines; it fails only on unequal rows. Writes the section
"Engine (h), continued: Dask sharded read" of ``benchmarks/RESULTS.md``.

    python benchmarks/dask_read.py [--quick] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.affinity import django_setup, ensure_database, load_shop, maxrss_mb  # noqa: E402
from benchmarks.results import machine, write_section  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/crosssell_dask_bench"
#: Its own section (``engine.py`` rewrites the engine section whole), right after it.
SECTION = "## Engine (h), continued: Dask sharded read"


def database_url(quick: bool) -> str:
    return os.environ.get("DASK_BENCH_DATABASE_URL", DEFAULT_URL) + ("_quick" if quick else "")


def child(mode: str, scheduler: str) -> dict:
    """In a fresh process: one full recompute with the local or the sharded read."""
    from django.conf import settings
    from django.test import override_settings

    from django_crosssell.recompute import run_recompute

    crosssell = {**settings.CROSSSELL, "SIMILAR_PRODUCTS": False}
    if mode == "sharded":
        crosssell.update(ENGINE="dask", DASK_SCHEDULER=scheduler, DASK_READ="sharded")
    base = maxrss_mb()
    marks: dict[str, float] = {}
    with override_settings(CROSSSELL=crosssell):
        start = time.perf_counter()

        def progress(stage, done, total):
            marks.setdefault(stage, time.perf_counter() - start)

        run = run_recompute(allow_shrink=True, progress=progress)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "marks": marks,
        "maxrss_mb": maxrss_mb(),
        "baseline_mb": base,
        "run": run.pk,
        "orders": run.orders_read,
        "lines": run.lines_read,
        "pairs": run.pairs_written,
        "shards": run.parameters.get("shards"),
    }


def run_child(mode: str, scheduler: str) -> dict:
    args = [sys.executable, __file__, "--child", mode, "--scheduler", scheduler]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"child {mode} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_peak_mb() -> float:
    return maxrss_mb()


def bench(quick: bool, lines: int | None = None, repeat: int | None = None) -> dict:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return {"skipped": "dask.distributed is not installed (the [dask] extra)"}
    url = database_url(quick)
    try:
        ensure_database(url)
    except Exception as exc:
        return {"skipped": f"PostgreSQL not reachable at {url}: {exc}"}
    sizes = (10_000, 50_000, 2_000) if quick else (200_000, 1_000_000, 20_000)
    if lines:
        sizes = (lines // 5, lines, 20_000)
        url = f"{url}_{lines}"
        ensure_database(url)
    django_setup(url)
    load_shop(*sizes)
    from django_crosssell.models import ProductAffinity

    # The workers are new processes: they find the project and its settings like this one.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    runs: dict[str, list[dict]] = {"local": [], "sharded": []}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for _ in range(repeat or (1 if quick else 3)):
            for mode in ("local", "sharded"):
                runs[mode].append(run_child(mode, cluster.scheduler_address))
        workers_mb = sorted(client.run(worker_peak_mb).values())

    def rows(pk: int) -> list:
        return list(
            ProductAffinity.objects.filter(run_id=pk)
            .order_by("source_id", "-score", "target_id")
            .values_list(
                "source_id", "target_id", "co_count", "support", "confidence", "lift", "score"
            )
        )

    local_rows = rows(runs["local"][-1]["run"])
    equal = bool(local_rows) and local_rows == rows(runs["sharded"][-1]["run"])
    return {"sizes": sizes, "runs": runs, "workers_mb": workers_mb, "equal": equal}


def report(result: dict) -> tuple[list[str], bool]:
    if "skipped" in result:
        return [f"Skipped: {result['skipped']}."], True
    lines_n, orders_n, products_n = result["sizes"][1], result["sizes"][0], result["sizes"][2]
    runs = result["runs"]
    local = statistics.median(r["seconds"] for r in runs["local"])
    sharded = statistics.median(r["seconds"] for r in runs["sharded"])
    local_mb = max(r["maxrss_mb"] for r in runs["local"])
    sharded_mb = max(r["maxrss_mb"] for r in runs["sharded"])
    last = runs["sharded"][-1]

    def base(mode: str) -> float:
        return max(r["baseline_mb"] for r in runs[mode])

    def times(mode: str) -> str:
        return ", ".join(f"{r['seconds']:.2f}" for r in runs[mode])

    out = [
        f"{lines_n:,} lines, {orders_n:,} orders, {products_n:,} products; defaults "
        f"(cosine, 1/size, cap 300, top 50, no cold start); {last['pairs']:,} pairs; "
        f"{len(runs['local'])} runs of each, alternating, each in a fresh process. The "
        "cluster: `LocalCluster(n_workers=2, threads_per_worker=1)`, worker processes on "
        f"this same 2-core machine, {last['shards']} shards (two per worker thread). The "
        "recompute process of the sharded read holds per-product vectors and the blocks in "
        "flight; the lines, basket matrices and pair counts stay on the workers.",
        "",
        "| full recompute | seconds (median; all) | recompute process peak (VmHWM) |",
        "|---|---|---|",
        f'| local read (`ENGINE = "local"`) | {local:.2f} ({times("local")}) | '
        f"{local_mb:.0f} MB ({base('local'):.0f} MB after start-up) |",
        f'| sharded read (`ENGINE = "dask"`, `DASK_READ = "sharded"`) | {sharded:.2f} '
        f"({times('sharded')}) | {sharded_mb:.0f} MB ({base('sharded'):.0f} MB after start-up) |",
        "",
        f"Sharded / local: {sharded / local:.2f}× the time. Each worker's peak: "
        + ", ".join(f"{mb:.0f} MB" for mb in result["workers_mb"])
        + f". Rows equal to the local run's (floats exactly): "
        f"{'yes' if result['equal'] else 'NO'}.",
    ]
    return out, bool(result["equal"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 lines (CI)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument(
        "--lines",
        type=int,
        help="another shop size (orders = lines / 5, 20,000 products); RESULTS.md is left alone",
    )
    parser.add_argument("--repeat", type=int, help="runs of each read (default 3, quick 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--scheduler", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import django

        django.setup()
        print(json.dumps(child(args.child, args.scheduler)))
        return 0
    started = time.perf_counter()
    if args.lines:
        args.no_write = True
    result = bench(args.quick, args.lines, args.repeat)
    lines, correct = report(result)
    print("\n".join(lines))
    print(f"\n(benchmark wall time {time.perf_counter() - started:.0f} s)")
    if not args.no_write and "skipped" not in result:
        info = (
            f"{machine()}{', --quick' if args.quick else ''}; load average "
            f"{os.getloadavg()[0]:.1f} at the end of the run (the machine may be shared, so "
            "compare the ratios measured in one run). Reproduce with "
            "`python benchmarks/dask_read.py`."
        )
        write_section(SECTION, "\n".join([info, "", *lines]))
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
