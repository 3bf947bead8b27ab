"""``manage.py load_orders PATH``: import a real shop's order lines (customers, products, orders).

The format is the UCI "Online Retail" export (``InvoiceNo, StockCode, Description, Quantity,
InvoiceDate, UnitPrice, CustomerID[, Country]``), plain or gzipped. Customer analysis (RFM,
audiences, personal recommendations) can only be judged on real customers' histories, so
the import keeps each invoice as one paid order of its customer and cleans what the file
itself marks as not a sale:

* invoices starting with ``C`` are cancellations;
* lines with a quantity or a unit price of zero or less are corrections and write-offs;
* stock codes that do not start with a digit (``POST``, ``DOT``, ``M``, ``BANK CHARGES``,
  ``AMAZONFEE``, gift vouchers) are postage, fees and adjustments, not products.

Each skip is counted and printed. Invoices without a customer become guest orders (they are
real baskets for the affinity engine). Prices are converted to whole yen with ``--yen``
(yen per unit of the file's currency). By default every date moves by the same amount so
that the newest invoice falls on today: the recommendation window (``LOOKBACK_DAYS``) and
recency then behave as in a live shop; ``--keep-dates`` keeps the file's dates.

Everything is written with bulk inserts in batches; a second import of the same file reuses
products and customers but adds the orders again (use ``--clear`` to replace them).
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from example_shop.shop.models import Category, Order, OrderLine, Product

from .seed_demo import clear_shop_data

BATCH = 2000
COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice")
CUSTOMER_COLUMN = "CustomerID"
#: Imported customers' usernames: ``retail`` and the file's customer number.
USERNAME_PREFIX = "retail"
#: Imported products' slugs: ``or-`` and the lower-cased stock code.
SLUG_PREFIX = "or-"


@dataclass
class Invoice:
    number: str
    placed_at: datetime
    customer: str
    lines: list[tuple[str, int, int]] = field(default_factory=list)  # (code, quantity, yen)


@dataclass
class Parsed:
    invoices: dict[str, Invoice]
    names: dict[str, str]  # stock code -> description (the first non-empty one)
    prices: dict[str, int]  # stock code -> the most recent unit price in yen
    read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8-sig", newline="")


def _parse_date(value: str) -> datetime:
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(value.strip(), pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"unknown date format: {value!r}")


def _customer(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    try:  # pandas wrote "17850.0"
        return str(int(Decimal(value)))
    except InvalidOperation:
        return value


def read_orders(rows: Iterator[dict[str, str]], yen_per_unit: Decimal) -> Parsed:
    """Group the file's lines into invoices, counting what is skipped and why."""
    parsed = Parsed(invoices={}, names={}, prices={})
    for row in rows:
        parsed.read += 1
        number = (row.get("InvoiceNo") or "").strip()
        code = (row.get("StockCode") or "").strip().upper()
        if not number or not code:
            parsed.skip("incomplete line")
            continue
        if number.upper().startswith("C"):
            parsed.skip("cancellation")
            continue
        if not code[0].isdigit():
            parsed.skip("postage, fee or adjustment")
            continue
        try:
            quantity = int(Decimal((row.get("Quantity") or "").strip()))
            price = Decimal((row.get("UnitPrice") or "").strip())
            placed_at = _parse_date(row.get("InvoiceDate") or "")
        except (InvalidOperation, ValueError):
            parsed.skip("unreadable quantity, price or date")
            continue
        if quantity <= 0:
            parsed.skip("non-positive quantity")
            continue
        if price <= 0:
            parsed.skip("non-positive price")
            continue
        yen = max(1, int((price * yen_per_unit).to_integral_value()))
        invoice = parsed.invoices.get(number)
        if invoice is None:
            invoice = parsed.invoices[number] = Invoice(
                number, placed_at, _customer(row.get(CUSTOMER_COLUMN) or "")
            )
        invoice.lines.append((code, quantity, yen))
        description = (row.get("Description") or "").strip()
        if description and code not in parsed.names:
            parsed.names[code] = description
        parsed.prices[code] = yen
    return parsed


