"""``manage.py simulate_traffic --sessions N --uplift U --seed S``: a known answer for the report.

Each simulated visitor is a fresh Django test client (its own cookies) with a browser user
agent, driving the shop's real views through the real middleware: it lands on a product
page, where the real experiment code assigns it and the real widget renders (or not); the
treatment arm sees recommendations and may click one (the link's signed serve id counts
the click), and a visitor buys with probability ``base rate`` (control) or
``base rate x (1 + U)`` (treatment): add to cart, checkout (the shop's checkout attributes
the order). ``manage.py crosssell_report KEY`` must then find ``U`` inside its interval.

The experiment ``KEY`` (default ``simulated-widgets``) is created when missing, running,
50/50: ``control`` sees no "You may also like" widget, ``treatment`` sees it. The visitor
ids come from the seed, so one seed gives the same assignment and the same orders.
Orders are real orders of the shop's database (a product running low is restocked so
that the simulation never fails on stock): run it on a demo database.
``--lose-exposures F`` deletes that share of the treatment's exposure records afterwards,
an injected logging bug the sample-ratio check must catch.
"""

from __future__ import annotations

import random
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import F
from django.test import Client

from django_crosssell.conf import app_settings
from django_crosssell.models import Experiment, Exposure, Variant
from example_shop.shop.models import Product

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
LINK = re.compile(r'href="([^"]*\?cs=[^"]+)"')


def ensure_experiment(key: str) -> Experiment:
    experiment, created = Experiment.objects.get_or_create(
        key=key,
        defaults={
            "name": "Simulated: recommendations on the product page",
            "status": Experiment.Status.RUNNING,
            "placements": ["also_recommended"],
            "primary_metric": Experiment.Metric.CONVERSION,
            "min_sample": 100,
            "min_days": 0,
        },
    )
    if created:
        Variant.objects.create(
            experiment=experiment, key="control", position=0, config={"enabled": False}
        )
        Variant.objects.create(experiment=experiment, key="treatment", position=1, config={})
    return experiment


class Command(BaseCommand):
    help = "Drive the shop's real views with simulated visitors under an experiment."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sessions", type=int, default=1000)
        parser.add_argument("--uplift", type=float, default=0.3, help="relative uplift")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--experiment", default="simulated-widgets")
        parser.add_argument("--base-rate", type=float, default=0.2, help="control conversion")
        parser.add_argument("--click-rate", type=float, default=0.3)
        parser.add_argument("--lose-exposures", type=float, default=0.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if app_settings.TRACKING == "off":
            raise CommandError('CROSSSELL["TRACKING"] is "off": nothing would be measured.')
        rate = options["base_rate"] * (1 + options["uplift"])
        if not 0 < options["base_rate"] <= 1 or not 0 <= rate <= 1:
            raise CommandError("The base rate and the uplift must keep rates within 0 and 1.")
        products = list(Product.objects.filter(is_active=True, stock__gt=0).order_by("pk")[:50])
        if not products:
            raise CommandError("No products: run `manage.py seed_demo` first.")
        experiment = ensure_experiment(options["experiment"])
        rng = random.Random(options["seed"])
        counts = {"sessions": 0, "treatment": 0, "clicks": 0, "orders": 0}
        for number in range(options["sessions"]):
            counts["sessions"] += 1
            client = Client(HTTP_USER_AGENT=BROWSER)
            client.cookies[app_settings.TRACKING_COOKIE] = f"sim{options['seed']}x{number:012d}"
            landing = rng.choice(products)
            html = client.get(landing.get_absolute_url()).content.decode()
            widget = html.split('data-crosssell-widget="also_recommended"', 1)
            links = LINK.findall(widget[1].split("</section>", 1)[0]) if len(widget) == 2 else []
            treated = bool(links)
            counts["treatment"] += treated
            buys = rng.random() < (rate if treated else options["base_rate"])
            clicks = treated and (buys or rng.random() < options["click_rate"])
            target = landing
            if clicks:
                link = rng.choice(links).replace("&amp;", "&")
                client.get(link)
                counts["clicks"] += 1
                slug = link.split("/products/", 1)[1].split("/", 1)[0]
                target = Product.objects.get(slug=slug)
            if buys:
                Product.objects.filter(pk=target.pk, stock__lt=10).update(stock=F("stock") + 100)
                client.post(f"/cart/add/{target.pk}/", {"quantity": 1})
                if client.post("/checkout/").status_code == 302:
                    counts["orders"] += 1
        if options["lose_exposures"] > 0:
            treatment = experiment.variants.get(key="treatment")
            lost = list(
                Exposure.objects.filter(experiment=experiment, variant=treatment)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            rng.shuffle(lost)
            share = int(len(lost) * options["lose_exposures"])
            Exposure.objects.filter(pk__in=lost[:share]).delete()
        self.stdout.write(
            f"{counts['sessions']} sessions, {counts['treatment']} saw recommendations, "
            f"{counts['clicks']} clicks, {counts['orders']} orders "
            f"(experiment {experiment.key})"
        )
