"""Read-only admin pages of the engine's tables: a run's sales and content neighbours.

Their lists cost the same few queries however many rows a page shows (the products and the
run come with the rows), and nobody can add, change or delete a row by hand.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_crosssell.models import ProductSales, ProductSimilarity
from tests.factories import AffinityRunFactory, ProductFactory

pytestmark = pytest.mark.django_db

SALES = "admin:django_crosssell_productsales_changelist"
SIMILAR = "admin:django_crosssell_productsimilarity_changelist"


def fill(n, run=None):
    run = run or AffinityRunFactory(current=True)
    products = ProductFactory.create_batch(n + 1)
    ProductSales.objects.bulk_create(
        ProductSales(run=run, product=p, orders=10 + i) for i, p in enumerate(products)
    )
    ProductSimilarity.objects.bulk_create(
        ProductSimilarity(run=run, source=a, target=b, score=0.5 + i / 1000)
        for i, (a, b) in enumerate(pairwise(products))
    )
    return run, products


def queries(client, name):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(name))
    assert response.status_code == 200
    return len(captured), response


@pytest.mark.parametrize("name", [SALES, SIMILAR])
def test_lists_cost_the_same_queries_for_5_and_40_rows(admin_client, name):
    run, _ = fill(5)
    few, response = queries(admin_client, name)
    assert response.content.decode().count('class="action-select"') >= 5
    fill(35, run)
    many, response = queries(admin_client, name)
    assert response.content.decode().count('class="action-select"') >= 40
    assert many == few
    assert few <= 12


def test_sales_list_shows_products_and_counts_best_first(admin_client):
    _, products = fill(3)
    html = admin_client.get(reverse(SALES)).content.decode()
    best, worst = products[-1], products[0]
    assert best.name in html and worst.name in html
    assert html.index(best.name) < html.index(worst.name)  # ordering -orders
    assert ">13<" in html


def test_similarity_list_shows_rounded_scores_and_searches_by_source_name(admin_client):
    _, products = fill(3)
    html = admin_client.get(reverse(SIMILAR)).content.decode()
    assert "0.502" in html
    found = admin_client.get(reverse(SIMILAR), {"q": products[1].name}).content.decode()
    assert "1 result" in found or "1 件" in found


@pytest.mark.parametrize("model", [ProductSales, ProductSimilarity])
def test_rows_are_read_only(admin_client, model, django_assert_max_num_queries):
    fill(2)
    row = model.objects.first()
    info = (model._meta.app_label, model._meta.model_name)
    with django_assert_max_num_queries(12):
        page = admin_client.get(reverse("admin:{}_{}_change".format(*info), args=[row.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 403
    changed = admin_client.post(reverse("admin:{}_{}_change".format(*info), args=[row.pk]), {})
    assert changed.status_code == 403
