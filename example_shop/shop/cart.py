"""The session cart of the example shop.

The session stores only ``{product_id: quantity}``; prices, names and availability are read
from the database when the cart is used, so a price change or a product taken off sale is
reflected at once and a stale session can never sell something that is no longer offered.
Every product of the cart is loaded with one query.

Other parts of the demo build on this API: the bundle widgets read :attr:`Cart.lines` and
replace the body of :meth:`Cart.evaluate_discounts`; the downgrade offer reads
:attr:`Cart.last_removed`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest

from django_crosssell import bundles
from django_crosssell.timeouts import bounded, is_timeout

from .models import Product

logger = logging.getLogger(__name__)

SESSION_KEY = "shop_cart"
LAST_REMOVED_KEY = "shop_cart_last_removed"
#: Units of one product a cart may hold; keeps a typo (1000 for 10) out of checkout.
MAX_QUANTITY = 99
_REQUEST_ATTR = "_shop_cart"


@dataclass
class CartLine:
    product: Product
    quantity: int
    unit_price: int

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity

    @property
    def product_name(self) -> str:
        """Same attribute as ``OrderLine``, so one template shows carts and orders."""
        return self.product.name


@dataclass(frozen=True)
class AppliedDiscount:
    """One discount on the cart, as checkout stores it in ``OrderDiscount``."""

    name: str
    amount: int
    rule_slug: str = ""


class Cart:
    """A customer's cart, kept in the session; see the module docstring."""

    #: True when the bundle discounts could not be computed in time (the page shows the
    #: cart without them and checkout waits): never charge a total that may lack them.
    discounts_unavailable = False

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.session = request.session

    # --- reading ---------------------------------------------------------------------------

    def _items(self) -> dict[str, int]:
        items = self.session.get(SESSION_KEY)
        return items if isinstance(items, dict) else {}

    @cached_property
    def lines(self) -> list[CartLine]:
        """Lines in the order the products were first added, for products still on sale."""
        items = self._items()
        if not items:
            return []
        ids = [int(pk) for pk in items if str(pk).isdigit()]
        products = Product.objects.filter(pk__in=ids, is_active=True).select_related("category")
        by_id = {product.pk: product for product in products}
        lines = []
        for key, quantity in items.items():
            product = by_id.get(int(key)) if str(key).isdigit() else None
            if product is None or not isinstance(quantity, int) or quantity < 1:
                continue
            lines.append(CartLine(product=product, quantity=quantity, unit_price=product.price))
        if len(lines) != len(items):
            # Products deleted or taken off sale drop out silently, also from the session.
            self._write({str(line.product.pk): line.quantity for line in lines})
        return lines

    @property
    def products(self) -> list[Product]:
        return [line.product for line in self.lines]

    @property
    def count(self) -> int:
        """Units in the cart (what the header shows)."""
        return sum(line.quantity for line in self.lines)

    @property
    def subtotal(self) -> int:
        return sum(line.line_total for line in self.lines)

    @cached_property
    def _discounts(self) -> tuple[int, list[AppliedDiscount]]:
        amount, applied = self.evaluate_discounts()
        # A discount can never make the total negative, whatever a rule says.
        return min(int(amount), self.subtotal), list(applied)

    @property
    def discount(self) -> int:
        return self._discounts[0]

    @property
    def applied_discounts(self) -> list[AppliedDiscount]:
        return self._discounts[1]

    @property
    def total(self) -> int:
        return self.subtotal - self.discount

    def evaluate_discounts(self) -> tuple[int, list[AppliedDiscount]]:
        """Return ``(discount in yen, applied discounts)`` for the current lines.

        The single place where bundle rules meet the cart, so the bundle engine can be
        plugged in by replacing this body; everything else (totals, checkout's
        ``OrderDiscount`` rows) follows from its result.
        """
        evaluation = self.bundle_evaluation
        applied = [
            AppliedDiscount(name=a.rule.name, amount=int(a.discount), rule_slug=a.rule.slug)
            for a in evaluation.applied
        ]
        return int(evaluation.total_discount), applied

    @cached_property
    def bundle_evaluation(self) -> bundles.BundleEvaluation:
        """django-crosssell's bundle evaluation of the lines (applied bundles and nudges).

        Kept on the cart so the cart page's ``{% bundle_progress cart.bundle_evaluation %}``
        and the totals come from one evaluation (one query).
        """
        lines = [bundles.CartLine(line.product, line.quantity, line.unit_price) for line in self]
        try:
            with bounded():  # a locked rule table must not hang the cart page
                user = getattr(self.request, "user", None)
                return bundles.evaluate(
                    lines, user=user if user is not None and user.is_authenticated else None
                )
        except DatabaseError as exc:
            if not is_timeout(exc):
                raise
            logger.warning("bundle discounts could not be evaluated in time: %s", exc)
            self.discounts_unavailable = True
            subtotal = Decimal(self.subtotal)
            return bundles.BundleEvaluation(subtotal=subtotal, total=subtotal)

    def quantity_of(self, product: Product) -> int:
        return self._items().get(str(product.pk), 0)

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self):
        return iter(self.lines)

    def __bool__(self) -> bool:
        return bool(self.lines)

    @cached_property
    def last_removed(self) -> Product | None:
        """The product removed most recently (until the next add), if still on sale."""
        pk = self.session.get(LAST_REMOVED_KEY)
        if not isinstance(pk, int):
            return None
        return Product.objects.filter(pk=pk, is_active=True).first()

    # --- changing --------------------------------------------------------------------------

    @staticmethod
    def _check_quantity(quantity: Any, minimum: int) -> int:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise TypeError("quantity must be an int")
        if not minimum <= quantity <= MAX_QUANTITY:
            raise ValueError(f"quantity must be between {minimum} and {MAX_QUANTITY}")
        return quantity

    def add(self, product: Product, quantity: int = 1) -> None:
        """Add units (capped at :data:`MAX_QUANTITY` in total)."""
        self._check_quantity(quantity, 1)
        items = self._items()
        key = str(product.pk)
        items[key] = min(items.get(key, 0) + quantity, MAX_QUANTITY)
        self.session.pop(LAST_REMOVED_KEY, None)
        self._write(items)

    def set(self, product: Product, quantity: int) -> None:
        """Set the units of a product; 0 removes it."""
        self._check_quantity(quantity, 0)
        if quantity == 0:
            self.remove(product)
            return
        items = self._items()
        items[str(product.pk)] = quantity
        self._write(items)

    def remove(self, product: Product) -> None:
        items = self._items()
        if items.pop(str(product.pk), None) is not None:
            self.session[LAST_REMOVED_KEY] = product.pk
        self._write(items)

    def clear(self) -> None:
        self.session.pop(LAST_REMOVED_KEY, None)
        self._write({})

    def _write(self, items: dict[str, int]) -> None:
        self.session[SESSION_KEY] = items
        self.session.modified = True
        for name in ("lines", "_discounts", "last_removed", "bundle_evaluation"):
            self.__dict__.pop(name, None)


def get_cart(request: HttpRequest) -> Cart:
    """The request's cart, shared by views and the context processor (one load per request)."""
    cart = getattr(request, _REQUEST_ATTR, None)
    if cart is None:
        cart = Cart(request)
        setattr(request, _REQUEST_ATTR, cart)
    return cart
