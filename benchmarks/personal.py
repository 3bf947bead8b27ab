"""Personal recommendations on a time split of a real shop's orders (issue 14).

Data: ``../shared/data/online_retail_2010-12_2011-06.csv.gz`` (UCI Online Retail), cleaned as
``load_orders`` cleans it (cancellations, non-positive quantities and prices, postage and
fees out). Protocol: train on every order before the cut (default 2011-05-01); for each
customer with orders before and after it, their first order after the cut is the test;
its products the customer had bought before are left out of the target (repeat purchases
are ``buy_again``'s job), and customers with nothing new in it are skipped. Every method
recommends 10 products the customer does not own; hit rate at 10 is the share of test
customers with at least one target product among them.

Methods (the scoring functions are the app's own: ``affinity.compute_affinity`` for the
engine's partners, ``customers.model.fit_item_weights`` for the customer model,
``recommend.personal.rank`` / ``with_prior`` for combining a history):

* bestsellers: distinct orders in the last 30 days before the cut (the shop-wide fallback);
* history sum: the engine's partners (cosine, top 50) of everything the customer bought,
  summed plainly;
* history sum, recency-weighted (30-day half-life);
* partners + prior: each product's partners normalised by confidence, plus the bestseller
  prior (``recommend_for_customer`` without a model);
* customer model (EASE, the default of ``recommend_for_customer``);
* implicit's ALS (reference only, when ``implicit`` is installed: ``pip install
  django-crosssell[bench]``), best of three settings.

Exits non-zero only on a wrong result (a recommendation of an owned product, a list longer
than 10), never on a hit rate.

    python benchmarks/personal.py [--cut 2011-05-01] [--no-als] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.results import machine, write_section  # noqa: E402
from django_crosssell.affinity import compute_affinity  # noqa: E402
from django_crosssell.customers.model import fit_item_weights  # noqa: E402
from django_crosssell.recommend.personal import rank, with_prior  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "online_retail_2010-12_2011-06.csv.gz"
SECTION = "## Personal recommendations"
N = 10

Recommender = Callable[[str, set[str]], list[str]]


def load(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    keep = (
        ~frame.InvoiceNo.str.upper().str.startswith("C")
        & (frame.Quantity > 0)
        & (frame.UnitPrice > 0)
        & frame.StockCode.str[0].str.isdigit()
    )
    frame = frame[keep].copy()
    frame["at"] = pd.to_datetime(frame.InvoiceDate)
    frame["product"] = frame.StockCode.str.upper()
    frame["customer"] = frame.CustomerID.str.replace(r"\.0$", "", regex=True)
    return frame


class Split:
    def __init__(self, frame: pd.DataFrame, cut: pd.Timestamp) -> None:
        self.cut = cut
        self.train = frame[frame["at"] < cut]
        test = frame[(frame["at"] >= cut) & frame.customer.notna()]
        known = self.train[self.train.customer.notna()]
        lines = known.drop_duplicates(["customer", "InvoiceNo", "product"])
        self.history: dict[str, dict[str, list[float]]] = {}
        for customer, product, at in zip(
            lines.customer, lines["product"], lines["at"], strict=True
        ):
            age = (cut - at).total_seconds() / 86400
            self.history.setdefault(customer, {}).setdefault(product, []).append(age)
        first = test.sort_values(["at", "InvoiceNo"]).groupby("customer").InvoiceNo.first()
        items = test.groupby("InvoiceNo")["product"].agg(set)
        self.cases: list[tuple[str, set[str], set[str]]] = []
        for customer, invoice in first.items():
            if customer not in self.history:
                continue
            owned = set(self.history[customer])
            target = items[invoice] - owned
            if target:
                self.cases.append((customer, owned, target))
        recent = self.train[self.train["at"] >= cut - pd.Timedelta(days=30)]
        counts = recent.groupby("product").InvoiceNo.nunique().sort_values(ascending=False)
        self.bestsellers = [(key, float(value)) for key, value in counts.items()]

    def fill(self, scores: dict[str, float], owned: set[str]) -> list[str]:
        ranked = sorted(
            ((key, value) for key, value in scores.items() if key not in owned),
            key=lambda item: (-item[1], item[0]),
        )
        out = [key for key, _value in ranked[:N]]
        for key, _count in self.bestsellers:
            if len(out) >= N:
                break
            if key not in owned and key not in out:
                out.append(key)
        return out

    def weights(self, customer: str, half_life: float | None) -> dict[str, float]:
        return {
            product: sum(0.5 ** (age / half_life) for age in ages) if half_life else 1.0
            for product, ages in self.history[customer].items()
        }


def hit_rate(split: Split, recommend: Recommender) -> tuple[float, list[str]]:
    hits, problems = 0, []
    for customer, owned, target in split.cases:
        shown = recommend(customer, owned)
        if len(shown) > N or set(shown) & owned:
            problems.append(f"{customer}: {len(shown)} products, owned ones: {set(shown) & owned}")
        hits += bool(set(shown[:N]) & target)
    return hits / len(split.cases), problems


def engine_rows(split: Split, column: str) -> list[tuple[str, str, float]]:
    result = compute_affinity(
        split.train.InvoiceNo.to_numpy(),
        split.train["product"].to_numpy(),
        min_co_count=2,
        top_k=50,
        metric="cosine",
    )
    ids = result.product_ids
    values = getattr(result, column)
    return [
        (ids[s], ids[t], float(v))
        for s, t, v in zip(result.source, result.target, values, strict=True)
    ]


def by_source(rows: list[tuple[str, str, float]]) -> dict[str, list[tuple[str, str, float]]]:
    grouped: dict[str, list[tuple[str, str, float]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    return grouped


def history_rows(grouped: dict, weights: dict[str, float]) -> list[tuple[str, str, float]]:
    return [row for product in weights for row in grouped.get(product, ())]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cut", default="2011-05-01", help="train before, test after")
    parser.add_argument("--no-als", action="store_true", help="skip the ALS reference")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"{DATA} is missing; nothing measured.")
        return 0
    started = time.perf_counter()
    split = Split(load(DATA), pd.Timestamp(args.cut))
    cosine = by_source(engine_rows(split, "score"))
    confidence = by_source(engine_rows(split, "confidence"))
    customers = sorted(split.history)
    items = sorted(set(split.train["product"]))
    customer_index = {key: i for i, key in enumerate(customers)}
    item_index = {key: i for i, key in enumerate(items)}
    pairs = [
        (customer_index[c], item_index[p])
        for c, products in split.history.items()
        for p in products
    ]
    codes = np.array(pairs)
    model = fit_item_weights(codes[:, 0], codes[:, 1])
    learned = by_source(
        [
            (items[s], items[t], float(w))
            for s, t, w in zip(model.source, model.target, model.weight, strict=True)
        ]
    )

    def bestsellers(customer: str, owned: set[str]) -> list[str]:
        return split.fill({}, owned)

    def plain(customer: str, owned: set[str]) -> list[str]:
        weights = split.weights(customer, None)
        return split.fill(rank(weights, history_rows(cosine, weights), owned), owned)

    def recency(customer: str, owned: set[str]) -> list[str]:
        weights = split.weights(customer, 30)
        return split.fill(rank(weights, history_rows(cosine, weights), owned), owned)

    def partners_prior(customer: str, owned: set[str]) -> list[str]:
        weights = split.weights(customer, None)
        scores = rank(weights, history_rows(confidence, weights), owned, normalise=True)
        return split.fill(with_prior(scores, split.bestsellers[:60]) if scores else {}, owned)

    def customer_model(customer: str, owned: set[str]) -> list[str]:
        weights = split.weights(customer, None)
        return split.fill(rank(weights, history_rows(learned, weights), owned), owned)

    methods: list[tuple[str, Recommender]] = [
        ("bestsellers (last 30 days)", bestsellers),
        ("engine partners, history summed", plain),
        ("engine partners, history by recency (30-day half-life)", recency),
        ("engine partners normalised + bestseller prior (fallback)", partners_prior),
        ("customer model, EASE (default)", customer_model),
    ]
    results, problems = [], []
    for name, method in methods:
        rate, wrong = hit_rate(split, method)
        results.append((name, rate))
        problems += wrong
        print(f"{name}: {rate:.3f}", flush=True)
    als_note = "not run (`--no-als`)"
    if not args.no_als:
        try:
            als = als_reference(split, customer_index, items)
        except ImportError:
            als_note = (
                "not run: `implicit` is not installed (`pip install django-crosssell[bench]`)"
            )
        else:
            best = max(als, key=lambda row: row[1])
            results.append((f"implicit ALS, reference ({best[0]})", best[1]))
            als_note = ", ".join(f"{name} {rate:.3f}" for name, rate in als)
            print(f"ALS: {als_note}", flush=True)
    elapsed = time.perf_counter() - started
    for problem in problems[:10]:
        print("WRONG:", problem)
    if not args.no_write:
        table = "\n".join(f"| {name} | {rate:.3f} |" for name, rate in results)
        body = (
            f"{machine()}. `python benchmarks/personal.py` (cut {args.cut}; {elapsed:.0f} s).\n\n"
            f"Online Retail, trained on orders before the cut; {len(split.cases)} customers "
            "with orders on both sides, each tested on their first order after the cut, "
            "products they had bought before left out of the target and of the "
            "recommendations. Hit rate at 10 (share of customers with at least one of "
            "their new products among 10 recommendations):\n\n"
            f"| method | hit rate@10 |\n|---|---|\n{table}\n\n"
            f"ALS settings tried (factors, regularisation, alpha): {als_note}.\n\n"
            "The customer model (EASE, `CUSTOMERS_MODEL`, λ = 200, top 50 weights per product) "
            "is `recommend_for_customer`'s default; the engine's partners with the bestseller "
            "prior are its fallback when a customer's products are not in the model.\n"
        )
        write_section(SECTION, body)
    return 1 if problems else 0


def als_reference(
    split: Split, customer_index: dict[str, int], items: list[str]
) -> list[tuple[str, float]]:
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares

    item_index = {key: i for i, key in enumerate(items)}
    rows, cols, values = [], [], []
    for customer, products in split.history.items():
        for product, ages in products.items():
            rows.append(customer_index[customer])
            cols.append(item_index[product])
            values.append(float(len(ages)))
    matrix = sp.csr_matrix(
        (np.array(values, dtype=np.float32), (rows, cols)), shape=(len(customer_index), len(items))
    )
    found = []
    for factors, regularization, alpha in ((64, 0.05, 1.0), (128, 0.1, 1.0), (64, 0.05, 10.0)):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=20,
            random_state=1,
        )
        model.fit(matrix, show_progress=False)

        def recommend(customer: str, owned: set[str], model: object = model) -> list[str]:
            row = customer_index[customer]
            ids, _scores = model.recommend(  # type: ignore[attr-defined]
                row, matrix[row], N=N, filter_already_liked_items=True
            )
            return [items[i] for i in ids]

        rate, _wrong = hit_rate(split, recommend)
        found.append((f"{factors}, {regularization}, {alpha}", rate))
    return found


if __name__ == "__main__":
    sys.exit(main())
