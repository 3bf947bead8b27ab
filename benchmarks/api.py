"""Load check: the recommendations endpoint of the REST API over real HTTP.

Target (issue 6): a bounded number of requests against a local server with a warm cache,
reporting requests per second and the error count; the target is zero errors (any status
other than 200, or a connection failure, counts as an error).

Seeds the example shop (``seed_demo`` and a real recompute) into a throwaway database
(SQLite in a temporary directory by default; with ``DATABASE_URL`` set, a test database on
that server named by ``CROSSSELL_TEST_DB_NAME``), starts ``manage.py runserver`` on a free
port of 127.0.0.1 with ``benchmarks/api_settings.py`` (DEBUG and throttling off), then:

1. cold: one request per product with an empty cache (what a first visitor pays);
2. warm, one client: the same products again, sequentially, answered from the cache;
3. warm, several clients: a fixed number of requests from a thread pool, round robin over
   the products.

Every request opens its own connection: with keep-alive, the dev server's responses wait
about 40 ms for the client's delayed ACK (Nagle's algorithm), which would measure TCP
rather than the endpoint.

The cache is the server's local memory unless ``REDIS_URL`` is set. ``--quick`` (for CI)
seeds fewer orders and sends fewer requests.

    python benchmarks/api.py [--quick] [--requests N] [--threads N] [--no-write]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import machine, write_section  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.api_settings")

import django  # noqa: E402

_scratch = tempfile.mkdtemp(prefix="crosssell-bench-api-")
if not os.environ.get("DATABASE_URL"):
    # Both this process (seeding) and the server read the same file.
    os.environ["DATABASE_URL"] = f"sqlite:///{_scratch}/bench.sqlite3"

django.setup()

import requests  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

SECTION = "## REST API"
ENDPOINT = "/api/crosssell/products/{}/recommendations/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(orders: int) -> list[int]:
    from django_crosssell.recompute import run_recompute
    from example_shop.shop.models import Product

    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", orders=orders, stdout=io.StringIO())
    run_recompute()
    return list(Product.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))


def server_database_url() -> str:
    """The URL of the database seeded here, for the server process."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{settings_dict['HOST']}{port}/{settings_dict['NAME']}"


def start_server(port: int, database_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    env["DJANGO_SETTINGS_MODULE"] = "benchmarks.api_settings"
    env.pop("CROSSSELL_TEST_DB_NAME", None)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until_up(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            requests.get(base + "/api/schema/", timeout=5)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError("the server did not answer within a minute")


def one_request(url: str) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        response = requests.get(url, timeout=30)
        ok = response.status_code == 200 and isinstance(response.json(), list)
    except (requests.RequestException, ValueError):
        ok = False
    return (time.perf_counter() - started) * 1000, ok


def sequential(base: str, products: list[int]) -> dict:
    started = time.perf_counter()
    results = [one_request(base + ENDPOINT.format(pk)) for pk in products]
    return summarize(results, time.perf_counter() - started, threads=1)


def concurrent(base: str, products: list[int], total: int, threads: int) -> dict:
    urls = [base + ENDPOINT.format(products[i % len(products)]) for i in range(total)]
    chunks = [urls[i::threads] for i in range(threads)]

    def worker(chunk: list[str]) -> list[tuple[float, bool]]:
        return [one_request(url) for url in chunk]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = [r for chunk in pool.map(worker, chunks) for r in chunk]
    return summarize(results, time.perf_counter() - started, threads=threads)


def summarize(results: list[tuple[float, bool]], elapsed: float, threads: int) -> dict:
    times = [ms for ms, _ in results]
    deciles = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    return {
        "requests": len(results),
        "threads": threads,
        "errors": sum(1 for _, ok in results if not ok),
        "rps": len(results) / elapsed,
        "median": statistics.median(times),
        "p90": deciles[89],
        "p99": deciles[98],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer orders and requests (CI)")
    parser.add_argument("--requests", type=int, help="requests in the concurrent phase")
    parser.add_argument("--threads", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    orders = 2000 if args.quick else 20000
    total = args.requests or (600 if args.quick else 5000)

    test_db = None
    if connection.vendor != "sqlite":
        test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    server = None
    try:
        products = seed(orders)
        database_url = server_database_url()
        connection.close()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(port, database_url)
        wait_until_up(base, server)
        cold = sequential(base, products)
        warm = sequential(base, products)
        loaded = concurrent(base, products, total, args.threads)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if test_db is not None:
            connection.creation.destroy_test_db(test_db, verbosity=0)

    cache = "Redis" if os.environ.get("REDIS_URL") else "local memory"
    rows = [
        ("cold cache, 1 client (one request per product)", cold),
        ("warm cache, 1 client", warm),
        (f"warm cache, {args.threads} clients", loaded),
    ]
    table = [
        "| phase | requests | errors | requests/s | median ms | p90 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        table.append(
            f"| {label} | {r['requests']} | {r['errors']} | {r['rps']:.0f} "
            f"| {r['median']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} |"
        )
    errors = sum(r["errors"] for _, r in rows)
    table.append("")
    table.append(
        f"Warm vs cold (1 client): {cold['median'] / warm['median']:.1f}× faster per request "
        f"(median), {warm['rps'] / cold['rps']:.1f}× the throughput. "
        f"{args.threads} clients vs 1 (warm): {loaded['rps'] / warm['rps']:.2f}× the throughput."
    )
    table.append(f"Target (zero errors): {'met' if errors == 0 else 'NOT met'}; {errors} errors.")
    print("\n".join(table))

    if not args.no_write:
        info = (
            f"{machine()}, {connection.vendor}, "
            f"{cache} cache, example shop seeded with {orders} orders (`seed_demo`) and a real "
            f"recompute, {len(products)} active products; `manage.py runserver` (threaded, "
            f"DEBUG and throttling off) on 127.0.0.1, clients are `requests` calls (a new "
            f"connection each) in threads of the same machine"
            f"{', --quick' if args.quick else ''}. Server and clients share the 2 cores "
            "with each other and with other engineers' test runs, so absolute figures are "
            "noisy and low; the ratios compare phases of one run."
        )
        write_section(SECTION, "\n".join([info, "", *table]))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
