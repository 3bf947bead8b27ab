"""Writing a run's affinity rows: binary COPY on PostgreSQL, batched inserts elsewhere.

Both writers (and the text COPY for product keys the binary COPY does not cover) are
driven by one column list, :data:`COLUMNS`: the run, then the engine's per-pair arrays
(:data:`~.affinity.PAIR_FIELDS`, with ``source`` and ``target`` turned into product ids).

On PostgreSQL the pairs are never held whole: the engine computes them in a background
thread a block of source products at a time (:class:`PendingPairs`), and each finished
block goes into the run's one binary COPY while the next is computed.
"""

from __future__ import annotations

import dataclasses
import queue
import struct
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from itertools import chain, repeat
from typing import Any

import numpy as np
from django.db import connection, models, transaction

from . import affinity, distributed, incremental, partitions
from .conf import app_settings
from .models import AffinityRun, ProductAffinity, ProductSales

#: ``progress(stage, done, total)``; stages in order: "read" (total None), "pairs", "write",
#: "swap", "done".
Progress = Callable[[str, int, int | None], None]

#: The columns of ProductAffinity a writer fills, in COPY order.
COLUMNS: tuple[str, ...] = ("run", *affinity.PAIR_FIELDS)
#: Columns holding product ids (the engine's arrays hold indices into ``product_ids``).
PRODUCT_COLUMNS = ("source", "target")
#: Rows per COPY / bulk insert round trip.
WRITE_BATCH = 100_000
#: The engine's work is cut into at least this many blocks on PostgreSQL, so the COPY can
#: send one block while a background thread computes the next (see :func:`in_background`).
PIPELINE_BLOCKS = 8
#: Finished blocks waiting for the writer; bounds the memory the overlap adds.
PIPELINE_DEPTH = 2
BULK_CREATE_BATCH = 2_000


