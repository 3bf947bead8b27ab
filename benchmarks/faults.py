"""Fault and load check: what the storefront does when the database locks a table, the cache
is swapped, stopped or hung, or a client sends what it should not (issue 10).

Seeds the example shop like ``benchmarks/api.py`` (a throwaway SQLite database, or a test
database on the server of ``DATABASE_URL``), starts its own ``redis-server`` on a free port
(never the shared one) and two ``manage.py runserver`` processes on 127.0.0.1: one with
throttling off for the load phases, one with the default throttles for the client phases.
Then, with ``--threads`` clients fetching product pages (and the recommendations endpoint):

1. steady state: warm pages;
2. swap: the cache version is bumped (what a new affinity run or an edit does) while the
   clients keep going: every widget goes stale at once;
3. locked table (PostgreSQL): ``ACCESS EXCLUSIVE`` on the affinity table from another
   connection, cache invalidated, then every product page once: each must answer 200 with
   its page intact, and is timed;
4. cache hung (``SIGSTOP`` on our redis-server) and cache stopped (killed);
5. clients: 130 anonymous API requests rotating ``X-Forwarded-For`` against the 120/min
   limit; a 2.4 MB list body (refused unread, timed);
6. with ``CELERY_BROKER_URL``: a Celery worker (its own queue) whose pool process is killed
   (``SIGKILL``) in the middle of a recompute; the run must end (redelivered, or failed
   without rows) instead of staying ``running``.

A broken promise makes the script exit 1: a 5xx or connection failure on a page or the API,
a lost page (a product page without its product name), ``X-Forwarded-For`` getting past
the limit, a large body not refused with a JSON 413, a killed worker's run left running.
Timings are reported, never enforced (the machine is shared). ``--quick`` (for CI) seeds
fewer orders and sends fewer requests.

    python benchmarks/faults.py [--quick] [--threads N] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis() -> tuple[subprocess.Popen | None, str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    process.kill()
    return None, None


# Our own Redis before Django reads REDIS_URL (the server processes inherit it).
REDIS, REDIS_URL = _start_redis()
if REDIS_URL:
    os.environ["REDIS_URL"] = REDIS_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.api_settings")

import requests  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks import api  # noqa: E402  (seeds, server helpers; sets up Django)
from benchmarks.results import machine, write_section  # noqa: E402

SECTION = "## Faults and load"
#: Products whose pages and recommendations the load phases request.
HOT_PRODUCTS = 32
BROKEN: list[str] = []


def broken(promise: str) -> None:
    print(f"BROKEN: {promise}", file=sys.stderr)
    BROKEN.append(promise)


def start_server(port: int, database_url: str, settings: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    env["DJANGO_SETTINGS_MODULE"] = settings
    env.pop("CROSSSELL_TEST_DB_NAME", None)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def fetch(url: str, check: str | None) -> tuple[float, str]:
    """(ms, outcome): "ok", "5xx", "lost" (page without ``check``), "conn", or the status."""
    started = time.perf_counter()
    try:
        response = requests.get(url, timeout=30)
        if response.status_code >= 500:
            outcome = "5xx"
        elif response.status_code != 200:
            outcome = str(response.status_code)
        elif check is not None and check not in response.text:
            outcome = "lost"
        else:
            outcome = "ok"
    except requests.RequestException:
        outcome = "conn"
    return (time.perf_counter() - started) * 1000, outcome


def load(targets: list[tuple[str, str | None]], total: int, threads: int) -> dict:
    jobs = [targets[i % len(targets)] for i in range(total)]
    chunks = [jobs[i::threads] for i in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = [
            r
            for chunk in pool.map(lambda c: [fetch(url, check) for url, check in c], chunks)
            for r in chunk
        ]
    return summary(results, time.perf_counter() - started)


def summary(results: list[tuple[float, str]], elapsed: float) -> dict:
    times = [ms for ms, _ in results]
    cuts = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    outcomes: dict[str, int] = {}
    for _, outcome in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {
        "requests": len(results),
        "rps": len(results) / elapsed,
        "median": statistics.median(times),
        "p99": cuts[98],
        "max": max(times),
        "outcomes": outcomes,
        "failures": sum(n for o, n in outcomes.items() if o in ("5xx", "conn", "lost")),
    }


def bump_cache_version() -> None:
    from django_crosssell import cache

    cache.invalidate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer orders and requests (CI)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    orders = 2000 if args.quick else 20000
    total = 300 if args.quick else 2000

    test_db = None
    if connection.vendor != "sqlite":
        test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    servers: list[subprocess.Popen] = []
    rows: list[tuple[str, dict]] = []
    notes: list[str] = []
    try:
        api.seed(orders)
        from example_shop.shop.models import Product

        products = list(Product.objects.filter(is_active=True).order_by("pk"))
        database_url = api.server_database_url()
        connection.close()
        open_port, throttled_port = _free_port(), _free_port()
        servers.append(start_server(open_port, database_url, "benchmarks.api_settings"))
        servers.append(start_server(throttled_port, database_url, "example_shop.settings"))
        base, throttled = f"http://127.0.0.1:{open_port}", f"http://127.0.0.1:{throttled_port}"
        api.wait_until_up(base, servers[0])
        api.wait_until_up(throttled, servers[1])
        pages = [(f"{base}/products/{p.slug}/", p.name) for p in products]
        endpoints = [(base + api.ENDPOINT.format(p.pk), None) for p in products]
        # The load goes to a hot set, as a shop's traffic does (the wrk runs too).
        hot = HOT_PRODUCTS
        targets = [t for pair in zip(pages[:hot], endpoints[:hot], strict=True) for t in pair]

        load(targets, len(targets), args.threads)  # warm every page and endpoint
        steady = load(targets, total, args.threads)
        rows.append(("steady state, warm", steady))

        if REDIS is not None:
            timer = threading.Timer(0.2, bump_cache_version)
            timer.start()
            rows.append(("swap: every widget stale at once", load(targets, total, args.threads)))
            timer.cancel()

        if connection.vendor == "postgresql":
            rows.append(("affinity table locked, cold pages", locked_table(pages)))
        else:
            notes.append("The locked-table phase needs PostgreSQL (`DATABASE_URL`); skipped.")

        notes.extend(client_phases(throttled, products))  # needs the cache up
        if os.environ.get("CELERY_BROKER_URL"):
            notes.extend(killed_worker(database_url))
        else:
            notes.append("No `CELERY_BROKER_URL`: the killed-worker phase was skipped.")

        if REDIS is not None:
            REDIS.send_signal(signal.SIGSTOP)
            rows.append(("Redis hung (SIGSTOP)", load(targets, total, args.threads)))
            REDIS.send_signal(signal.SIGCONT)
            REDIS.kill()
            REDIS.wait(10)
            rows.append(("Redis stopped", load(targets, total, args.threads)))
        else:
            notes.append("No redis-server on this machine: the cache phases were skipped.")
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        if REDIS is not None and REDIS.poll() is None:
            REDIS.send_signal(signal.SIGCONT)
            REDIS.kill()
        if test_db is not None:
            connection.creation.destroy_test_db(test_db, verbosity=0)

    for label, row in rows:
        if row["failures"]:
            broken(f"{label}: {row['outcomes']}")
    table = [
        "| phase | requests | 5xx / lost / conn | requests/s | median ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        o = r["outcomes"]
        table.append(
            f"| {label} | {r['requests']} | {o.get('5xx', 0)} / {o.get('lost', 0)} / "
            f"{o.get('conn', 0)} | {r['rps']:.0f} | {r['median']:.1f} | {r['p99']:.1f} "
            f"| {r['max']:.1f} |"
        )
    table.append("")
    by = dict(rows)
    if "swap: every widget stale at once" in by:
        swap = by["swap: every widget stale at once"]
        table.append(
            f"Swap: p99 {swap['p99'] / steady['p99']:.2f}× steady state (target: within 2×)."
        )
    for label in ("Redis hung (SIGSTOP)", "Redis stopped"):
        if label in by:
            table.append(
                f"{label}: {by[label]['rps'] / steady['rps']:.2f}× the steady throughput "
                "(target: at least 0.5×)."
            )
    table.extend(notes)
    table.append(
        "Promises (no 5xx, no lost page, throttle and body limit hold): "
        + ("kept." if not BROKEN else "BROKEN: " + "; ".join(BROKEN))
    )
    print("\n".join(table))
    if not args.no_write:
        info = (
            f"{machine()}, {connection.vendor}, our own redis-server, example shop seeded with "
            f"{orders} orders and a real recompute, {len(products)} active products; "
            f"`manage.py runserver` (threaded) on 127.0.0.1, {args.threads} client threads "
            f"(`requests`, a new connection each) alternating the pages and the recommendations "
            f"endpoint of {HOT_PRODUCTS} products (all {len(products)} in the locked phase). "
            "`python benchmarks/faults.py`. The 2 cores are shared with the clients and "
            "other engineers' runs: compare phases, not absolute figures."
        )
        write_section(SECTION, "\n".join([info, "", *table]))
    return 1 if BROKEN else 0


def locked_table(pages: list[tuple[str, str | None]]) -> dict:
    """Every product page once, cold, with the affinity table locked by another session."""
    import psycopg

    from django_crosssell.models import ProductAffinity

    bump_cache_version()
    settings = connection.settings_dict
    other = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
    )
    try:
        other.execute(f'LOCK TABLE "{ProductAffinity._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        started = time.perf_counter()
        results = [fetch(url, check) for url, check in pages]
        return summary(results, time.perf_counter() - started)
    finally:
        other.rollback()
        other.close()
        connection.close()


def killed_worker(database_url: str) -> list[str]:
    """A Celery worker's pool process killed (SIGKILL) in the middle of a recompute.

    Needs ``CELERY_BROKER_URL``; the worker consumes a queue of its own, so other workers on
    the same broker never see these messages.
    """
    from django_crosssell import tasks
    from django_crosssell.models import AffinityRun, ProductAffinity

    queue = f"crosssell-faults-{os.getpid()}"
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    env["DJANGO_SETTINGS_MODULE"] = "example_shop.settings"
    env.pop("CROSSSELL_TEST_DB_NAME", None)
    command = [sys.executable, "-m", "celery", "-A", "example_shop", "worker", "-Q", queue]
    command += ["-c", "1", "-P", "prefork", "--without-gossip", "--without-mingle"]
    command += ["-l", "ERROR", "-n", f"{queue}@%h"]
    worker = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lines: list[str] = []
    try:
        run = AffinityRun.objects.create(status=AffinityRun.Status.QUEUED)
        tasks.recompute_affinity.apply_async(kwargs={"run_id": run.pk}, queue=queue)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status != AffinityRun.Status.QUEUED:
                break
            time.sleep(0.01)
        children = subprocess.run(
            ["ps", "--ppid", str(worker.pid), "-o", "pid="], capture_output=True, text=True
        ).stdout.split()
        if run.status != AffinityRun.Status.RUNNING or not children:
            return [f"Killed worker: not measured (the run was {run.status} before the kill)."]
        os.kill(int(children[0]), signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() < killed + 300:
            run.refresh_from_db()
            if run.status in (AffinityRun.Status.SUCCEEDED, AffinityRun.Status.FAILED):
                break
            time.sleep(0.2)
        waited = time.monotonic() - killed
        orphans = (
            ProductAffinity.objects.filter(run_id=run.pk).count() if run.status == "failed" else 0
        )
        lines.append(
            f"Worker process killed (SIGKILL) mid-recompute: the run was redelivered and "
            f"ended {run.status} {waited:.1f} s later"
            + (f" ({orphans} orphan rows)" if orphans else "")
            + "."
        )
        if run.status not in (AffinityRun.Status.SUCCEEDED, AffinityRun.Status.FAILED):
            broken(f"a killed worker's run is still {run.status} after {waited:.0f} s")
        elif orphans:
            broken(f"a failed run kept {orphans} rows")
    finally:
        worker.terminate()
        worker.wait(30)
        with contextlib.suppress(Exception), tasks.recompute_affinity.app.connection() as conn:
            conn.default_channel.queue_delete(queue)
    return lines


def client_phases(base: str, products: list) -> list[str]:
    lines = []
    url = base + api.ENDPOINT.format(products[0].pk)
    passed = 0
    for i in range(130):
        forged = f"10.{i // 65000}.{(i // 250) % 256}.{i % 250}"
        response = requests.get(url, headers={"X-Forwarded-For": forged}, timeout=30)
        if response.status_code >= 500:
            broken(f"throttled API answered {response.status_code}")
        passed += response.status_code == 200
    lines.append(
        f"Rotating X-Forwarded-For: {passed} of 130 anonymous requests passed the 120/min limit."
    )
    if passed > 120:
        broken(f"X-Forwarded-For rotation passed {passed} > 120 requests")
    body = json.dumps({"product_ids": [products[0].pk] * 1_200_000}, separators=(",", ":"))
    times = []
    for _ in range(5):
        started = time.perf_counter()
        response = requests.post(
            base + "/api/crosssell/cart/recommendations/",
            data=body,
            headers={"Content-Type": "application/json", "X-Forwarded-For": "192.0.2.1"},
            timeout=30,
        )
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 413 or "detail" not in response.json():
            broken(f"a {len(body)}-byte body answered {response.status_code}")
    lines.append(
        f"A {len(body) / 1e6:.1f} MB list body: refused with 413 in {statistics.median(times):.1f}"
        f" ms (median of 5, sent over loopback; target < 50 ms)."
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
