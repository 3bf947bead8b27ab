"""Rollups, the purge, the dashboard (charts, tables, CSV, Japanese) and the staff API."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from django_crosssell.measure import rollups
from django_crosssell.measure.dashboard import performance
from django_crosssell.models import DailyRollup, Event, OrderAttribution, OrderRecord, Serve

pytestmark = pytest.mark.django_db
URL = "/admin/django_crosssell/dailyrollup/"


def serve(at, placement="also_recommended", clicks=0, views=0):
    made = Serve.objects.create(
        id=uuid.uuid4(), created_at=at, placement=placement, items=[["p1", 1], ["p2", 2]]
    )
    if views:
        Event.objects.create(serve=made, type="view", created_at=at)
    for position in range(1, clicks + 1):
        Event.objects.create(
            serve=made, type="click", product=f"p{position}", position=position, created_at=at
        )
    return made


def attributed(at, placement="also_recommended", revenue="1000", kind="direct", order=None):
    record, _ = OrderRecord.objects.get_or_create(
        order=order or str(uuid.uuid4()), defaults={"placed_at": at, "revenue": Decimal(revenue)}
    )
    return OrderAttribution.objects.create(
        record=record,
        kind=kind,
        product="p1",
        revenue=Decimal(revenue),
        placement=placement,
        clicked_at=at,
        created_at=at,
    )


@pytest.fixture
def history(db):
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    for _ in range(4):
        serve(yesterday, views=1)
    serve(yesterday, clicks=2, views=1)
    serve(yesterday, placement="upgrade_prompt")
    serve(now, clicks=1)
    attributed(yesterday, revenue="1200")
    attributed(yesterday, revenue="300", kind="assisted")
    attributed(now, revenue="500")
    return now


def test_a_rollup_counts_a_day_per_placement(history):
    yesterday = timezone.localdate() - timedelta(days=1)
    assert rollups.rollup(yesterday) == 2
    row = DailyRollup.objects.get(day=yesterday, placement="also_recommended")
    assert (row.impressions, row.views, row.clicks, row.orders) == (5, 5, 2, 1)
    assert (row.revenue, row.assisted_revenue) == (Decimal(1200), Decimal(300))
    assert rollups.rollup(yesterday) == 2 and DailyRollup.objects.count() == 2  # idempotent


def test_the_dashboard_reads_rollups_and_counts_only_today(history, django_assert_max_num_queries):
    rollups.rollup(timezone.localdate() - timedelta(days=1))
    Serve.objects.filter(created_at__lt=history - timedelta(hours=12)).delete()  # purged raw rows
    with django_assert_max_num_queries(10):
        data = performance(30)
    assert data["totals"]["impressions"] == 7 and data["totals"]["clicks"] == 3
    assert data["totals"]["revenue"] == Decimal(1700)
    assert data["daily"][-1]["impressions"] == 1 and data["daily"][-2]["impressions"] == 6
    assert len(data["daily"]) == 30
    # links: yesterday's from the link rollups (raw rows gone), today's from the raw clicks
    assert (data["top_links"][0]["product"], data["top_links"][0]["clicks"]) == ("p1", 2)
    assert data["today_as_of"] is None
    # once the hourly task rolled today up, no raw row is read and the figures are the same
    rollups.rollup(timezone.localdate())
    Event.objects.all().delete()
    with django_assert_max_num_queries(7):
        again = performance(30)
    assert again["totals"] == data["totals"] and again["top_links"] == data["top_links"]
    assert again["today_as_of"] is not None


def test_purge_keeps_rollups_and_attributions(history):
    old = timezone.now() - timedelta(days=100)
    serve(old, clicks=1)
    attributed(old)
    assert rollups.purge() == 1
    assert not Serve.objects.filter(created_at__lt=timezone.now() - timedelta(days=90)).exists()
    assert DailyRollup.objects.filter(day=timezone.localdate(old)).exists()
    assert OrderAttribution.objects.count() == 4


def test_the_admin_dashboard(history, admin_client):
    html = admin_client.get(URL).content.decode()
    assert "Cross-sell performance" in html
    assert '<script src="/static/django_crosssell/vendor/chartjs/chart.umd.min.js" defer>' in html
    assert '<script id="crosssell-chart-data" type="application/json">' in html
    # no inline JavaScript: every other script has a src
    inline = [
        s
        for s in re.findall(r"<script([^>]*)>", html)
        if "src=" not in s and "application/json" not in s
    ]
    assert inline == []
    assert html.count("<figcaption") == 2 and "<caption>Per day</caption>" in html
    assert "No experiment is running." in html


def test_the_dashboard_in_japanese(history, admin_client):
    with translation.override("ja"):
        html = admin_client.get(URL, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "クロスセルの成果" in html


def test_csv_export(history, admin_client):
    response = admin_client.get(URL + "?days=7&format=csv")
    lines = response.content.decode().splitlines()
    assert response["Content-Type"].startswith("text/csv")
    assert lines[0].startswith("day,impressions,views,clicks") and len(lines) == 8


def test_the_staff_api(history, admin_client, client, django_user_model):
    rollups.rollup(timezone.localdate() - timedelta(days=1))
    url = reverse("crosssell_measure:performance") + "?days=7"
    assert admin_client.get(url).json()["totals"]["impressions"] == 7
    assert client.get(url).status_code in (401, 403)
    customer = django_user_model.objects.create_user("hanako", password="pw")
    client.force_login(customer)
    assert client.get(url).status_code == 403


def test_the_experiment_api(admin_client, db):
    from django_crosssell.models import Experiment, Variant

    experiment = Experiment.objects.create(key="exp", status="running")
    Variant.objects.create(experiment=experiment, key="a", position=0)
    Variant.objects.create(experiment=experiment, key="b", position=1)
    body = admin_client.get(reverse("crosssell_measure:experiment", args=["exp"])).json()
    assert [row["variant"] for row in body["variants"]] == ["a", "b"]
    assert body["comparisons"][0]["verdict"] == "collecting"
    assert (
        admin_client.get(reverse("crosssell_measure:experiment", args=["nope"])).status_code == 404
    )