@dataclasses.dataclass
class PendingPairs:
    """Order lines read and the basket matrix built; the pairs are computed when consumed.

    Kept lazy so the PostgreSQL writer can stream the engine's blocks into its COPY while
    the next block is computed, instead of computing everything and then writing
    everything. ``result()`` computes them all at once (dry runs, other databases).
    ``baskets`` must have its products in id order (:func:`~.affinity.order_products_by_id`),
    which is the order of the table's ``(run, source, -score)`` index.
    """

    #: None after a sharded read (``summed`` holds the window then).
    baskets: affinity.BasketMatrix | None
    params: dict[str, Any]
    parameters: dict[str, Any]  # lines_read and lines_dropped, for the run's record
    #: Per product: whether the computed pairs gave it a partner (filled as blocks are
    #: consumed); the products without one get content neighbours (cold start).
    partnered: np.ndarray | None = None
    #: The window's counts when the run keeps them (``INCREMENTAL``); an incremental run
    #: ranks from them instead of multiplying the basket matrix.
    counts: incremental.WindowCounts | None = None
    #: True when ``counts`` were slid from the previous run's (not computed in full).
    slid: bool = False
    #: A window read on the cluster (``DASK_READ = "sharded"``): no basket matrix here.
    sharded: distributed.ShardedWindow | None = None
    _then: Callable[[np.ndarray], Any] | None = dataclasses.field(default=None, repr=False)
    _then_thread: threading.Thread | None = dataclasses.field(default=None, repr=False)
    _then_outcome: list[Any] = dataclasses.field(default_factory=list, repr=False)
    _then_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    _blocks_done: bool = dataclasses.field(default=False, repr=False)

    @property
    def _baskets(self) -> affinity.BasketMatrix:
        assert self.baskets is not None  # every read but a sharded one builds the matrix
        return self.baskets

    @property
    def n_orders(self) -> int:
        return self.sharded.n_orders if self.sharded is not None else self._baskets.n_orders

    @property
    def n_lines(self) -> int:
        return self.sharded.n_lines if self.sharded is not None else self._baskets.n_lines

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def product_ids(self) -> np.ndarray:
        if self.sharded is not None:
            return self.sharded.product_ids
        return self._baskets.product_ids

    @property
    def item_counts(self) -> np.ndarray:
        """Orders holding each product (every order of the window, capped ones included)."""
        if self.sharded is not None:
            return self.sharded.item_counts
        matrix = self._baskets.matrix
        return np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.int64)

    def blocks(
        self, *, min_blocks: int = 1, progress: affinity.ProgressCallback | None = None
    ) -> Iterator[affinity.AffinityResult]:
        """The engine's pairs a block of source products at a time, in product order."""
        self.partnered = np.zeros(self.n_products, dtype=bool)
        rank = {
            "min_co_count": self.params["min_co_count"],
            "top_k": self.params["top_k"],
            "metric": self.params["metric"],
            "min_blocks": min_blocks,
            "progress": progress,
            "runner": engine_runner(self.params.get("engine")),
        }
        if self.slid and self.counts is not None:
            return self._marking(incremental.rank(self.counts, **rank))
        min_co_count, top_k = self.params["min_co_count"], self.params["top_k"]
        metric = self.params["metric"]
        if self.sharded is not None:
            return self._marking(
                self.sharded.blocks(
                    min_co_count=min_co_count,
                    top_k=top_k,
                    metric=metric,
                    min_blocks=min_blocks,
                    progress=progress,
                )
            )
        if self.counts is not None and rank["runner"] is affinity.plan_results:
            # The run keeps its counts: take them from the blocks, not a second product.
            rank["runner"] = incremental.counting_runner(self.counts)
        plan = affinity.plan_blocks(
            self._baskets,
            min_co_count=min_co_count,
            top_k=top_k,
            metric=metric,
            min_blocks=min_blocks,
        )
        empty = affinity.empty_result(
            self._baskets, min_co_count=min_co_count, top_k=top_k, metric=metric
        )
        return self._marking(rank["runner"](plan, empty, progress))

    def _marking(
        self, blocks: Iterator[affinity.AffinityResult]
    ) -> Iterator[affinity.AffinityResult]:
        for block in blocks:
            assert self.partnered is not None
            self.partnered[block.source] = True
            yield block
        with self._then_lock:
            self._blocks_done = True
            if self._then is not None:
                self._start_then()

    def then(self, work: Callable[[np.ndarray], Any]) -> None:
        """Run ``work(partnered)`` in a thread of its own once the last block is computed.

        For work that needs every block's partners but no database (the content
        neighbours): it then runs while the COPY sends the last blocks and the server
        finishes it. :meth:`after_blocks` waits for its result. Set while the blocks are
        being consumed, it starts at once if they are all done already.
        """
        with self._then_lock:
            self._then = work
            if self._blocks_done:
                self._start_then()

    def _start_then(self) -> None:
        work, partnered = self._then, self.partnered
        assert work is not None and partnered is not None

        def run() -> None:
            try:
                self._then_outcome[:] = [work(partnered), None]
            except BaseException as exc:  # re-raised by after_blocks(), in the caller
                self._then_outcome[:] = [None, exc]

        self._then_thread = threading.Thread(target=run, name="crosssell-after-blocks", daemon=True)
        self._then_thread.start()

    def after_blocks(self) -> Any:
        """What the :meth:`then` work returned; raises what it raised.

        Call it only after the blocks were all consumed.
        """
        assert self._then is not None and self._then_thread is not None, "nothing to wait for"
        self._then_thread.join()
        result, error = self._then_outcome
        if error is not None:
            raise error
        return result

    def result(self, progress: Progress | None = None) -> affinity.AffinityResult:
        result = affinity.AffinityResult.concat(list(self.blocks(progress=progress)))
        result.parameters.update(self.parameters)
        return result

    def close(self) -> None:
        """Release what a sharded read holds on the cluster, wait for ``then``'s thread."""
        if self._then_thread is not None:
            self._then_thread.join()
        if self.sharded is not None:
            self.sharded.close()


