"""The customer metrics snapshot on orders with a known answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from django_crosssell.models import CustomerMetrics, MetricsSnapshot, Segment
from tests.factories import OrderFactory, OrderLineFactory, ProductFactory, make_order
from tests.testapp import models as shop

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


@pytest.fixture
def people(django_user_model):
    return {
        name: django_user_model.objects.create_user(name, f"{name}@example.com", "x")
        for name in ("regular", "lapsed", "newcomer")
    }


@pytest.fixture
def history(people):
    kettle = ProductFactory(price=Decimal("1000"))
    beans = ProductFactory(price=Decimal("1500"))
    for days in (10, 40, 70):  # every 30 days, 1,000 yen each
        make_order(kettle, placed_at=days_ago(days), customer=people["regular"])
    make_order(kettle, beans, placed_at=days_ago(400), customer=people["lapsed"])
    order = OrderFactory(placed_at=days_ago(2), customer=people["newcomer"])
    OrderLineFactory(order=order, product=beans, quantity=3)  # 4,500 yen
    # Neither counts: a cancelled order and a guest's.
    make_order(kettle, placed_at=days_ago(1), customer=people["lapsed"], status="cancelled")
    make_order(kettle, placed_at=days_ago(1))
    return {"kettle": kettle, "beans": beans}


def metrics(user) -> CustomerMetrics:
    return CustomerMetrics.objects.select_related("segment", "previous_segment").get(
        customer=str(user.pk)
    )


def run(scorer: str = "ja_repeat"):
    from django_crosssell.customers.snapshot import run_snapshot

    return run_snapshot(as_of=AS_OF, scorer=scorer)


def test_the_ten_segments_are_seeded_and_cover_the_grid():
    segments = list(Segment.objects.all())
    assert len(segments) == 10
    for r in range(1, 6):
        for f in range(1, 6):
            assert sum(segment.covers(r, f) for segment in segments) == 1, (r, f)
    assert Segment.objects.get(slug="champions").name_ja == "優良顧客"


def test_metrics_of_known_histories(people, history):
    snapshot = run()
    assert snapshot.customers == 3
    regular = metrics(people["regular"])
    assert (regular.recency_days, regular.frequency) == (10, 3)
    assert regular.monetary == Decimal("3000.00")
    assert regular.average_order_value == Decimal("1000.00")
    assert regular.median_gap_days == pytest.approx(30.0)
    assert (regular.r_score, regular.f_score) == (5, 3)  # <= 30 days; 3 orders
    assert regular.segment.slug == "potential-loyalists"
    lapsed = metrics(people["lapsed"])
    assert (lapsed.recency_days, lapsed.frequency, lapsed.monetary) == (400, 1, Decimal("2500.00"))
    assert lapsed.median_gap_days is None
    assert (lapsed.r_score, lapsed.f_score, lapsed.segment.slug) == (1, 1, "hibernating")
    newcomer = metrics(people["newcomer"])
    assert newcomer.monetary == Decimal("4500.00")
    assert newcomer.segment.slug == "new"
    assert newcomer.decile == 1  # the most revenue
    assert sorted(newcomer.categories) == [str(history["beans"].category_id)]
    assert snapshot.segment_counts == {"potential-loyalists": 1, "hibernating": 1, "new": 1}
    assert sum(map(sum, snapshot.grid)) == 3
    assert snapshot.grid[0][0] == 1  # R1 F1: the lapsed customer
    assert snapshot.thresholds["r"]["5"] == 30


def test_every_customer_with_an_order_gets_a_segment_under_each_scorer(people, history):
    for scorer in ("quantile", "ja_repeat", "ja_one_off", "tertile"):
        run(scorer)
        assert CustomerMetrics.objects.count() == 3
        assert not CustomerMetrics.objects.filter(segment__isnull=True).exists()


def test_a_second_run_changes_nothing(people, history):
    run()
    before = list(CustomerMetrics.objects.order_by("customer").values())
    snapshot = run()
    after = list(CustomerMetrics.objects.order_by("customer").values())
    assert snapshot.transitions == {}
    for old, new in zip(before, after, strict=True):
        for name in ("id", "snapshot_id"):
            old.pop(name), new.pop(name)
        assert old == new


def test_a_segment_change_keeps_the_previous_segment(people, history):
    first = run()
    assert first.transitions == {
        "|hibernating": 1,
        "|new": 1,
        "|potential-loyalists": 1,
    }  # everyone is new to the snapshot
    changed_before = metrics(people["lapsed"]).segment_changed_at
    for days in (5, 15, 25):
        make_order(history["kettle"], placed_at=days_ago(days), customer=people["lapsed"])
    second = run()
    lapsed = metrics(people["lapsed"])
    assert (lapsed.r_score, lapsed.f_score) == (5, 3)
    assert lapsed.previous_segment.slug == "hibernating"
    assert lapsed.segment.slug == "potential-loyalists"
    assert lapsed.segment_changed_at > changed_before
    assert second.transitions == {"hibernating|potential-loyalists": 1}
    regular = metrics(people["regular"])
    assert regular.previous_segment is None  # unchanged


def test_customers_whose_orders_are_gone_lose_their_row(people, history):
    run()
    shop.Order.objects.filter(customer=people["lapsed"]).delete()
    run()
    assert not CustomerMetrics.objects.filter(customer=str(people["lapsed"].pk)).exists()
    assert CustomerMetrics.objects.count() == 2


def test_staff_can_move_a_segment(people, history):
    Segment.objects.filter(slug="hibernating").update(position=99)
    Segment.objects.create(slug="gone", name="Gone", r_min=1, r_max=1, f_min=1, f_max=5)
    run()
    assert metrics(people["lapsed"]).segment.slug == "gone"


def test_snapshots_are_pruned(people, history):
    with override_settings(CROSSSELL={**_settings(), "CUSTOMERS_KEEP_SNAPSHOTS": 2}):
        for _ in range(4):
            run()
        assert MetricsSnapshot.objects.count() == 2


def test_lookback_leaves_old_orders_out(people, history):
    with override_settings(CROSSSELL={**_settings(), "CUSTOMERS_LOOKBACK_DAYS": 365}):
        run()
    assert not CustomerMetrics.objects.filter(customer=str(people["lapsed"].pk)).exists()


def test_command_and_task(people, history):
    out = StringIO()
    call_command(
        "crosssell_customers", "--scorer", "tertile", "--as-of", AS_OF.isoformat(), stdout=out
    )
    assert "Scored 3 customers with 'tertile'" in out.getvalue()
    from django_crosssell.customers.tasks import snapshot_customers

    result = snapshot_customers.delay(scorer="quantile").get()
    assert result["customers"] == 3
    assert MetricsSnapshot.objects.latest().scorer == "quantile"


def test_no_orders_no_customers():
    snapshot = run()
    assert snapshot.customers == 0 and snapshot.segment_counts == {}


def _settings() -> dict:
    from django.conf import settings

    return dict(settings.CROSSSELL)


def test_default_segments_come_back_when_there_are_none(people, history):
    Segment.objects.all().delete()
    run()
    assert Segment.objects.count() == 10
    assert not CustomerMetrics.objects.filter(segment__isnull=True).exists()
