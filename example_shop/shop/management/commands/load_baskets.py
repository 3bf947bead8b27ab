"""``manage.py load_baskets PATH``: import a market-basket file as products and paid orders.

One basket per line, comma-separated item names (e.g. the classic Groceries file). Real
baskets are what the affinity engine is measured on, so the import is exact: an item
repeated within a basket counts once, names are stripped ("cream cheese " is "cream
cheese"), empty lines are skipped, and every basket becomes one paid order.
"""

from __future__ import annotations

import csv
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from example_shop.shop.models import Category, Order, OrderLine, Product

from .seed_demo import DAYS, clear_shop_data

BATCH = 2000


def read_baskets(path: Path) -> list[list[str]]:
    """Baskets as lists of distinct, stripped item names in first-seen order."""
    baskets = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.reader(handle):
            items = list(dict.fromkeys(name.strip() for name in row if name.strip()))
            if items:
                baskets.append(items)
    return baskets


def _unique_slug(base: str, taken: set[str], fallback: str) -> str:
    base = (base or fallback)[:190]
    slug, suffix = base, 2
    while slug in taken:
        slug, suffix = f"{base}-{suffix}", suffix + 1
    taken.add(slug)
    return slug


class Command(BaseCommand):
    help = "Import a basket file (one basket per line, comma-separated items) as orders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="basket file, e.g. ../shared/data/groceries.csv")
        parser.add_argument("--clear", action="store_true", help="delete the shop's data first")
        parser.add_argument(
            "--category", default="食料品", help="category of the imported products"
        )
        parser.add_argument("--price", type=int, default=300, help="price in yen of new products")
        parser.add_argument("--stock", type=int, default=1000, help="stock of new products")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"Basket file not found: {path}")
        if options["price"] < 0 or options["stock"] < 1:
            raise CommandError("--price must be 0 or more and --stock at least 1.")
        category_name = options["category"].strip()
        if not category_name:
            raise CommandError("--category must not be empty.")
        started = time.perf_counter()
        try:
            baskets = read_baskets(path)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        if not baskets:
            raise CommandError(f"{path} holds no baskets.")

        with transaction.atomic():
            if options["clear"]:
                clear_shop_data()
            category = self._category(category_name)
            products, created = self._products(baskets, category, options)
            lines = self._orders(baskets, products)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {len(baskets)} orders, {lines} order lines, {len(products)} "
                f"products ({created} new) in category {category.name!r} "
                f"from {path} in {elapsed:.1f} s."
            )
        )

    def _category(self, name: str) -> Category:
        category = Category.objects.filter(name=name).first()
        if category is None:
            taken = set(Category.objects.values_list("slug", flat=True))
            category = Category.objects.create(
                name=name, slug=_unique_slug(slugify(name), taken, "imported")
            )
        return category

    def _products(
        self, baskets: list[list[str]], category: Category, options: dict[str, Any]
    ) -> tuple[dict[str, Product], int]:
        """Reuse the category's products by name, so a second import adds orders only."""
        names = list(dict.fromkeys(name for basket in baskets for name in basket))
        existing = {product.name: product for product in category.products.all()}
        taken = set(Product.objects.values_list("slug", flat=True))
        new = [
            Product(
                name=name,
                slug=_unique_slug(slugify(name), taken, "item"),
                category=category,
                price=options["price"],
                stock=options["stock"],
                is_active=True,
            )
            for name in names
            if name not in existing
        ]
        Product.objects.bulk_create(new, batch_size=BATCH)
        by_name = {product.name: product for product in category.products.all()}
        return {name: by_name[name] for name in names}, len(new)

    def _orders(self, baskets: list[list[str]], products: dict[str, Product]) -> int:
        # Spread evenly over the last DAYS days, oldest first, so placed_at follows the line
        # order of the file and two imports of one file get the same timestamps on one day.
        now = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        step = timedelta(days=DAYS) / len(baskets)
        start = now - timedelta(days=DAYS)
        line_count = 0
        for first in range(0, len(baskets), BATCH):
            chunk = baskets[first : first + BATCH]
            orders = []
            for offset, basket in enumerate(chunk, start=first):
                subtotal = sum(products[name].price for name in basket)
                orders.append(
                    Order(
                        status=Order.Status.PAID,
                        placed_at=start + step * offset,
                        subtotal=subtotal,
                        total=subtotal,
                    )
                )
            Order.objects.bulk_create(orders)
            lines = [
                OrderLine(
                    order=order,
                    product=products[name],
                    product_name=name,
                    quantity=1,
                    unit_price=products[name].price,
                )
                for order, basket in zip(orders, chunk, strict=True)
                for name in basket
            ]
            OrderLine.objects.bulk_create(lines, batch_size=BATCH)
            line_count += len(lines)
        return line_count
