"""The customer metrics snapshot: one read of the orders, RFM in numpy, one bulk write.

``run_snapshot()`` reads every counted order line with a customer through the adapter's
``customer_order_lines()`` (one streamed query by default), folds lines into orders and
orders into customers with pandas, scores them (:mod:`.scoring`), places each in the
segment its R and F scores fall in, and replaces the :class:`CustomerMetrics` rows in one
transaction.

It is idempotent: running it twice for the same ``as_of`` writes the same rows and no
segment change. A customer's ``previous_segment`` and ``segment_changed_at`` move only when
the segment really changes; customers whose orders are all gone lose their row. Every run
leaves a :class:`MetricsSnapshot` with the counts per segment, the R x F grid and the
transitions since the previous run, which the admin charts read. The cache version is
bumped at the end, so audiences and widgets see the new segments.

Imports numpy and pandas: the Celery task and the management command use it, never the
web path.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.db import connections, router, transaction
from django.utils import timezone

from .. import cache
from ..adapter import get_adapter
from ..conf import app_settings
from .model import fit_item_weights
from .models import CustomerItemWeight, CustomerMetrics, MetricsSnapshot, Segment
from .scoring import SCORERS, deciles, score, segment_grid
from .segments import ensure_segments

BATCH = 2000


@dataclass
class CustomerFrame:
    """Per-customer arrays, sorted by customer key."""

    customers: np.ndarray  # str
    first: list[datetime]
    last: list[datetime]
    last_seconds: np.ndarray  # float seconds since the epoch
    frequency: np.ndarray  # int
    monetary: np.ndarray  # float
    median_gap: np.ndarray  # float days, NaN for one order
    categories: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.customers)


def read_lines(
    chunks: Iterable[list[Any]],
) -> pd.DataFrame:
    """The adapter's chunks as one frame (customer as str, revenue per line)."""
    frames = []
    for chunk in chunks:
        if not chunk:
            continue
        frame = pd.DataFrame.from_records(
            chunk, columns=["customer", "order", "product", "placed_at", "quantity", "price"]
        )
        frames.append(frame)
    if not frames:
        return pd.DataFrame(
            {
                "customer": pd.Series([], dtype=object),
                "order": pd.Series([], dtype=object),
                "product": pd.Series([], dtype=object),
                "placed_at": pd.Series([], dtype="datetime64[ns, UTC]"),
                "revenue": pd.Series([], dtype=float),
            }
        )
    lines = pd.concat(frames, ignore_index=True)
    quantity = pd.to_numeric(lines["quantity"], errors="coerce").fillna(1.0)
    price = pd.to_numeric(lines["price"], errors="coerce")
    # No unit price: revenue counts units, so M still orders customers by what they bought.
    lines["revenue"] = (
        quantity * price.fillna(1.0) if price.isna().all() else quantity * price.fillna(0.0)
    )
    lines["customer"] = lines["customer"].astype(str)
    lines["placed_at"] = pd.to_datetime(lines["placed_at"], utc=True)
    return lines.drop(columns=["quantity", "price"])


