"""Offline evaluation of the engine: leave-one-out basket completion.

Pure numpy/scipy like :mod:`.affinity` (no Django): ``crosssell_evaluate``, the benchmarks
and the tests call it with baskets, and get hit rate at ``k`` and catalogue coverage for
each configuration. Two protocols:

* :func:`evaluate_leave_one_out`: a random 80/20 split of the baskets, repeated over
  seeds (baskets without timestamps, e.g. Groceries; the protocol of
  ``shared/data/README.md``);
* :func:`evaluate_time_split`: train on the baskets before a time, test on those after
  (what a shop experiences: the model is fitted on the past and used on the future).

In both, each item of every test basket with at least two items is hidden in turn, the
other items' partner scores are summed for every candidate (what the cart widget does),
items already in the basket are excluded, and a hit is counted when the hidden item is
among the ``k`` best. Ties (and candidates no basket item points at) are ordered by
popularity, which is what the storefront's bestseller fallback does.

A configuration may also name an external ``model``: a callable that takes the train
order x item matrix and returns an item x item similarity (``implicit``'s item-item
models are wrapped so in ``crosssell_evaluate``), scored by the same code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from . import affinity

#: ``model(train)``: train is an orders x items CSR matrix of ones (float32); returns the
#: items x items similarity (sparse or dense), row = basket item, column = candidate.
SimilarityModel = Callable[[sparse.csr_matrix], Any]


@dataclass(frozen=True)
class Configuration:
    """One way of scoring candidates; ``metric=None`` and no ``model``: popularity."""

    name: str
    metric: str | None = None
    min_co_count: int = 1
    top_k: int | None = None
    order_weighting: str = "none"
    half_life_days: float | None = None
    max_basket_size: int | None = None
    model: SimilarityModel | None = field(default=None, compare=False)

    @classmethod
    def of(cls, value: Configuration | tuple[Any, ...]) -> Configuration:
        """Accept the older ``(name, metric, min_co_count, top_k)`` tuples too."""
        if isinstance(value, Configuration):
            return value
        return cls(*value)


@dataclass
class EvaluationRow:
    name: str
    metric: str | None
    min_co_count: int
    top_k: int | None
    hit_rate: float
    coverage: float
    trials: int
    hit_rates: list[float]
    #: Standard error of the hit rate (binomial, over the trials of every split).
    standard_error: float = 0.0
    seconds: float = 0.0


@dataclass
class _Tally:
    hits: list[float] = field(default_factory=list)
    trials: int = 0
    hit_count: int = 0
    covered: np.ndarray | None = None
    seconds: float = 0.0


def _code(baskets: Sequence[Sequence[Any]]) -> tuple[list[np.ndarray], int]:
    unique_items = sorted({item for basket in baskets for item in basket}, key=str)
    code_of = {item: code for code, item in enumerate(unique_items)}
    coded = [np.unique(np.fromiter((code_of[i] for i in b), np.int64)) for b in baskets]
    return coded, len(unique_items)


def _similarity(
    config: Configuration,
    train: list[np.ndarray],
    n_items: int,
    train_ages: np.ndarray | None,
) -> np.ndarray:
    """The dense item x item score matrix a configuration learns from ``train``."""
    similarity = np.zeros((n_items, n_items))
    if config.metric is None and config.model is None:
        return similarity
    sizes = [len(b) for b in train]
    orders = np.repeat(np.arange(len(train)), sizes)
    items = np.concatenate(train) if train else np.zeros(0, np.int64)
    if config.model is not None:
        matrix = sparse.csr_matrix(
            (np.ones(len(items), np.float32), (orders, items)), shape=(len(train), n_items)
        )
        learned = config.model(matrix)
        learned = learned.toarray() if sparse.issparse(learned) else np.asarray(learned)
        similarity[:, :] = learned
        return similarity
    placed_at = None
    now = None
    if config.half_life_days is not None:
        if train_ages is None:
            raise affinity.AffinityInputError("half_life_days needs baskets with times.")
        # Ages in days before the split, as datetimes for the engine.
        now = np.datetime64("2000-01-01T00:00:00", "ns")
        order_time = now - (np.asarray(train_ages) * affinity.NANOSECONDS_PER_DAY).astype(
            "timedelta64[ns]"
        )
        placed_at = order_time[orders]
    result = affinity.compute_affinity(
        orders,
        items,
        placed_at,
        min_co_count=config.min_co_count,
        top_k=config.top_k,
        metric=config.metric or affinity.DEFAULT_METRIC,
        half_life_days=config.half_life_days,
        order_weighting=config.order_weighting,
        max_basket_size=config.max_basket_size,
        now=now,
    )
    ids = result.product_ids.astype(np.int64)
    similarity[ids[result.source], ids[result.target]] = result.score
    return similarity


def _score(
    similarity: np.ndarray,
    test: list[np.ndarray],
    popularity: np.ndarray,
    k: int,
    covered: np.ndarray,
) -> tuple[int, int]:
    """Hits and trials of leave-one-out completion of the ``test`` baskets."""
    n_items = len(popularity)
    # Columns in popularity order (descending, then code): a stable sort on the score then
    # breaks ties by popularity, as the storefront does.
    by_popularity = np.lexsort((np.arange(n_items), -popularity))
    sim = similarity[:, by_popularity]
    position = np.empty(n_items, np.int64)
    position[by_popularity] = np.arange(n_items)
    unknown = popularity[by_popularity] == 0
    hits = trials = 0
    for basket in test:
        if len(basket) < 2:
            continue
        rows = sim[basket]
        scores = rows.sum(axis=0)[None, :] - rows  # one row per hidden item
        columns = position[basket]
        diagonal = np.arange(len(basket))
        hidden = scores[diagonal, columns]
        scores[:, columns] = -np.inf  # the rest of the basket is excluded...
        scores[diagonal, columns] = hidden  # ...but the hidden item is a candidate
        scores[:, unknown] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        valid = np.take_along_axis(scores, top, axis=1) > -np.inf
        covered[by_popularity[top[valid]]] = True
        hits += int(((top == columns[:, None]) & valid).any(axis=1).sum())
        trials += len(basket)
    return hits, trials


def _rows(configurations: list[Configuration], tallies: dict[str, _Tally]) -> list[EvaluationRow]:
    out = []
    for config in configurations:
        tally = tallies[config.name]
        assert tally.covered is not None
        p = tally.hit_count / tally.trials if tally.trials else 0.0
        out.append(
            EvaluationRow(
                name=config.name,
                metric=config.metric,
                min_co_count=config.min_co_count,
                top_k=config.top_k,
                hit_rate=float(np.mean(tally.hits)) if tally.hits else 0.0,
                coverage=float(tally.covered.sum() / len(tally.covered)),
                trials=tally.trials,
                hit_rates=[float(h) for h in tally.hits],
                standard_error=float(np.sqrt(p * (1 - p) / tally.trials)) if tally.trials else 0.0,
                seconds=tally.seconds,
            )
        )
    return out


def _run_split(
    configurations: list[Configuration],
    tallies: dict[str, _Tally],
    train: list[np.ndarray],
    test: list[np.ndarray],
    n_items: int,
    k: int,
    train_ages: np.ndarray | None = None,
) -> None:
    import time

    items = np.concatenate(train) if train else np.zeros(0, np.int64)
    popularity = np.bincount(items, minlength=n_items)
    for config in configurations:
        tally = tallies[config.name]
        if tally.covered is None:
            tally.covered = np.zeros(n_items, bool)
        began = time.perf_counter()
        similarity = _similarity(config, train, n_items, train_ages)
        tally.seconds += time.perf_counter() - began
        hits, trials = _score(similarity, test, popularity, k, tally.covered)
        tally.hits.append(hits / trials if trials else 0.0)
        tally.trials += trials
        tally.hit_count += hits


def evaluate_leave_one_out(
    baskets: Sequence[Sequence[Any]],
    configurations: Sequence[Configuration | tuple[Any, ...]],
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    test_fraction: float = 0.2,
    k: int = 10,
) -> list[EvaluationRow]:
    """Random-split leave-one-out completion, averaged over ``seeds`` (module docstring).

    Coverage is the share of the catalogue that appears in at least one top-``k`` list.
    """
    configs = [Configuration.of(c) for c in configurations]
    coded, n_items = _code(baskets)
    tallies = {config.name: _Tally() for config in configs}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        permutation = rng.permutation(len(coded))
        n_test = round(len(coded) * test_fraction)
        test = [coded[i] for i in permutation[:n_test]]
        train = [coded[i] for i in permutation[n_test:]]
        _run_split(configs, tallies, train, test, n_items, k)
    return _rows(configs, tallies)


def evaluate_time_split(
    baskets: Sequence[Sequence[Any]],
    times: Sequence[Any] | np.ndarray,
    configurations: Sequence[Configuration | tuple[Any, ...]],
    *,
    test_fraction: float = 0.2,
    k: int = 10,
) -> list[EvaluationRow]:
    """Train on the baskets before a time, test on the later ones.

    The split time is the one that leaves ``test_fraction`` of the baskets after it; the
    train baskets' ages (days before the split) feed configurations with a half-life.
    """
    configs = [Configuration.of(c) for c in configurations]
    stamps = np.asarray(times, dtype="datetime64[ns]").astype(np.int64)
    if len(stamps) != len(baskets):
        raise affinity.AffinityInputError("times must have one entry per basket.")
    coded, n_items = _code(baskets)
    split = np.quantile(stamps, 1 - test_fraction, method="lower")
    is_train = stamps < split
    train = [b for b, t in zip(coded, is_train, strict=True) if t]
    test = [b for b, t in zip(coded, is_train, strict=True) if not t]
    ages = (split - stamps[is_train]) / affinity.NANOSECONDS_PER_DAY
    tallies = {config.name: _Tally() for config in configs}
    _run_split(configs, tallies, train, test, n_items, k, train_ages=ages)
    return _rows(configs, tallies)


#: The comparison ``crosssell_evaluate`` reports by default for a shop or a basket file.
EVALUATION_CONFIGURATIONS: tuple[Configuration, ...] = (
    Configuration("popularity"),
    Configuration("co_count", "co_count"),
    Configuration("confidence", "confidence"),
    Configuration("cosine", "cosine"),
    Configuration("jaccard", "jaccard"),
    Configuration("lift (raw)", "lift"),
    Configuration("lift, co_count >= 5", "lift", 5),
)

#: The candidate defaults of the README's "Choosing the defaults" table (``--table``).
DEFAULTS_CANDIDATES: tuple[Configuration, ...] = (
    Configuration("popularity"),
    Configuration("cosine (0.x default)", "cosine", 2, 50),
    Configuration("confidence", "confidence", 2, 50),
    Configuration("cosine, 1/size", "cosine", 2, 50, "inverse_size"),
    Configuration("cosine, bm25", "cosine", 2, 50, "bm25"),
    Configuration("confidence, 1/size", "confidence", 2, 50, "inverse_size"),
    Configuration("co_count, 1/size", "co_count", 2, 50, "inverse_size"),
    Configuration("cosine, 1/size, cap 100", "cosine", 2, 50, "inverse_size", None, 100),
    Configuration("cosine, 1/size, cap 300", "cosine", 2, 50, "inverse_size", None, 300),
    Configuration("cosine, 1/size, 90-day half-life", "cosine", 2, 50, "inverse_size", 90.0),
)


def implicit_models(k_neighbours: int = 20) -> tuple[Configuration, ...]:
    """``implicit``'s item-item models (BM25, TF-IDF, cosine) as configurations.

    ``implicit`` is a benchmark dependency (``pip install django-crosssell[bench]``), never
    a runtime one; without it this returns nothing. Each model keeps its
    ``K=k_neighbours`` nearest neighbours per item (implicit's default is 20) with its
    default parameters.
    """
    try:
        nearest = importlib.import_module("implicit.nearest_neighbours")
    except ImportError:
        return ()
    BM25Recommender = nearest.BM25Recommender
    CosineRecommender = nearest.CosineRecommender
    TFIDFRecommender = nearest.TFIDFRecommender

    def wrap(factory: Callable[[], Any]) -> SimilarityModel:
        def fit(train: sparse.csr_matrix) -> Any:
            model = factory()
            model.fit(train, show_progress=False)
            return model.similarity

        return fit

    return tuple(
        Configuration(f"implicit {label} (K={k_neighbours})", model=wrap(factory))
        for label, factory in (
            ("BM25", lambda: BM25Recommender(K=k_neighbours, num_threads=1)),
            ("TF-IDF", lambda: TFIDFRecommender(K=k_neighbours, num_threads=1)),
            ("cosine", lambda: CosineRecommender(K=k_neighbours, num_threads=1)),
        )
    )


def evaluate(
    baskets: Sequence[Sequence[Any]],
    times: np.ndarray | None,
    configurations: Sequence[Configuration | tuple[Any, ...]],
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    k: int = 10,
) -> list[EvaluationRow]:
    """A time split when the baskets have times, otherwise the random split over seeds.

    Configurations with a half-life are left out without times (nothing to decay by).
    """
    configs = [Configuration.of(c) for c in configurations]
    if times is not None:
        return evaluate_time_split(baskets, times, configs, k=k)
    configs = [c for c in configs if c.half_life_days is None]
    return evaluate_leave_one_out(baskets, configs, seeds=seeds, k=k)
