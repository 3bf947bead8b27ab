"""The customers admin: overview on the list, the explanation page, audiences with a live
count, a sample and the CSV export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from django_crosssell.customers.snapshot import run_snapshot
from django_crosssell.models import Audience, CustomerMetrics, Segment
from tests.factories import ProductFactory, make_order

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def snapshot(django_user_model):
    kettle, beans = ProductFactory(price=Decimal("1000")), ProductFactory(price=Decimal("200"))
    for index in range(12):
        user = django_user_model.objects.create_user(f"c{index}", f"c{index}@example.com", "x")
        for order in range(index % 4 + 1):
            make_order(
                kettle if index % 2 else beans,
                placed_at=AS_OF - timedelta(days=5 + 40 * order + 20 * index),
                customer=user,
            )
    return run_snapshot(as_of=AS_OF, scorer="quantile")


def test_the_list_shows_counts_grid_and_chart_data(admin_client, snapshot):
    response = admin_client.get(reverse("admin:django_crosssell_customermetrics_changelist"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Customers per segment" in html and "R x F grid" in html
    assert 'id="crosssell-customers-data"' in html
    assert html.count("<tr><th>R") == 5
    for slug, count in snapshot.segment_counts.items():
        assert Segment.objects.get(slug=slug).name in html
        assert f"<td>{count}</td>" in html


def test_the_list_says_when_there_is_no_snapshot(admin_client):
    response = admin_client.get(reverse("admin:django_crosssell_customermetrics_changelist"))
    assert "No snapshot yet" in response.content.decode()


def test_a_customer_page_explains_the_scores(admin_client, snapshot):
    metrics = CustomerMetrics.objects.order_by("-f_score", "customer").first()
    url = reverse("admin:django_crosssell_customermetrics_change", args=[metrics.pk])
    html = admin_client.get(url).content.decode()
    assert "days since the last order" in html
    bound = snapshot.thresholds["f"][str(metrics.f_score)]
    assert f"Score {metrics.f_score} starts at {bound} or more." in html
    assert f"Segment {metrics.segment.name}: R {metrics.segment.r_min}-" in html
    assert "Priority " in html and "Pace" in html


def test_japanese_segment_names_in_the_admin(admin_client, snapshot):
    response = admin_client.get(
        reverse("admin:django_crosssell_customermetrics_changelist"), HTTP_ACCEPT_LANGUAGE="ja"
    )
    html = response.content.decode()
    assert any(segment.name_ja in html for segment in Segment.objects.all())


def test_audience_page_count_sample_and_export(admin_client, snapshot):
    audience = Audience.objects.create(name="Frequent", slug="frequent", frequency_min=3)
    expected = CustomerMetrics.objects.filter(frequency__gte=3).count()
    assert expected > 0
    html = admin_client.get(
        reverse("admin:django_crosssell_audience_change", args=[audience.pk])
    ).content.decode()
    assert f"{expected} customers match now." in html
    export = reverse("admin:django_crosssell_audience_export", args=[audience.pk])
    assert export in html
    response = admin_client.get(export)
    assert response["Content-Type"] == "text/csv"
    lines = response.content.decode().strip().splitlines()
    assert len(lines) == expected + 1
    listing = admin_client.get(reverse("admin:django_crosssell_audience_changelist"))
    assert listing.status_code == 200


def test_export_needs_a_staff_login(client, snapshot):
    audience = Audience.objects.create(name="All", slug="all")
    response = client.get(reverse("admin:django_crosssell_audience_export", args=[audience.pk]))
    assert response.status_code == 302  # to the login page


def test_segment_map_is_editable(admin_client):
    response = admin_client.get(reverse("admin:django_crosssell_segment_changelist"))
    assert response.status_code == 200 and "Champions" in response.content.decode()


def test_the_consent_rule_offers_the_ledgers_purposes(admin_client):
    html = admin_client.get(reverse("admin:django_crosssell_audience_add")).content.decode()
    assert '<select name="consent_purpose"' in html and 'value="newsletter"' in html
