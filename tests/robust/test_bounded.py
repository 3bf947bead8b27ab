"""Bounded waits: a locked table costs a widget its lock timeout, never the page.

The PostgreSQL tests lock the affinity table ``ACCESS EXCLUSIVE`` from a second
connection (what a long migration or ``VACUUM FULL`` does) and render a page of widgets.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.template import Context, Template
from django.test import override_settings

from django_crosssell import cache
from django_crosssell import models as cs
from django_crosssell.timeouts import bounded, is_timeout
from tests.factories import (
    AffinityRunFactory,
    CategoryFactory,
    ProductAffinityFactory,
    ProductFactory,
    ProductRelationFactory,
    TierLadderFactory,
    TierStepFactory,
)
from tests.services import other_connection, require_postgresql
from tests.settings import CROSSSELL

PAGE = (
    "<main>page body</main>"
    "{% also_recommended product %}"
    "<aside>between widgets</aside>"
    "{% upgrade_prompt tier %}"
)


def render(**context) -> str:
    return Template("{% load crosssell %}" + PAGE).render(Context(context))


def cards(html: str) -> list[str]:
    return re.findall(r'data-crosssell-product="([^"]+)"', html)


@pytest.fixture
def shop():
    category = CategoryFactory()
    source = ProductFactory(category=category, name="Kettle", price=Decimal("4980"))
    partner = ProductFactory(category=category, name="Beans")
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=source, target=partner, co_count=9, score=0.5, lift=2)
    ladder = TierLadderFactory()
    basic = ProductFactory(category=category, name="Basic", price=Decimal("3000"))
    better = ProductFactory(category=category, name="Better", price=Decimal("4000"))
    TierStepFactory(ladder=ladder, product=basic, rank=1)
    TierStepFactory(ladder=ladder, product=better, rank=2)
    return {"product": source, "partner": partner, "tier": basic, "better": better}


@contextlib.contextmanager
def locked(model) -> Iterator[None]:
    """Hold ``ACCESS EXCLUSIVE`` on ``model``'s table from another connection."""
    other = other_connection()
    try:
        other.execute(f'LOCK TABLE "{model._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        yield
    finally:
        other.rollback()
        other.close()


def _settings(**values):
    return override_settings(CROSSSELL={**CROSSSELL, **values}, DEBUG=False)


@pytest.mark.django_db(transaction=True)
def test_a_locked_affinity_table_costs_a_widget_not_the_page(shop, caplog):
    require_postgresql()
    with (
        _settings(QUERY_TIMEOUT_MS=300, LOCK_TIMEOUT_MS=150),
        locked(cs.ProductAffinity),
        caplog.at_level(logging.WARNING),
    ):
        started = time.monotonic()
        html = render(**shop)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert "page body" in html and "between widgets" in html
    assert str(shop["better"].pk) in html  # the tier widget, which reads other tables
    assert str(shop["partner"].pk) not in cards(html)  # the locked widget rendered empty
    assert "also_recommended widget rendered empty" in caplog.text
    assert "LockNotAvailable" in caplog.text or "lock timeout" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_locked_table_serves_the_stale_copy_when_there_is_one(shop):
    require_postgresql()
    with _settings(QUERY_TIMEOUT_MS=300, LOCK_TIMEOUT_MS=150):
        warm = render(**shop)
        assert str(shop["partner"].pk) in cards(warm)
        cache.invalidate()  # a new run or an edit made everything stale
        with locked(cs.ProductAffinity):
            started = time.monotonic()
            html = render(**shop)
            assert time.monotonic() - started < 1.0
    assert str(shop["partner"].pk) in cards(html)  # the previous markup, not nothing


@pytest.mark.django_db(transaction=True)
def test_atomic_requests_one_failing_widget_leaves_the_transaction_usable(shop):
    """With ATOMIC_REQUESTS the page runs in one transaction: a cancelled widget query
    must not poison it for the widgets after it or for the host's own queries."""
    require_postgresql()
    with _settings(QUERY_TIMEOUT_MS=300, LOCK_TIMEOUT_MS=150), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            before = cursor.fetchone()[0]
        with locked(cs.ProductAffinity):
            html = render(**shop)
        assert str(shop["better"].pk) in html
        assert cs.TierLadder.objects.count() == 1  # the host's transaction still works
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == before  # the widget's SET LOCAL did not leak


@pytest.mark.django_db(transaction=True)
def test_a_slow_statement_is_cancelled(shop):
    require_postgresql()
    with _settings(QUERY_TIMEOUT_MS=100, LOCK_TIMEOUT_MS=100):
        started = time.monotonic()
        with pytest.raises(Exception) as raised, bounded(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 1.0
    assert is_timeout(raised.value)
    assert cs.TierLadder.objects.count() == 1  # the connection is usable afterwards


@pytest.mark.django_db(transaction=True)
def test_a_public_endpoint_answers_503_json_when_its_table_is_locked(shop, client):
    require_postgresql()
    url = f"/api/crosssell/products/{shop['product'].pk}/recommendations/"
    with _settings(QUERY_TIMEOUT_MS=300, LOCK_TIMEOUT_MS=150), locked(cs.ProductAffinity):
        started = time.monotonic()
        response = client.get(url, HTTP_ACCEPT="application/json")
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert response["Retry-After"]


def test_without_postgresql_bounded_runs_no_statement(db, django_assert_num_queries, monkeypatch):
    # Elsewhere there are no per-statement timeouts to set: no savepoint, no SET LOCAL.
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with django_assert_num_queries(1), bounded():
        assert cs.TierLadder.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_block_without_queries_costs_nothing(django_assert_num_queries):
    with django_assert_num_queries(0), bounded():
        pass
    with django_assert_num_queries(0), bounded():
        ProductRelationFactory.build()  # builds without saving