def engine_runner(engine: str | None = None) -> affinity.PlanRunner:
    """How the blocks are computed: here (``"local"``) or as Dask tasks (``"dask"``);
    ``engine`` is a run's own choice, else ``ENGINE``."""
    if (engine or app_settings.ENGINE) == "dask":
        from . import distributed

        scheduler = app_settings.DASK_SCHEDULER

        def on_dask(
            plan: affinity.BlockPlan | None,
            empty: affinity.AffinityResult,
            progress: affinity.ProgressCallback | None = None,
        ) -> Iterator[affinity.AffinityResult]:
            return distributed.plan_results(plan, empty, progress, scheduler=scheduler)

        return on_dask
    return affinity.plan_results


_DONE = object()


def in_background(
    items: Iterator[Any],
    depth: int = PIPELINE_DEPTH,
    on_start: Callable[[], None] | None = None,
) -> Generator[Any]:
    """Run the iterator ``items`` in a thread, ``depth`` items ahead of the consumer.

    numpy, scipy's sparse products and psycopg's socket writes release the GIL, so on two
    cores the engine computes block n + 1 while the caller writes block n. An exception in
    the thread is re-raised here, in the caller; closing this generator (the caller
    failed) stops the thread after the block it is computing. ``on_start`` runs in the
    caller on the first ``next()``, once the thread has started: while the first item is
    being computed.
    """
    handoff: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((_DONE, exc))

    thread = threading.Thread(target=produce, name="crosssell-affinity-engine", daemon=True)
    thread.start()
    try:
        if on_start is not None:
            on_start()
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


# --- The one column list -------------------------------------------------------------


def column_values(
    run_id: int, ids: np.ndarray, block: affinity.AffinityResult, start: int, stop: int
) -> dict[str, Any]:
    """Each of :data:`COLUMNS` for pairs ``start:stop`` of ``block``.

    ``ids`` holds one entry per product of ``block`` (the ids themselves, or their binary
    encoding); ``run`` is the scalar ``run_id``.
    """
    values: dict[str, Any] = {"run": run_id}
    for name in affinity.PAIR_FIELDS:
        column = getattr(block, name)[start:stop]
        values[name] = ids[column] if name in PRODUCT_COLUMNS else column
    return values


def python_rows(
    run_id: int, block: affinity.AffinityResult, start: int, stop: int
) -> Iterator[tuple[Any, ...]]:
    """Pairs ``start:stop`` as tuples of Python values in :data:`COLUMNS` order."""
    values = column_values(run_id, block.product_ids, block, start, stop)
    columns = [
        repeat(run_id, stop - start) if name == "run" else values[name].tolist() for name in COLUMNS
    ]
    return zip(*columns, strict=True)


# --- PostgreSQL binary COPY ------------------------------------------------------------

_BINARY_TYPES = {"integer": ">i4", "bigint": ">i8", "smallint": ">i2", "uuid": "uuid"}
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


def _encode_ids(ids: np.ndarray, kind: str) -> np.ndarray:
    if kind == "uuid":
        values = [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in ids.tolist()]
        raw = b"".join(v.bytes for v in values)
        return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), 16)
    return np.asarray(ids.tolist(), dtype=np.int64).astype(kind)


def binary_rows(
    run_id: int,
    kinds: dict[str, str],
    ids: np.ndarray,
    block: affinity.AffinityResult,
    start: int,
    stop: int,
) -> bytes:
    """PostgreSQL binary COPY tuples for pairs ``start:stop``, built by numpy in one go.

    ``ids`` are the block's product ids encoded for the ``source`` column's kind.
    """
    values = column_values(run_id, ids, block, start, stop)
    dtype: list[tuple[Any, ...]] = [("n", ">i2")]
    for name in COLUMNS:
        kind = kinds[name]
        dtype.append((f"{name}_len", ">i4"))
        dtype.append((name, "u1", (16,)) if kind == "uuid" else (name, kind))
    rows = np.empty(stop - start, dtype=np.dtype(dtype))
    rows["n"] = len(COLUMNS)
    for name in COLUMNS:
        kind = kinds[name]
        rows[f"{name}_len"] = 16 if kind == "uuid" else np.dtype(kind).itemsize
        rows[name] = values[name]
    return rows.tobytes()