class Command(BaseCommand):
    help = (
        "Import an order-line CSV (Online Retail format, gzip accepted) as customers, "
        "products and paid orders."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="e.g. ../shared/data/online_retail_2010-12_2011-06.csv.gz")
        parser.add_argument("--clear", action="store_true", help="delete the shop's data first")
        parser.add_argument("--category", default="雑貨", help="category of the imported products")
        parser.add_argument(
            "--yen",
            default="150",
            help="yen per unit of the file's currency (prices are stored in whole yen)",
        )
        parser.add_argument("--stock", type=int, default=1000, help="stock of new products")
        parser.add_argument(
            "--keep-dates",
            action="store_true",
            help="keep the file's dates (default: move them so the newest order is today)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"Order file not found: {path}")
        try:
            yen = Decimal(options["yen"])
        except InvalidOperation as exc:
            raise CommandError("--yen must be a number.") from exc
        if yen <= 0 or options["stock"] < 0:
            raise CommandError("--yen must be positive and --stock 0 or more.")
        category_name = options["category"].strip()
        if not category_name:
            raise CommandError("--category must not be empty.")
        started = time.perf_counter()
        try:
            with _open_text(path) as handle:
                reader = csv.DictReader(handle)
                missing = [name for name in COLUMNS if name not in (reader.fieldnames or [])]
                if missing:
                    raise CommandError(f"{path} lacks the columns {', '.join(missing)}.")
                parsed = read_orders(reader, yen)
        except (UnicodeDecodeError, csv.Error, OSError, EOFError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        if not parsed.invoices:
            raise CommandError(f"{path} holds no orders to import.")
        shift = timedelta(0)
        if not options["keep_dates"]:
            newest = max(invoice.placed_at for invoice in parsed.invoices.values())
            today = timezone.now().replace(microsecond=0)
            shift = today - newest
        with transaction.atomic():
            if options["clear"]:
                clear_shop_data()
                get_user_model().objects.filter(
                    username__startswith=USERNAME_PREFIX, is_staff=False, is_superuser=False
                ).delete()
            category = self._category(category_name)
            products, new_products = self._products(parsed, category, options["stock"])
            customers, new_customers = self._customers(parsed)
            order_count, line_count = self._orders(parsed, products, customers, shift)
        elapsed = time.perf_counter() - started
        skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(parsed.skipped.items()))
        self.stdout.write(f"Read {parsed.read} lines; skipped {skipped or 'none'}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {order_count} orders with {line_count} lines, {len(products)} "
                f"products ({new_products} new), {len(customers)} customers "
                f"({new_customers} new) from {path} in {elapsed:.1f} s."
            )
        )

    def _category(self, name: str) -> Category:
        category = Category.objects.filter(name=name).first()
        if category is None:
            slug = slugify(name, allow_unicode=True) or "imported"
            taken = set(Category.objects.values_list("slug", flat=True))
            base, suffix = slug, 2
            while slug in taken:
                slug, suffix = f"{base}-{suffix}", suffix + 1
            category = Category.objects.create(name=name, slug=slug)
        return category

    def _products(
        self, parsed: Parsed, category: Category, stock: int
    ) -> tuple[dict[str, int], int]:
        """``{stock code: product pk}``; products are found again by their slug."""
        slugs = {code: SLUG_PREFIX + slugify(code) for code in parsed.prices}
        existing = dict(
            Product.objects.filter(slug__in=list(slugs.values())).values_list("slug", "pk")
        )
        new = [
            Product(
                name=(parsed.names.get(code) or code)[:200],
                slug=slug,
                category=category,
                price=parsed.prices[code],
                stock=stock,
                is_active=True,
            )
            for code, slug in slugs.items()
            if slug not in existing
        ]
        Product.objects.bulk_create(new, batch_size=BATCH)
        by_slug = dict(
            Product.objects.filter(slug__in=list(slugs.values())).values_list("slug", "pk")
        )
        return {code: by_slug[slug] for code, slug in slugs.items()}, len(new)

    def _customers(self, parsed: Parsed) -> tuple[dict[str, int], int]:
        numbers = sorted({invoice.customer for invoice in parsed.invoices.values()} - {""})
        names = {number: f"{USERNAME_PREFIX}{number}" for number in numbers}
        user_model = get_user_model()
        existing = set(
            user_model.objects.filter(username__in=list(names.values())).values_list(
                "username", flat=True
            )
        )
        password = make_password(None)  # unusable: imported customers cannot log in
        new = [
            user_model(username=name, password=password, email=f"{name}@example.com")
            for name in names.values()
            if name not in existing
        ]
        user_model.objects.bulk_create(new, batch_size=BATCH)
        by_name = dict(
            user_model.objects.filter(username__in=list(names.values())).values_list(
                "username", "pk"
            )
        )
        return {number: by_name[name] for number, name in names.items()}, len(new)

    def _orders(
        self,
        parsed: Parsed,
        products: dict[str, int],
        customers: dict[str, int],
        shift: timedelta,
    ) -> tuple[int, int]:
        invoices = sorted(parsed.invoices.values(), key=lambda item: (item.placed_at, item.number))
        order_count = line_count = 0
        for first in range(0, len(invoices), BATCH):
            chunk = invoices[first : first + BATCH]
            orders = []
            for invoice in chunk:
                subtotal = sum(quantity * yen for _code, quantity, yen in invoice.lines)
                orders.append(
                    Order(
                        customer_id=customers.get(invoice.customer),
                        status=Order.Status.PAID,
                        placed_at=invoice.placed_at + shift,
                        subtotal=subtotal,
                        total=subtotal,
                    )
                )
            Order.objects.bulk_create(orders)
            if orders and orders[0].pk is None:  # pragma: no cover - backends without RETURNING
                raise CommandError("This database backend does not return bulk-created keys.")
            lines = [
                OrderLine(
                    order=order,
                    product_id=products[code],
                    product_name=(parsed.names.get(code) or code)[:200],
                    quantity=quantity,
                    unit_price=yen,
                )
                for order, invoice in zip(orders, chunk, strict=True)
                for code, quantity, yen in invoice.lines
            ]
            OrderLine.objects.bulk_create(lines, batch_size=BATCH)
            order_count += len(orders)
            line_count += len(lines)
        return order_count, line_count
