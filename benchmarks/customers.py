"""The customer metrics snapshot at scale: 100,000 customers under a minute (issue 14).

Seeds the example shop's tables in a throwaway test database (SQLite unless ``DATABASE_URL``
is set) with generated customers, orders and order lines (bulk ``executemany``, not
timed), then times ``run_snapshot()`` end to end: the streamed read through the adapter's
``customer_order_lines()``, the pandas/numpy folding and scoring, and the bulk upsert of one
``CustomerMetrics`` row per customer.

Each customer's history is drawn with numpy from a fixed seed, so the expected frequency,
revenue and recency of every customer are known; the script checks them all, checks that
every customer got a segment, and runs the snapshot a second time, which must record no
segment change. It exits non-zero only on a wrong result, never on a missed time.

    python benchmarks/customers.py [--quick] [--customers N] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_shop.settings")
os.environ.setdefault("DJANGO_DEBUG", "0")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from benchmarks.results import machine, write_section  # noqa: E402

SECTION = "## Customer snapshot"
TARGET_SECONDS = 60.0
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
PRODUCTS = 500
BATCH = 20_000


def generate(customers: int, seed: int = 14) -> dict[str, np.ndarray]:
    """Orders (customer index, days before AS_OF, lines) with a known answer per customer."""
    rng = np.random.default_rng(seed)
    orders_per_customer = np.minimum(rng.geometric(0.3, customers), 40)
    customer = np.repeat(np.arange(customers), orders_per_customer)
    days = rng.integers(0, 730, len(customer))
    lines = rng.integers(1, 4, len(customer))
    return {
        "orders_per_customer": orders_per_customer,
        "customer": customer,
        "days": days,
        "lines": lines,
    }


def seed_database(data: dict[str, np.ndarray], customers: int) -> dict[str, np.ndarray]:
    """Insert users, products, orders and lines; returns the expected revenue per customer."""
    from django.contrib.auth import get_user_model

    from example_shop.shop.models import Category, Order, OrderLine, Product

    rng = np.random.default_rng(7)
    prices = rng.integers(100, 20_000, PRODUCTS)
    user_table = get_user_model()._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        category = Category.objects.create(name="bench", slug="bench")
        Product.objects.bulk_create(
            Product(
                name=f"p{i}", slug=f"bench-{i}", category=category, price=int(prices[i]), stock=5
            )
            for i in range(PRODUCTS)
        )
        by_slug = dict(Product.objects.filter(category=category).values_list("slug", "pk"))
        product_ids = np.array([by_slug[f"bench-{i}"] for i in range(PRODUCTS)])
        now = datetime.now(UTC).isoformat(sep=" ")
        cursor.executemany(
            f"INSERT INTO {user_table} (username, password, email, first_name, last_name, "
            "is_staff, is_active, is_superuser, date_joined) "
            "VALUES (%s, '!', '', '', '', %s, %s, %s, %s)",
            [(f"bench{i}", False, True, False, now) for i in range(customers)],
        )
        user_ids = dict(
            get_user_model()
            .objects.filter(username__startswith="bench")
            .values_list("username", "pk")
        )
        users = np.array([user_ids[f"bench{i}"] for i in range(customers)])
        order_table, line_table = Order._meta.db_table, OrderLine._meta.db_table
        next_id = (Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
        order_ids = np.arange(next_id, next_id + len(data["customer"]))
        placed = [
            (AS_OF - timedelta(days=int(d), hours=1)).isoformat(sep=" ") for d in data["days"]
        ]
        rows = [
            (int(order_ids[i]), int(users[data["customer"][i]]), "paid", placed[i], 0, 0, 0)
            for i in range(len(order_ids))
        ]
        for start in range(0, len(rows), BATCH):
            cursor.executemany(
                f"INSERT INTO {order_table} (id, customer_id, status, placed_at, subtotal, "
                "discount, total) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows[start : start + BATCH],
            )
        line_order = np.repeat(np.arange(len(order_ids)), data["lines"])
        line_product = rng.integers(0, PRODUCTS, len(line_order))
        line_quantity = rng.integers(1, 3, len(line_order))
        line_rows = [
            (
                int(order_ids[line_order[i]]),
                int(product_ids[line_product[i]]),
                "p",
                int(line_quantity[i]),
                int(prices[line_product[i]]),
            )
            for i in range(len(line_order))
        ]
        for start in range(0, len(line_rows), BATCH):
            cursor.executemany(
                f"INSERT INTO {line_table} (order_id, product_id, product_name, quantity, "
                "unit_price) VALUES (%s, %s, %s, %s, %s)",
                line_rows[start : start + BATCH],
            )
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{order_table}', 'id'), "
                f"(SELECT MAX(id) FROM {order_table}))"
            )
    revenue = np.zeros(customers)
    np.add.at(
        revenue,
        data["customer"][line_order],
        line_quantity * prices[line_product],
    )
    recency = np.full(customers, 10**9)
    np.minimum.at(recency, data["customer"], data["days"])
    return {"users": users, "revenue": revenue, "recency": recency, "lines": len(line_rows)}


def check(data: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> list[str]:
    from django_crosssell.models import CustomerMetrics

    problems = []
    rows = {
        customer: (frequency, float(monetary), recency, segment)
        for customer, frequency, monetary, recency, segment in CustomerMetrics.objects.values_list(
            "customer", "frequency", "monetary", "recency_days", "segment_id"
        )
    }
    if len(rows) != len(expected["users"]):
        problems.append(f"{len(rows)} metrics rows for {len(expected['users'])} customers")
    for index, user in enumerate(expected["users"].tolist()):
        row = rows.get(str(user))
        if row is None:
            problems.append(f"customer {user} has no row")
            continue
        frequency, monetary, recency, segment = row
        want = (
            int(data["orders_per_customer"][index]),
            float(expected["revenue"][index]),
            int(expected["recency"][index]),
        )
        if (frequency, monetary, recency) != want or segment is None:
            problems.append(f"customer {user}: {(frequency, monetary, recency, segment)} != {want}")
        if len(problems) > 10:
            break
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 customers (CI)")
    parser.add_argument("--customers", type=int, help="number of customers")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    customers = args.customers or (5_000 if args.quick else 100_000)

    from django_crosssell.customers.snapshot import run_snapshot

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        data = generate(customers)
        started = time.perf_counter()
        expected = seed_database(data, customers)
        seeded = time.perf_counter() - started
        started = time.perf_counter()
        first = run_snapshot(as_of=AS_OF, scorer="quantile")
        elapsed = time.perf_counter() - started
        problems = check(data, expected)
        started = time.perf_counter()
        second = run_snapshot(as_of=AS_OF, scorer="quantile")
        again = time.perf_counter() - started
        if second.transitions:
            problems.append(f"the second run recorded segment changes: {second.transitions}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    orders = len(data["customer"])
    verdict = "met" if elapsed < TARGET_SECONDS else "missed"
    print(
        f"{customers} customers, {orders} orders, {expected['lines']} lines "
        f"(seeded in {seeded:.1f} s): snapshot {elapsed:.1f} s (target < {TARGET_SECONDS:.0f} s: "
        f"{verdict}), second run {again:.1f} s; {len(first.segment_counts)} segments"
    )
    for problem in problems:
        print("WRONG:", problem)
    if not args.no_write and not args.quick:
        database = connection.vendor
        body = (
            f"{machine()}, {database}. `python benchmarks/customers.py` "
            "(`--quick` in `make bench-quick`: 5,000 customers, checks only).\n\n"
            "| customers | orders | order lines | snapshot (read, score, upsert) | second run "
            "(no changes) | target |\n|---|---|---|---|---|---|\n"
            f"| {customers:,} | {orders:,} | {expected['lines']:,} | {elapsed:.1f} s | "
            f"{again:.1f} s | < {TARGET_SECONDS:.0f} s ({verdict}) |\n\n"
            "Every customer's frequency, revenue and recency are checked against the generated "
            "answer, every customer has a segment, and the second run records no segment "
            "change.\n"
        )
        write_section(SECTION, body)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