def binary_column_kinds() -> dict[str, str] | None:
    """Binary COPY types of the :data:`COLUMNS`, or None if one is not supported.

    Integer and UUID product keys are covered; other key types (a ``CharField`` primary
    key, say) are written by a text COPY instead.
    """
    kinds: dict[str, str] = {}
    for name in COLUMNS:
        db_type = _field(name).db_type(connection) or ""
        if db_type == "double precision":
            kinds[name] = ">f8"
        elif db_type in _BINARY_TYPES:
            kinds[name] = _BINARY_TYPES[db_type]
        else:
            return None
    return kinds


def _field(name: str) -> models.Field:
    """A concrete column of the affinity table (every name in :data:`COLUMNS` is one)."""
    field = ProductAffinity._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _copy_sql(table: str | None = None) -> str:
    table = connection.ops.quote_name(table or ProductAffinity._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(_field(name).column) for name in COLUMNS)
    return f"COPY {table} ({columns}) FROM STDIN"


# --- Writing -------------------------------------------------------------------------


def write_affinities(
    run: AffinityRun,
    pending: PendingPairs,
    *,
    progress: Progress | None = None,
    alongside: Callable[[], None] | None = None,
) -> int:
    """Insert the run's pairs: binary COPY on PostgreSQL, batched inserts elsewhere.

    The table has no uniqueness index or enforced foreign keys (see
    :class:`~.models.ProductAffinity`), so this writer is what keeps it right: one row per
    (source, target) pair of the engine, only products the read just found in the catalogue.
    On PostgreSQL the engine runs in a background thread and each finished block goes into
    the one COPY while the next is computed; an error on either side aborts the COPY, so
    none of the run's rows are committed.

    ``alongside`` is the run's other database work that need not wait for the pairs (its
    sales, the catalogue's texts): with the binary COPY it runs while the engine computes
    the first block, before the COPY takes the connection; otherwise first.
    """
    if connection.vendor == "postgresql":
        kinds = binary_column_kinds()
        if kinds is not None:
            return _copy_binary(run, pending, kinds, progress, alongside)
    if alongside is not None:
        alongside()
    result = pending.result(progress)
    total = result.n_pairs
    if total == 0:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, cursor.copy(_copy_sql()) as copy:
            for row in python_rows(run.pk, result, 0, total):  # text COPY, unusual keys
                copy.write_row(row)
        if progress is not None:
            progress("write", total, total)
        return total
    attnames = [_field(name).attname for name in COLUMNS]
    for start in range(0, total, WRITE_BATCH):
        stop = min(start + WRITE_BATCH, total)
        ProductAffinity.objects.bulk_create(
            [
                ProductAffinity(**dict(zip(attnames, row, strict=True)))
                for row in python_rows(run.pk, result, start, stop)
            ],
            batch_size=BULK_CREATE_BATCH,
        )
        if progress is not None:
            progress("write", stop, total)
    return total


