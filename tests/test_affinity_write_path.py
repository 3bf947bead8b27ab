"""The affinity write path: a table without enforced foreign keys or a uniqueness index.

``ProductAffinity`` relies on its one writer and on Django's delete collector instead of
database constraints (see the model's docstring). These tests pin what that trade needs:
the writer never writes a pair twice and writes in index order, deleting a product or a
run still removes its rows, a dangling row never breaks a widget, and the table keeps the
one index the readers and pruning use.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter

import numpy as np
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_crosssell import affinity, recompute, runs, writer
from django_crosssell.models import AffinityRun, ProductAffinity
from django_crosssell.recommend import recommend_for_product
from tests.factories import ProductFactory, make_order

N_PRODUCTS = 10

baskets_strategy = st.lists(
    st.lists(st.integers(min_value=0, max_value=N_PRODUCTS - 1), min_size=1, max_size=6),
    min_size=1,
    max_size=30,
)


@pytest.fixture
def products(db):
    return ProductFactory.create_batch(N_PRODUCTS)


def pending_pairs(products, baskets, top_k):
    """``baskets`` (indices into ``products``) as the recompute hands them to the writer."""
    ids = np.array([products[i].pk for i in range(N_PRODUCTS)], dtype=object)
    orders = np.array([o for o, basket in enumerate(baskets) for _ in basket], dtype=np.int64)
    items = np.array([ids[i] for basket in baskets for i in basket], dtype=object)
    matrix = affinity.order_products_by_id(affinity.build_basket_matrix(orders, items))
    params = {"min_co_count": 1, "top_k": top_k, "metric": "confidence"}
    return writer.PendingPairs(baskets=matrix, params=params, parameters={})


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(baskets=baskets_strategy, top_k=st.sampled_from([None, 1, 3]))
def test_the_writer_writes_each_pair_once_and_exactly_the_engines_pairs(products, baskets, top_k):
    pending = pending_pairs(products, baskets, top_k)
    expected = pending.result().to_frame()
    run = AffinityRun.objects.create(status=AffinityRun.Status.RUNNING)
    try:
        written = writer.write_affinities(run, pending)
        rows = list(
            ProductAffinity.objects.filter(run=run)
            .order_by("pk")
            .values_list("source_id", "target_id", "co_count", "score")
        )
        pairs = Counter((source, target) for source, target, _, _ in rows)
        assert not [pair for pair, n in pairs.items() if n > 1]
        assert all(source != target for source, target in pairs)
        assert written == len(rows) == len(expected)
        assert {(s, t): (c, v) for s, t, c, v in rows} == {
            (s, t): (int(c), float(v))
            for s, t, c, v in expected[["source", "target", "co_count", "score"]].itertuples(
                index=False
            )
        }
        if connection.vendor == "postgresql":
            # Written in the (run, source, -score) index order: ``id`` follows the COPY.
            keys = [(source, -score) for source, _, _, score in rows]
            assert keys == sorted(keys)
    finally:
        ProductAffinity.objects.filter(run=run).delete()
        run.delete()


def test_products_are_put_in_id_order_without_changing_the_pairs():
    orders = np.array([0, 0, 1, 1, 2, 2, 2], dtype=np.int64)
    items = np.array([30, 10, 30, 20, 10, 20, 30], dtype=np.int64)  # first seen: 30, 10, 20
    baskets = affinity.build_basket_matrix(orders, items)
    ordered = affinity.order_products_by_id(baskets)
    assert ordered.product_ids.tolist() == [10, 20, 30]
    options = {"min_co_count": 1, "top_k": None, "metric": "confidence"}

    def pairs(matrix):
        frame = affinity.compute_pairs(matrix, **options).to_frame()
        return sorted(frame.itertuples(index=False, name=None))

    assert pairs(ordered) == pairs(baskets)
    sources = affinity.compute_pairs(ordered, **options).to_frame()["source"].tolist()
    assert sources == sorted(sources)  # the engine now emits sources in index order
    assert affinity.order_products_by_id(ordered) is ordered  # in order already


def test_uuid_products_are_ordered_bytewise_like_postgresql():
    values = [uuid.uuid4() for _ in range(6)]
    baskets = affinity.build_basket_matrix(
        np.zeros(6, dtype=np.int64), np.array(values, dtype=object)
    )
    ordered = affinity.order_products_by_id(baskets)
    assert [value.bytes for value in ordered.product_ids] == sorted(v.bytes for v in values)


@pytest.fixture
def computed(db):
    a, b, c = ProductFactory.create_batch(3)
    for _ in range(2):
        make_order(a, b, c)
    run = recompute.run_recompute(min_co_count=1)
    assert run.pairs_written == 6
    return a, b, c, run


def test_deleting_a_product_deletes_its_rows_as_source_and_as_target(computed):
    a, b, c, run = computed
    b.delete()
    pairs = set(ProductAffinity.objects.filter(run=run).values_list("source_id", "target_id"))
    assert pairs == {(a.pk, c.pk), (c.pk, a.pk)}


def test_deleting_or_pruning_a_run_deletes_its_rows(computed):
    *_, first = computed
    second = recompute.run_recompute(min_co_count=1, top_k=1)
    assert runs.prune_runs(keep=1) == 1  # keeps the current run only
    assert not AffinityRun.objects.filter(pk=first.pk).exists()
    assert set(ProductAffinity.objects.values_list("run_id", flat=True)) == {second.pk}
    second.delete()  # the ORM cascade, without a database constraint behind it
    assert not ProductAffinity.objects.exists()


def test_a_row_pointing_at_a_missing_product_never_reaches_a_widget(computed):
    a, b, c, run = computed
    ghost = uuid.uuid4()  # a product deleted behind Django's back, e.g. by raw SQL
    ProductAffinity.objects.create(
        run=run, source=a, target_id=ghost, co_count=9, support=1, confidence=1, lift=9, score=9
    )
    recs = recommend_for_product(a, limit=10)
    assert ghost not in {rec.product.pk for rec in recs}
    assert {rec.product.pk for rec in recs} >= {b.pk, c.pk}


def test_the_table_has_no_enforced_foreign_keys_and_one_index_besides_the_key(db):
    table = ProductAffinity._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    assert [name for name, info in constraints.items() if info["foreign_key"]] == []
    unique = [
        info["columns"]
        for info in constraints.values()
        if info["unique"] and not info["primary_key"]
    ]
    assert unique == []
    indexes = {
        name: info["columns"]
        for name, info in constraints.items()
        if info["index"] and not info["primary_key"] and not info["unique"]
    }
    assert indexes == {"crosssell_aff_run_source_idx": ["run_id", "source_id", "score"]}


def test_one_column_list_drives_every_writer():
    """The engine's per-pair arrays are exactly the table's columns after ``run``."""
    assert ("run", *affinity.PAIR_FIELDS) == writer.COLUMNS
    assert set(affinity.PAIR_FIELDS) <= {
        f.name for f in dataclasses.fields(affinity.AffinityResult)
    }
    stored_columns = {
        field.name for field in ProductAffinity._meta.concrete_fields if not field.primary_key
    }
    assert stored_columns == set(writer.COLUMNS)