def customer_frame(
    lines: pd.DataFrame, product_categories: dict[Any, tuple[Any, ...]]
) -> CustomerFrame:
    """Fold lines into orders (first time, revenue) and orders into customers."""
    orders = (
        lines.groupby(["customer", "order"], sort=False)
        .agg(placed_at=("placed_at", "min"), revenue=("revenue", "sum"))
        .reset_index()
        .sort_values(["customer", "placed_at", "order"], kind="stable")
    )
    same = orders["customer"].to_numpy()
    gap_days = orders["placed_at"].diff().dt.total_seconds() / 86_400.0
    first_of_customer = np.ones(len(orders), dtype=bool)
    if len(orders):
        first_of_customer[1:] = same[1:] != same[:-1]
    orders["gap"] = gap_days.where(~first_of_customer)
    per_customer = orders.groupby("customer", sort=True).agg(
        first=("placed_at", "min"),
        last=("placed_at", "max"),
        frequency=("order", "size"),
        monetary=("revenue", "sum"),
        median_gap=("gap", "median"),
    )
    categories: dict[str, list[str]] = {}
    if product_categories and len(lines):
        pairs = lines[["customer", "product"]].drop_duplicates()
        mapped = pairs["product"].map(lambda key: product_categories.get(key, ()))
        exploded = pd.DataFrame({"customer": pairs["customer"], "category": mapped}).explode(
            "category"
        )
        exploded = exploded.dropna()
        for customer, group in exploded.groupby("customer", sort=False)["category"]:
            categories[str(customer)] = sorted({str(value) for value in group})
    return CustomerFrame(
        customers=per_customer.index.to_numpy(dtype=object),
        first=list(per_customer["first"].dt.to_pydatetime()),
        last=list(per_customer["last"].dt.to_pydatetime()),
        last_seconds=(
            (per_customer["last"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
        ),
        frequency=per_customer["frequency"].to_numpy(dtype=np.int64),
        monetary=per_customer["monetary"].to_numpy(dtype=float),
        median_gap=per_customer["median_gap"].to_numpy(dtype=float),
        categories=categories,
    )


def _money(value: float) -> Decimal:
    return Decimal(repr(round(float(value), 2))).quantize(Decimal("0.01"))


def run_snapshot(
    *, as_of: datetime | None = None, scorer: str | None = None, chunk_size: int | None = None
) -> MetricsSnapshot:
    """Compute and store every customer's metrics; returns the run's snapshot row."""
    started = time.perf_counter()
    now = timezone.now()
    as_of = as_of or now
    scorer = scorer or str(app_settings.CUSTOMERS_SCORER)
    if scorer not in SCORERS:
        raise ValueError(f"Unknown scorer {scorer!r}; use one of {', '.join(SCORERS)}.")
    lookback = app_settings.CUSTOMERS_LOOKBACK_DAYS
    since = as_of - timedelta(days=float(lookback)) if lookback else None
    adapter = get_adapter()
    lines = read_lines(
        adapter.customer_order_lines(
            since=since, chunk_size=int(chunk_size or app_settings.CHUNK_SIZE)
        )
    )
    lines = lines[lines["placed_at"] <= pd.Timestamp(as_of)]
    products = lines["product"].unique().tolist() if len(lines) else []
    product_categories = adapter.product_categories(products) if products else {}
    frame = customer_frame(lines, product_categories)

    seconds = as_of.timestamp() - frame.last_seconds
    recency = np.maximum(0, np.floor(seconds / 86_400.0)).astype(np.int64)
    scores = score(scorer, recency.astype(float), frame.frequency.astype(float), frame.monetary)
    decile = deciles(frame.monetary, frame.customers.astype(str))
    segments = ensure_segments()
    grid = segment_grid(segments)
    segment_ids = grid[scores.r, scores.f] if len(frame) else np.zeros(0, dtype=np.int64)

    with transaction.atomic():
        # Two runs at once write one after the other (the second replaces the first's rows
        # instead of colliding with them): the first segment's row is the lock.
        list(Segment.objects.select_for_update().order_by("pk").values_list("pk")[:1])
        snapshot = MetricsSnapshot.objects.create(
            computed_at=now,
            as_of=as_of,
            scorer=scorer,
            customers=len(frame),
            thresholds={
                key: {str(k): v for k, v in bounds.items()}
                for key, bounds in scores.thresholds.items()
            },
        )
        transitions = _write(frame, recency, scores, decile, segment_ids, snapshot, now)
        counts: dict[str, int] = {}
        slug_of = {segment.pk: segment.slug for segment in segments}
        for pk, count in zip(*np.unique(segment_ids, return_counts=True), strict=True):
            counts[slug_of.get(int(pk), "")] = int(count)
        rf = np.zeros((5, 5), dtype=np.int64)
        if len(frame):
            np.add.at(rf, (scores.r.astype(np.int64) - 1, scores.f.astype(np.int64) - 1), 1)
        snapshot.segment_counts = counts
        snapshot.transitions = {
            f"{slug_of.get(old, '')}|{slug_of.get(new, '')}": count
            for (old, new), count in sorted(transitions.items())
        }
        snapshot.grid = rf.tolist()
        snapshot.duration = time.perf_counter() - started
        if app_settings.CUSTOMERS_MODEL:
            write_item_weights(lines)
        snapshot.save(update_fields=["segment_counts", "transitions", "grid", "duration"])
        keep = int(app_settings.CUSTOMERS_KEEP_SNAPSHOTS or 1)
        stale = MetricsSnapshot.objects.order_by("-computed_at", "-pk").values("pk")[keep:]
        MetricsSnapshot.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    cache.invalidate()
    return snapshot


def _write(
    frame: CustomerFrame,
    recency: np.ndarray,
    scores: Any,
    decile: np.ndarray,
    segment_ids: np.ndarray,
    snapshot: MetricsSnapshot,
    now: datetime,
) -> dict[tuple[int, int], int]:
    """Upsert the rows; returns ``{(old segment pk, new segment pk): customers}`` of changes
    (old 0: a customer seen for the first time)."""
    existing = {
        customer: (segment, previous, changed)
        for customer, segment, previous, changed in CustomerMetrics.objects.values_list(
            "customer", "segment_id", "previous_segment_id", "segment_changed_at"
        ).iterator(chunk_size=BATCH)
    }
    transitions: dict[tuple[int, int], int] = {}
    rows = []
    for i, customer in enumerate(frame.customers.tolist()):
        segment = int(segment_ids[i]) or None
        old = existing.get(customer)
        changed: datetime | None
        if old is None:
            previous, changed = None, now
            transitions[(0, segment or 0)] = transitions.get((0, segment or 0), 0) + 1
        elif old[0] != segment:
            previous, changed = old[0], now
            key = (old[0] or 0, segment or 0)
            transitions[key] = transitions.get(key, 0) + 1
        else:
            previous, changed = old[1], old[2]
        frequency = int(frame.frequency[i])
        monetary = float(frame.monetary[i])
        gap = float(frame.median_gap[i])
        rows.append(
            CustomerMetrics(
                customer=customer,
                first_order_at=frame.first[i],
                last_order_at=frame.last[i],
                recency_days=int(recency[i]),
                frequency=frequency,
                monetary=_money(monetary),
                average_order_value=_money(monetary / frequency),
                median_gap_days=None if np.isnan(gap) else round(gap, 2),
                r_score=int(scores.r[i]),
                f_score=int(scores.f[i]),
                m_score=int(scores.m[i]),
                decile=int(decile[i]),
                segment_id=segment,
                previous_segment_id=previous,
                segment_changed_at=changed,
                categories=frame.categories.get(customer, []),
                snapshot=snapshot,
            )
        )
    # Replace every row in one transaction: bulk inserts are several times faster than
    # upserts of rows that all change anyway (recency moves every day), and readers keep
    # seeing the previous snapshot until the commit.
    CustomerMetrics.objects.all().delete()
    _insert(rows)
    return transitions


def write_item_weights(lines: pd.DataFrame) -> int:
    """Learn the customer model from the lines read and replace its weights (rows written)."""
    CustomerItemWeight.objects.all().delete()
    if not len(lines):
        return 0
    keys = lines["product"].unique().tolist()
    canonical = get_adapter().canonical_ids(keys)
    products = lines["product"].map(lambda key: canonical.get(key, key))
    customer_codes, _customers = pd.factorize(lines["customer"])
    item_codes, item_keys = pd.factorize(products)
    weights = fit_item_weights(
        customer_codes,
        item_codes,
        l2=float(app_settings.CUSTOMERS_MODEL_L2),
        top_k=int(app_settings.CUSTOMERS_MODEL_TOP_K),
        max_items=int(app_settings.CUSTOMERS_MODEL_MAX_ITEMS),
    )
    keys_array = np.asarray(item_keys, dtype=object)
    rows = [
        CustomerItemWeight(source_id=source, target_id=target, weight=float(weight))
        for source, target, weight in zip(
            keys_array[weights.source].tolist(),
            keys_array[weights.target].tolist(),
            weights.weight.tolist(),
            strict=True,
        )
    ]
    _insert(rows)
    return len(rows)


def _insert(rows: list[Any]) -> None:
    """Insert ``rows`` fast on each backend.

    PostgreSQL: ``bulk_create`` (multi-row INSERTs of up to 65,535 parameters). SQLite: one
    prepared INSERT run with ``executemany``, because ``bulk_create`` compiles a statement
    per few dozen rows there (its 999-parameter limit), which made it most of the snapshot's
    time at 100,000 customers. Values go through each field's ``get_db_prep_save``, so dates,
    decimals and JSON are stored as the ORM would.
    """
    if not rows:
        return
    model = type(rows[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "sqlite":
        model._default_manager.bulk_create(rows, batch_size=BATCH)
        return
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH):
            params = [
                [
                    field.get_db_prep_save(getattr(row, field.attname), connection)
                    for field in fields
                ]
                for row in rows[start : start + BATCH]
            ]
            cursor.executemany(sql, params)
