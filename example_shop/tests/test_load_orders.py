"""``load_orders``: a real shop's order lines as customers, products and paid orders; and the
demo customers' histories from ``seed_demo``."""

from __future__ import annotations

import gzip
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from example_shop.shop.models import Order, OrderLine, Product

pytestmark = pytest.mark.django_db

RETAIL = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / ("online_retail_2010-12_2011-06.csv.gz")
)

SAMPLE = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,2010-12-03 08:28:00,1.85,17850.0,United Kingdom
536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-05 09:00:00,2.55,13047.0,United Kingdom
536367,POST,POSTAGE,1,2010-12-05 09:00:00,18.00,13047.0,United Kingdom
C536368,71053,WHITE METAL LANTERN,-1,2010-12-06 09:00:00,3.39,13047.0,United Kingdom
536369,22633,HAND WARMER UNION JACK,0,2010-12-06 10:00:00,1.85,13047.0,United Kingdom
536370,22633,HAND WARMER UNION JACK,3,2010-12-07 10:00:00,0,13047.0,United Kingdom
536371,71053,WHITE METAL LANTERN,1,2010-12-08 10:00:00,3.39,,United Kingdom
"""


def load(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("load_orders", str(path), *args, stdout=out)
    return out.getvalue()


@pytest.fixture(params=["plain", "gzip"])
def sample(tmp_path, request) -> Path:
    if request.param == "gzip":
        path = tmp_path / "orders.csv.gz"
        path.write_bytes(gzip.compress(SAMPLE.encode()))
    else:
        path = tmp_path / "orders.csv"
        path.write_text(SAMPLE)
    return path


def test_imports_invoices_as_paid_orders_and_counts_the_skips(sample):
    out = load(sample, "--keep-dates", "--yen", "100")
    assert "1 cancellation" in out
    assert "1 non-positive quantity" in out and "1 non-positive price" in out
    assert "1 postage, fee or adjustment" in out
    assert "Imported 4 orders with 5 lines, 3 products (3 new), 2 customers (2 new)" in out
    assert set(Order.objects.values_list("status", flat=True)) == {"paid"}
    first = get_user_model().objects.get(username="retail17850")
    orders = Order.objects.filter(customer=first).order_by("placed_at")
    assert orders.count() == 2
    assert orders[0].placed_at.isoformat() == "2010-12-01T08:26:00+00:00"
    assert orders[0].total == 6 * 255 + 6 * 339  # 2.55 and 3.39 at 100 yen
    assert Order.objects.filter(customer__isnull=True).count() == 1  # a guest's invoice
    heart = Product.objects.get(slug="or-85123a")
    assert heart.name == "WHITE HANGING HEART T-LIGHT HOLDER" and heart.price == 255
    assert not first.has_usable_password()


def test_dates_move_so_the_newest_order_is_today(sample):
    load(sample)
    newest = Order.objects.order_by("-placed_at").first().placed_at
    oldest = Order.objects.order_by("placed_at").first().placed_at
    assert abs((timezone.now() - newest).total_seconds()) < 120
    assert round((newest - oldest).total_seconds() / 86400) == 7  # the file's spacing kept


def test_a_second_import_reuses_products_and_customers(sample):
    load(sample)
    out = load(sample)
    assert "3 products (0 new), 2 customers (0 new)" in out
    assert Order.objects.count() == 8
    out = load(sample, "--clear")
    assert Order.objects.count() == 4 and "(3 new)" in out


def test_bad_files(tmp_path):
    with pytest.raises(CommandError, match="not found"):
        load(tmp_path / "missing.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match="lacks the columns"):
        load(wrong)
    with pytest.raises(CommandError, match="--yen"):
        load(wrong, "--yen", "0")


@pytest.mark.slow
@pytest.mark.skipif(not RETAIL.is_file(), reason="needs ../shared/data (the Online Retail file)")
def test_the_online_retail_file():
    out = load(RETAIL)
    assert "skipped 4494 cancellation" in out
    assert OrderLine.objects.count() > 230_000
    customers = Order.objects.exclude(customer=None).values("customer").distinct().count()
    assert customers > 2_900
    call_command("crosssell_customers", stdout=StringIO())
    from django_crosssell.models import CustomerMetrics

    assert CustomerMetrics.objects.count() == customers
    assert not CustomerMetrics.objects.filter(segment=None).exists()


def test_seeded_customers_have_believable_histories():
    call_command("seed_demo", "--orders", "3000", stdout=StringIO())
    per_customer = Counter(
        dict(
            Order.objects.exclude(customer=None)
            .values_list("customer__username")
            .annotate(n=Count("pk"))
            .values_list("customer__username", "n")
        )
    )
    assert max(per_customer.values()) <= 24  # not hundreds
    assert per_customer["customer001"] <= 24
    one_off = sum(1 for n in per_customer.values() if n == 1)
    regular = sum(1 for n in per_customer.values() if n >= 5)
    assert one_off > 0.2 * len(per_customer) and regular > 0.1 * len(per_customer)
