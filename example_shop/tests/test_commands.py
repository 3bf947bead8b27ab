"""The demo's management commands: seed_demo, load_baskets and demo_admin."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from django_crosssell.models import BundleRule, ProductRelation, TierLadder, TierStep
from example_shop.shop.models import Category, Order, OrderLine, Product

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]
GROCERIES = REPO_ROOT.parent / "shared" / "data" / "groceries.csv"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def orders_digest() -> str:
    """Order contents independent of primary keys and of the day the command ran."""
    rows = []
    orders = Order.objects.order_by("placed_at", "pk").select_related("customer")
    first = None
    lines_by_order: dict[int, list[tuple[str, int, int]]] = {}
    for order_id, slug, quantity, price in OrderLine.objects.values_list(
        "order_id", "product__slug", "quantity", "unit_price"
    ):
        lines_by_order.setdefault(order_id, []).append((slug, quantity, price))
    for order in orders:
        first = first or order.placed_at
        rows.append(
            (
                order.customer.username if order.customer else "",
                order.status,
                (order.placed_at - first).total_seconds(),
                order.total,
                sorted(lines_by_order[order.pk]),
            )
        )
    return hashlib.sha256(repr(rows).encode()).hexdigest()


# --- seed_demo -------------------------------------------------------------------------------


@pytest.fixture
def seeded():
    return run("seed_demo", "--orders", "300", "--seed", "7")


def test_seed_demo_catalogue(seeded):
    assert "300 orders" in seeded
    assert 6 <= Category.objects.count() <= 8
    assert 100 <= Product.objects.count() <= 150
    assert Product.objects.filter(is_active=False).exists()
    assert Product.objects.filter(is_active=True, stock=0).exists()
    assert set(Category.objects.values_list("name", flat=True)) >= {
        "紳士服",
        "カメラ",
        "コーヒー",
        "文房具",
        "アウトドア",
        "キッチン",
    }
    assert all(price > 0 for price in Product.objects.values_list("price", flat=True))
    assert Product.objects.filter(name__contains="SDカード").count() >= 3


def test_seed_demo_orders(seeded):
    assert Order.objects.count() == 300
    counts = list(Order.objects.annotate(n=Count("lines")).values_list("n", flat=True))
    assert min(counts) >= 1 and max(counts) <= 6
    assert sum(counts) == OrderLine.objects.count()
    assert len(set(counts)) >= 3  # a real mix of basket sizes
    now = timezone.now()
    assert not Order.objects.filter(placed_at__lt=now - timedelta(days=181)).exists()
    assert not Order.objects.filter(placed_at__gt=now).exists()
    with_customer = Order.objects.filter(customer__isnull=False).count()
    assert 0.3 * 300 < with_customer < 0.9 * 300
    assert get_user_model().objects.filter(username__startswith="customer").count() == 300
    for order in Order.objects.prefetch_related("lines")[:50]:
        assert order.subtotal == sum(line.quantity * line.unit_price for line in order.lines.all())
        assert order.total == order.subtotal - order.discount


def test_seed_demo_orders_have_co_purchase_structure(db):
    run("seed_demo", "--orders", "2000")
    orders_with = set(
        OrderLine.objects.filter(product__slug="shirt-cotton-white").values_list(
            "order_id", flat=True
        )
    )
    with_tie = set(
        OrderLine.objects.filter(product__slug="tie-silk-navy").values_list("order_id", flat=True)
    )
    with_tent = set(
        OrderLine.objects.filter(product__slug="tent-2p").values_list("order_id", flat=True)
    )
    # A white shirt pulls in the navy tie far more often than an unrelated tent.
    assert len(orders_with & with_tie) > 5 * max(1, len(orders_with & with_tent))


def test_seed_demo_merchandising(seeded):
    ladders = {ladder.slug: ladder for ladder in TierLadder.objects.all()}
    assert len(ladders) >= 3
    camera = ladders["mirrorless-camera"]
    steps = list(camera.steps.order_by("rank").values_list("rank", "label"))
    assert steps == [(1, "ベーシック"), (2, "スタンダード"), (3, "プロ")]
    assert all(TierStep.objects.exclude(pitch="").filter(ladder=camera))
    assert ProductRelation.objects.filter(kind=ProductRelation.Kind.CROSS_SELL).count() >= 5
    assert ProductRelation.objects.filter(kind=ProductRelation.Kind.RELATED).exists()

    rules = {rule.name: rule for rule in BundleRule.objects.current()}
    assert set(rules) == {
        "シャツとネクタイのセットで10%引き",
        "対象コーヒー豆 2つ以上で10%引き",
        "SDカード 3個まとめ買いで15%お得",
    }
    shirt_tie = rules["シャツとネクタイのセットで10%引き"]
    assert (shirt_tie.kind, shirt_tie.discount_type, shirt_tie.value) == (
        "fixed_set",
        "percent",
        10,
    )
    assert shirt_tie.items.count() == 2
    beans = rules["対象コーヒー豆 2つ以上で10%引き"]
    assert (beans.kind, beans.min_quantity, beans.value) == ("mix_and_match", 2, 10)
    assert beans.items.count() >= 3
    sd = rules["SDカード 3個まとめ買いで15%お得"]
    assert (sd.kind, sd.min_quantity, sd.value) == ("multi_buy", 3, 15)
    for rule in rules.values():
        rule.full_clean()


def test_seed_demo_is_deterministic(db):
    run("seed_demo", "--orders", "300", "--seed", "11")
    first = orders_digest()
    run("seed_demo", "--orders", "300", "--seed", "11", "--clear")
    assert orders_digest() == first
    run("seed_demo", "--orders", "300", "--seed", "12", "--clear")
    assert orders_digest() != first


def test_seed_demo_if_empty_is_a_no_op(seeded):
    digest, products = orders_digest(), Product.objects.count()

    out = run("seed_demo", "--orders", "50", "--if-empty")

    assert "nothing to do" in out
    assert Order.objects.count() == 300
    assert Product.objects.count() == products
    assert orders_digest() == digest


def test_seed_demo_refuses_to_seed_twice(seeded):
    with pytest.raises(CommandError, match="--clear"):
        call_command("seed_demo", "--orders", "10", stdout=StringIO())
    assert Order.objects.count() == 300


def test_seed_demo_clear_keeps_staff(seeded, django_user_model):
    django_user_model.objects.create_superuser("admin", password="admin")
    run("seed_demo", "--orders", "20", "--clear")
    assert Order.objects.count() == 20
    assert django_user_model.objects.filter(username="admin").exists()
    assert django_user_model.objects.filter(username__startswith="customer").count() == 300


def test_seed_demo_rejects_negative_orders(db):
    with pytest.raises(CommandError):
        call_command("seed_demo", "--orders", "-1", stdout=StringIO())


def test_seeded_shop_pages_render(seeded, client):
    assert client.get("/").status_code == 200
    product = Product.objects.filter(is_active=True, stock__gt=0).first()
    assert client.get(product.get_absolute_url()).status_code == 200
    assert client.get(Category.objects.first().get_absolute_url()).status_code == 200
    assert client.login(username="customer001", password="demo")
    assert client.get("/orders/").status_code == 200


# --- load_baskets ----------------------------------------------------------------------------


def test_load_baskets_small_file(tmp_path):
    path = tmp_path / "baskets.csv"
    path.write_text(
        "whole milk, yogurt,whole milk\n\ncream cheese ,rolls/buns\n  \nyogurt\n",
        encoding="utf-8",
    )

    out = run("load_baskets", str(path))

    assert "3 orders" in out and "5 order lines" in out and "4 products" in out
    assert Order.objects.count() == 3
    assert OrderLine.objects.count() == 5
    names = set(Product.objects.values_list("name", flat=True))
    assert names == {"whole milk", "yogurt", "cream cheese", "rolls/buns"}
    assert set(Product.objects.values_list("slug", flat=True)) == {
        "whole-milk",
        "yogurt",
        "cream-cheese",
        "rollsbuns",
    }
    assert not Product.objects.filter(stock=0).exists()
    assert not Product.objects.filter(is_active=False).exists()
    first = Order.objects.order_by("placed_at").first()
    assert sorted(first.lines.values_list("product_name", "quantity")) == [
        ("whole milk", 1),
        ("yogurt", 1),
    ]
    assert set(Order.objects.values_list("status", flat=True)) == {"paid"}
    assert Order.objects.values("placed_at").distinct().count() == 3


def test_load_baskets_twice_reuses_products_and_clear_replaces(tmp_path):
    path = tmp_path / "baskets.csv"
    path.write_text("a,b\nb,c\n", encoding="utf-8")
    run("load_baskets", str(path), "--category", "テスト")
    run("load_baskets", str(path), "--category", "テスト")
    assert Product.objects.count() == 3
    assert Order.objects.count() == 4

    run("load_baskets", str(path), "--clear")
    assert Order.objects.count() == 2
    assert Product.objects.count() == 3
    assert Category.objects.get().name == "食料品"


def test_load_baskets_slug_clash_gets_a_suffix(tmp_path, make_product):
    make_product(slug="milk", name="牛乳")
    path = tmp_path / "baskets.csv"
    path.write_text("milk\n", encoding="utf-8")
    run("load_baskets", str(path))
    assert Product.objects.get(name="milk").slug == "milk-2"


def test_load_baskets_missing_file(tmp_path):
    with pytest.raises(CommandError, match="not found"):
        call_command("load_baskets", str(tmp_path / "missing.csv"), stdout=StringIO())


def test_load_baskets_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("\n , \n", encoding="utf-8")
    with pytest.raises(CommandError, match="no baskets"):
        call_command("load_baskets", str(path), stdout=StringIO())
    assert Product.objects.count() == 0


@pytest.mark.slow
@pytest.mark.skipif(not GROCERIES.is_file(), reason=f"{GROCERIES} is not present")
def test_load_baskets_groceries():
    out = run("load_baskets", str(GROCERIES), "--clear")

    assert "9835 orders" in out
    assert Order.objects.count() == 9835
    assert Product.objects.count() == 169
    assert OrderLine.objects.count() == 43367
    assert Product.objects.filter(name="cream cheese").exists()
    assert not Product.objects.filter(name__endswith=" ").exists()


# --- demo_admin ------------------------------------------------------------------------------


def test_demo_admin_is_idempotent(django_user_model):
    out = run("demo_admin")
    assert "username: admin" in out and "password: admin" in out and "/admin/" in out
    admin = django_user_model.objects.get(username="admin")
    admin.set_password("changed")
    admin.is_superuser = False
    admin.save()

    out = run("demo_admin")

    assert "Updated" in out
    assert django_user_model.objects.filter(username="admin").count() == 1
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.is_active
    assert admin.check_password("admin")
