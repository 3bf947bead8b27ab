"""Choosing ``PARTNER_MAX_PRICE_RATIO``: product-page hit rate with a price-band cap.

Issue 16: a ¥380 paper filter recommended a ¥29,800 espresso machine. A cap drops computed
partners (and bestseller fillers) dearer than ``ratio`` times the source's price; staff
links are never capped. The cap is worth having only where it costs no hit rate, so this
measures it on real orders with prices: the UCI Online Retail file in
``/work/shared/data`` (cancellations, non-positive lines and fee codes removed).

Protocol (product page, the place the cap applies): an 80/20 split of invoices by seed;
cosine partners (``METRIC``'s default, ``MIN_CO_COUNT`` 2, ``TOP_K`` 50) from the train
part; for every test invoice of 2 to 30 products and every ordered pair (source, other
item) of its products, a hit when the other item is among the source's 10 shown products
(partners by score, then bestsellers, both capped). Averaged over seeds; catalogue
coverage next to it.

    .venv/bin/python benchmarks/price_band.py [--seeds 3] [--max-invoices 6000]
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from django_crosssell.affinity import compute_affinity

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILE = DATA / "online_retail_2010-12_2011-06.csv.gz"
RATIOS: list[float | None] = [None, 20, 10, 5, 3, 2]
K = 10


def load() -> tuple[pd.DataFrame, np.ndarray]:
    with gzip.open(FILE, "rt", encoding="utf-8", errors="replace") as handle:
        frame = pd.read_csv(handle, dtype={"InvoiceNo": str, "StockCode": str})
    frame = frame[~frame.InvoiceNo.str.startswith("C")]
    frame = frame[(frame.Quantity > 0) & (frame.UnitPrice > 0)]
    frame = frame[frame.StockCode.str.match(r"^\d{5}")]  # product codes, not fees or postage
    _codes, items = np.unique(frame.StockCode.to_numpy(), return_inverse=True)
    frame = frame.assign(item=items)
    # One price per product: the median it sold at (prices vary by quantity band).
    price = frame.groupby("item").UnitPrice.median().to_numpy()
    lines = frame[["InvoiceNo", "item"]].drop_duplicates()
    return lines, price


def evaluate(lines: pd.DataFrame, price: np.ndarray, seeds: int, max_invoices: int) -> None:
    invoices = lines.InvoiceNo.unique()
    n_items = len(price)
    results: dict[float | None, list[tuple[float, float]]] = {r: [] for r in RATIOS}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        chosen = rng.permutation(invoices)[:max_invoices]
        n_test = round(len(chosen) * 0.2)
        test_ids, train_ids = set(chosen[:n_test]), set(chosen[n_test:])
        train = lines[lines.InvoiceNo.isin(train_ids)]
        test = lines[lines.InvoiceNo.isin(test_ids)]
        orders = pd.factorize(train.InvoiceNo)[0]
        result = compute_affinity(orders, train.item.to_numpy(), min_co_count=2, top_k=50)
        ids = result.product_ids.astype(np.int64)
        src, tgt, score = ids[result.source], ids[result.target], result.score
        popularity = np.bincount(train.item.to_numpy(), minlength=n_items)
        best = np.argsort(-popularity, kind="stable")[:200]
        best = best[popularity[best] > 0]
        partners: dict[int, np.ndarray] = {}
        order = np.lexsort((-score, src))
        for s, start, end in _runs(src[order]):
            partners[s] = tgt[order][start:end]
        pairs = [
            (s, t)
            for _, group in test.groupby("InvoiceNo").item
            if 2 <= len(group) <= 30  # big wholesale orders would outweigh the rest
            for s in group.to_numpy()
            for t in group.to_numpy()
            if s != t
        ]
        for ratio in RATIOS:
            shown_cache: dict[int, set[int]] = {}
            covered: set[int] = set()
            hits = 0
            for s, t in pairs:
                shown = shown_cache.get(s)
                if shown is None:
                    candidates = list(partners.get(s, ())) + [b for b in best if b != s]
                    if ratio is not None:
                        cap = price[s] * ratio
                        candidates = [c for c in candidates if price[c] <= cap]
                    shown = set(list(dict.fromkeys(candidates))[:K])
                    shown_cache[s] = shown
                    covered |= shown
                hits += t in shown
            results[ratio].append((hits / len(pairs), len(covered) / n_items))
        print(f"seed {seed}: {len(pairs)} pairs", file=sys.stderr)
    print(f"| PARTNER_MAX_PRICE_RATIO | hit rate at {K} | coverage |")
    print("|---|---|---|")
    for ratio, rows in results.items():
        hit = np.mean([r[0] for r in rows])
        cov = np.mean([r[1] for r in rows])
        print(f"| {'none' if ratio is None else ratio} | {hit:.4f} | {cov:.4f} |")


def _runs(values: np.ndarray):
    if len(values) == 0:
        return
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(values)]])
    for start, end in zip(starts, ends, strict=True):
        yield int(values[start]), int(start), int(end)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-invoices", type=int, default=6000)
    args = parser.parse_args()
    if not FILE.exists():
        print(f"{FILE} is missing; nothing to measure.")
        return
    lines, price = load()
    evaluate(lines, price, args.seeds, args.max_invoices)


if __name__ == "__main__":
    main()
