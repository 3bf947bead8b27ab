"""Measurement in the example shop: the simulation recovers a known uplift, flags an
injected sample-ratio mismatch and declares nothing at zero uplift; the checkout attributes."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from django_crosssell.models import Event, OrderAttribution, OrderRecord, ProductRelation, Serve

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


@pytest.fixture
def catalogue(make_product):
    products = [make_product(stock=100_000, price=1000 + 100 * n) for n in range(8)]
    for index, product in enumerate(products):
        for step in (1, 2, 3):
            ProductRelation.objects.create(
                source=product, target=products[(index + step) % len(products)]
            )
    return products


def report(key: str) -> dict:
    out = StringIO()
    call_command("crosssell_report", key, "--json", stdout=out)
    return json.loads(out.getvalue())


def simulate(**options) -> None:
    arguments = []
    for name, value in options.items():
        arguments += [f"--{name.replace('_', '-')}", str(value)]
    call_command("simulate_traffic", *arguments, stdout=StringIO())


@pytest.mark.slow
def test_the_simulation_recovers_the_uplift_and_no_winner_at_zero(catalogue):
    simulate(sessions=1200, uplift=0.5, seed=3, experiment="known")
    result = report("known")
    (comparison,) = result["comparisons"]
    conversion = comparison["metrics"]["conversion"]
    assert conversion["ci_low"] <= 0.5 <= conversion["ci_high"]
    assert not result["sample_ratio"]["mismatch"]
    assert comparison["verdict"] == "better"
    assert sum(row["units"] for row in result["variants"]) == 1200

    simulate(sessions=1200, uplift=0, seed=4, experiment="null")
    result = report("null")
    assert not result["sample_ratio"]["mismatch"]
    assert result["comparisons"][0]["verdict"] == "no_difference"


@pytest.mark.slow
def test_an_injected_sample_ratio_mismatch_hides_the_verdict(catalogue):
    simulate(sessions=800, uplift=0.5, seed=5, experiment="broken", lose_exposures=0.4)
    result = report("broken")
    assert result["sample_ratio"]["mismatch"]
    assert result["comparisons"][0]["verdict"] == "srm"
    out = StringIO()
    call_command("crosssell_report", "broken", stdout=out)
    assert "NO VERDICT: sample ratio mismatch" in out.getvalue()


def test_a_recommendation_click_then_checkout_is_attributed(catalogue):
    client = Client(HTTP_USER_AGENT=BROWSER)
    html = client.get(catalogue[0].get_absolute_url()).content.decode()
    assert '<script src="/static/django_crosssell/tracking.js" data-endpoint=' in html
    links = re.findall(r'href="(/products/[^"]*\?cs=[^"]+)"', html)
    assert links
    client.get(links[1].replace("&amp;", "&"))
    click = Event.objects.get(type="click")
    assert click.position == 2 and click.product == str(catalogue[2].pk)
    client.post(f"/cart/add/{catalogue[2].pk}/", {"quantity": 2})
    assert Event.objects.filter(type="add_to_cart", product=str(catalogue[2].pk)).exists()
    client.post(f"/cart/add/{catalogue[5].pk}/", {"quantity": 1})
    assert client.post("/checkout/").status_code == 302
    record = OrderRecord.objects.get()
    direct = OrderAttribution.objects.get(kind="direct")
    assert (direct.product, direct.position, direct.quantity) == (str(catalogue[2].pk), 2, 2)
    assert direct.revenue == 2 * catalogue[2].price
    assert direct.serve_id == click.serve_id and direct.same_session
    assert OrderAttribution.objects.get(kind="assisted").product == str(catalogue[5].pk)
    assert record.revenue == 2 * catalogue[2].price + catalogue[5].price


def test_staff_and_bots_are_not_counted_in_the_shop(catalogue, admin_client):
    bot = Client(
        HTTP_USER_AGENT="Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    )
    bot.get(catalogue[0].get_absolute_url())
    admin_client.get(catalogue[0].get_absolute_url(), HTTP_USER_AGENT=BROWSER)
    assert Serve.objects.count() == 0