def _copy_binary(
    run: AffinityRun,
    pending: PendingPairs,
    kinds: dict[str, str],
    progress: Progress | None,
    alongside: Callable[[], None] | None = None,
) -> int:
    """One binary COPY of every pair, streamed from the engine block by block."""
    ids = _encode_ids(pending.product_ids, kinds["source"])
    n_products = len(ids)
    blocks = in_background(_numbered(pending), on_start=alongside)
    written = 0
    try:
        # Starts the engine, runs ``alongside`` while it computes, then waits for block 1.
        first = next(blocks, None)
        # Its own transaction (a savepoint inside a caller's): a failure part-way, on the
        # server or in the engine, then rolls back just the COPY and leaves the connection
        # usable for marking the run failed.
        # With a partition per run (:mod:`.partitions`) the rows go into the run's own
        # table, indexed and attached once they are all there.
        with transaction.atomic(), connection.cursor() as cursor:
            table = partitions.create(cursor, run.pk) if partitions.enabled() else None
            with cursor.copy(_copy_sql(table) + " (FORMAT BINARY)") as copy:
                copy.write(_COPY_HEADER)
                for block, done in chain([first] if first is not None else [], blocks):
                    total = block.n_pairs
                    for start in range(0, total, WRITE_BATCH):
                        stop = min(start + WRITE_BATCH, total)
                        copy.write(binary_rows(run.pk, kinds, ids, block, start, stop))
                    written += total
                    if progress is not None:
                        progress("pairs", done, n_products)
                    del block
                copy.write(_COPY_TRAILER)
            if table is not None:
                partitions.attach(cursor, run.pk)
    finally:
        blocks.close()  # stops the engine thread if the COPY failed
    if progress is not None:  # the server has checked and indexed every row
        progress("write", written, written)
    return written


def _numbered(pending: PendingPairs) -> Iterator[tuple[affinity.AffinityResult, int]]:
    """The pending blocks, each with how many source products are done after it."""
    done = [0]

    def count(stage: str, products_done: int, total: int) -> None:
        done[0] = products_done

    for block in pending.blocks(min_blocks=PIPELINE_BLOCKS, progress=count):
        yield block, done[0]


# --- Sales (the run's bestseller list) -------------------------------------------------


def copy_rows(
    model: type[models.Model], names: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (values of the fields ``names``) into ``model``'s table.

    A text COPY on PostgreSQL (any key type), batched inserts elsewhere: for the run's
    smaller tables (sales, similar products), tens of thousands of rows at most.
    """
    fields = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)
        fields.append(field)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    attnames = [field.attname for field in fields]
    model._default_manager.bulk_create(
        [model(**dict(zip(attnames, row, strict=True))) for row in rows],
        batch_size=BULK_CREATE_BATCH,
    )


def write_sales(run: AffinityRun, product_ids: np.ndarray, counts: np.ndarray) -> int:
    """Store each product's order count with ``run``; returns rows written.

    One row per product the run read; the bestseller fallback then reads the top few of one
    index instead of aggregating order lines (``BESTSELLERS_SOURCE = "run"``).
    """
    keep = np.flatnonzero(np.asarray(counts) > 0)
    ids = np.asarray(product_ids)[keep]
    values = np.asarray(counts)[keep].tolist()
    names = ("run", "product", "orders")
    if connection.vendor == "postgresql" and ids.dtype.kind in "iu":
        # Integer keys need no quoting: the COPY's text in one piece, not a call per row.
        line = f"{int(run.pk)}\t%d\t%d\n"
        text = "".join(map(line.__mod__, zip(ids.tolist(), values, strict=True)))
        _copy_text(ProductSales, names, text)
        return len(values)
    rows = [(run.pk, pk, orders) for pk, orders in zip(ids.tolist(), values, strict=True)]
    if rows:
        copy_rows(ProductSales, names, rows)
    return len(rows)


def _copy_text(model: type[models.Model], names: tuple[str, ...], text: str) -> None:
    """A PostgreSQL text COPY of ``text`` (tab-separated lines of ``names``) into ``model``."""
    if not text:
        return
    with connection.cursor() as cursor, cursor.copy(_copy_into(model, names)) as copy:
        copy.write(text)


def _copy_into(model: type[models.Model], names: tuple[str, ...]) -> str:
    """``COPY table (columns) FROM STDIN`` for the fields ``names`` of ``model``."""
    columns = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)
        columns.append(connection.ops.quote_name(field.column))
    table = connection.ops.quote_name(model._meta.db_table)
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN"
