"""LWP: complementary categories, pace and the A-D priority with its reasons."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from django_crosssell.customers import lwp
from tests.factories import (
    AffinityRunFactory,
    CategoryFactory,
    ProductAffinityFactory,
    ProductFactory,
    make_order,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def categories():
    coffee, kitchen, books = CategoryFactory(), CategoryFactory(), CategoryFactory()
    beans, mug = ProductFactory(category=coffee), ProductFactory(category=kitchen)
    novel = ProductFactory(category=books)
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=beans, target=mug, co_count=12)
    ProductAffinityFactory(run=run, source=beans, target=novel, co_count=4)
    ProductAffinityFactory(run=run, source=mug, target=novel, co_count=1)  # under the minimum
    return SimpleNamespace(coffee=coffee, kitchen=kitchen, books=books, beans=beans, mug=mug)


def test_complementary_categories_strongest_first(categories):
    found = lwp.complements_for([str(categories.coffee.pk)])
    assert found == [str(categories.kitchen.pk), str(categories.books.pk)]
    assert lwp.complements_for([str(categories.coffee.pk), str(categories.kitchen.pk)]) == [
        str(categories.books.pk)
    ]
    names = lwp.category_names(found)
    assert names[str(categories.kitchen.pk)] == categories.kitchen.name


def test_priority_matrix_and_reasons():
    strong = SimpleNamespace(f_score=5, m_score=2, categories=["1"])
    weak = SimpleNamespace(f_score=2, m_score=3, categories=["1", "2"])
    assert lwp.priority(strong, ["2", "3"])[0] == "A"
    assert lwp.priority(strong, [])[0] == "B"
    assert lwp.priority(weak, ["3", "4"])[0] == "C"
    cell, reasons = lwp.priority(weak, ["3"])
    assert cell == "D"
    assert reasons[0].startswith("Track record is modest: F score 2, M score 3")
    assert "1 complementary categories" in reasons[1]


def test_pace_is_the_customers_own_median_gap(django_user_model, categories):
    user = django_user_model.objects.create_user("p", "p@example.com", "x")
    now = timezone.now()
    for days in (70, 50, 30):
        make_order(categories.beans, customer=user, placed_at=now - timedelta(days=days))
    make_order(categories.mug, customer=user, placed_at=now - timedelta(days=5))
    rows = lwp.pace(user.pk, now)
    beans = next(row for row in rows if row.product == categories.beans.pk)
    assert beans.purchases == 3 and beans.median_gap_days == pytest.approx(20.0)
    assert beans.next_due == pytest.approx(now - timedelta(days=10), abs=timedelta(seconds=1))
    assert [row.product for row in rows] == [categories.beans.pk]  # the mug: bought once
