"""Bestsellers from the run: order counts stored with every run, read in one small query."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_crosssell import cache, runs
from django_crosssell.conf import get_order_line_model
from django_crosssell.models import AffinityRun, ProductSales
from django_crosssell.recommend import FALLBACK, recommend_for_product
from django_crosssell.recommend.queries import bestseller_ids
from django_crosssell.recompute import run_recompute
from tests.factories import CategoryFactory, ProductFactory, make_order
from tests.settings import CROSSSELL

pytestmark = pytest.mark.django_db

# Names like "Product 7" are all alike: no content neighbours in the way of bestsellers.
RUN = {**CROSSSELL, "BESTSELLERS_SOURCE": "run", "SIMILAR_PRODUCTS": False}


@pytest.fixture
def shop():
    """Two categories; in ``kitchen`` x sells 4 orders, y 2, z 1; ``garden`` g sells 3."""
    kitchen, garden = CategoryFactory(), CategoryFactory()
    x, y, z, new = (ProductFactory(category=kitchen) for _ in range(4))
    g = ProductFactory(category=garden)
    for _ in range(2):
        make_order(x, y)
    make_order(x, g)
    make_order(x, x, g)  # one order, two lines of x: counts once
    make_order(z, g)
    return {"kitchen": kitchen, "garden": garden, "x": x, "y": y, "z": z, "new": new, "g": g}


def table_of(model) -> str:
    return model._meta.db_table


def test_a_run_stores_each_products_order_count(shop):
    run = run_recompute(min_co_count=1)
    counts = dict(ProductSales.objects.filter(run=run).values_list("product_id", "orders"))
    assert counts == {shop["x"].pk: 4, shop["y"].pk: 2, shop["z"].pk: 1, shop["g"].pk: 3}


@override_settings(CROSSSELL=RUN)
def test_the_fallback_reads_the_run_not_the_order_lines(shop):
    run_recompute(min_co_count=1)
    cache.invalidate()
    line_table = table_of(get_order_line_model())
    with CaptureQueriesContext(connection) as queries:
        recs = recommend_for_product(shop["new"], limit=4)
    # A product with no partners gets its category's bestsellers, best first.
    assert [rec.product for rec in recs] == [shop["x"], shop["y"], shop["z"]]
    assert {rec.source for rec in recs} == {FALLBACK}
    assert [rec.score for rec in recs] == [4.0, 2.0, 1.0]
    assert len(queries) <= 2
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert table_of(ProductSales) in sql
    assert line_table not in sql


@override_settings(CROSSSELL={**RUN, "BESTSELLERS_SOURCE": "order_lines"})
def test_order_lines_keeps_the_previous_behaviour(shop):
    # No recompute at all: the order lines are aggregated in the request.
    cache.invalidate()
    with CaptureQueriesContext(connection) as queries:
        recs = recommend_for_product(shop["new"], limit=4)
    assert [rec.product for rec in recs] == [shop["x"], shop["y"], shop["z"]]
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert table_of(get_order_line_model()) in sql
    assert table_of(ProductSales) not in sql


@override_settings(CROSSSELL=RUN)
def test_without_a_run_there_are_no_bestsellers(shop):
    cache.invalidate()
    assert recommend_for_product(shop["new"], limit=4) == []


@override_settings(CROSSSELL=RUN)
def test_bestseller_ids_is_one_query_per_category(shop, django_assert_num_queries):
    run_recompute(min_co_count=1)
    with django_assert_num_queries(1):
        assert bestseller_ids([shop["kitchen"].pk]) == [shop["x"].pk, shop["y"].pk, shop["z"].pk]
    with django_assert_num_queries(1):
        assert bestseller_ids([shop["garden"].pk], limit=5) == [shop["g"].pk]
    with django_assert_num_queries(1):
        assert bestseller_ids(None, limit=2) == [shop["x"].pk, shop["g"].pk]
    with django_assert_num_queries(1):
        assert bestseller_ids([shop["kitchen"].pk, shop["garden"].pk], limit=2) == [
            shop["x"].pk,
            shop["g"].pk,
        ]


@override_settings(CROSSSELL=RUN)
def test_bestseller_ids_follow_the_current_run(shop):
    first = run_recompute(min_co_count=1)
    for _ in range(5):
        make_order(shop["z"])
    second = run_recompute(min_co_count=1)
    assert bestseller_ids([shop["kitchen"].pk]) == [shop["z"].pk, shop["x"].pk, shop["y"].pk]
    runs.make_current(first)
    assert bestseller_ids([shop["kitchen"].pk]) == [shop["x"].pk, shop["y"].pk, shop["z"].pk]
    assert second.pk != first.pk


def test_failed_and_pruned_runs_lose_their_sales(shop):
    run = run_recompute(min_co_count=1)
    assert ProductSales.objects.filter(run=run).exists()
    runs.mark_failed(run, RuntimeError("boom"))
    assert not ProductSales.objects.filter(run=run).exists()
    kept = [run_recompute(min_co_count=1, allow_shrink=True) for _ in range(4)]
    runs.prune_runs(keep=2)
    remaining = set(AffinityRun.objects.values_list("pk", flat=True))
    assert set(ProductSales.objects.values_list("run_id", flat=True)) <= remaining
    assert ProductSales.objects.filter(run=kept[-1]).count() == 4
