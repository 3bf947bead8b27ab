"""Building an Oscar shop for the tests with Oscar's own models and checkout classes.

The issue's shop in miniature: a parent T-shirt with S/M/L children, jeans, a mug, socks and
an e-book whose product class does not track stock; prices and stock in stock records;
orders placed through Oscar's ``OrderCreator`` and ``OrderTotalCalculator``, so their lines,
discounts and stock allocations are what a real checkout writes.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.test import RequestFactory
from oscar.apps.checkout.calculators import OrderTotalCalculator
from oscar.apps.offer.applicator import Applicator
from oscar.apps.order.utils import OrderCreator
from oscar.apps.partner.strategy import Default, Selector
from oscar.apps.shipping.methods import Free
from oscar.core.loading import get_model

Basket = get_model("basket", "Basket")
Category = get_model("catalogue", "Category")
Partner = get_model("partner", "Partner")
Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductImage = get_model("catalogue", "ProductImage")
StockRecord = get_model("partner", "StockRecord")

_sku = itertools.count(1)


def product_class(name: str = "Clothing", *, track_stock: bool = True) -> Any:
    slug = name.lower().replace(" ", "-")
    found, _ = ProductClass.objects.get_or_create(
        slug=slug, defaults={"name": name, "track_stock": track_stock}
    )
    return found


def category(name: str) -> Any:
    found = Category.objects.filter(name=name).first()
    return found or Category.add_root(name=name, slug=name.lower())


def stock(product: Any, price: str | None, num_in_stock: int | None = 10) -> Any:
    partner, _ = Partner.objects.get_or_create(name="Warehouse")
    return StockRecord.objects.create(
        product=product,
        partner=partner,
        partner_sku=f"SKU-{next(_sku)}",
        price=None if price is None else Decimal(price),
        num_in_stock=num_in_stock,
    )


def product(
    title: str,
    price: str | None = None,
    *,
    num_in_stock: int | None = 10,
    cls: Any = None,
    categories: tuple[Any, ...] = (),
    image: str | None = None,
) -> Any:
    """A standalone product (with a stock record when it has a price)."""
    made = Product.objects.create(
        title=title, slug=title.lower().replace(" ", "-"), product_class=cls or product_class()
    )
    if categories:
        made.categories.set(categories)
    if price is not None:
        stock(made, price, num_in_stock)
    if image:
        ProductImage.objects.create(product=made, original=image, display_order=0)
    return made


def parent(title: str, *, cls: Any = None, categories: tuple[Any, ...] = ()) -> Any:
    made = Product.objects.create(
        title=title,
        slug=title.lower().replace(" ", "-"),
        structure=Product.PARENT,
        product_class=cls or product_class(),
    )
    if categories:
        made.categories.set(categories)
    return made


def child(of: Any, title: str, price: str, *, num_in_stock: int | None = 10) -> Any:
    made = Product.objects.create(
        title=title, slug=title.lower().replace(" ", "-"), structure=Product.CHILD, parent=of
    )
    stock(made, price, num_in_stock)
    return made


def catalogue() -> SimpleNamespace:
    """The T-shirt (S 12.50, M 12.50, L 14.00), jeans 49.99, mug 8.25, socks 4.50, e-book."""
    clothing, kitchen = category("Clothing"), category("Kitchen")
    shirt = parent("Classic T-shirt", categories=(clothing,))
    return SimpleNamespace(
        shirt=shirt,
        small=child(shirt, "Classic T-shirt S", "12.50"),
        medium=child(shirt, "Classic T-shirt M", "12.50"),
        large=child(shirt, "Classic T-shirt L", "14.00"),
        jeans=product("Jeans", "49.99", categories=(clothing,), image="images/products/jeans.jpg"),
        mug=product("Mug", "8.25", categories=(kitchen,)),
        socks=product("Socks", "4.50", categories=(clothing,)),
        ebook=product(
            "E-book", "5.00", num_in_stock=None, cls=product_class("Books", track_stock=False)
        ),
    )


def request(user: Any = None, path: str = "/") -> Any:
    """A request as Oscar's ``BasketMiddleware`` leaves it: with the user's strategy."""
    from django.contrib.auth.models import AnonymousUser

    made = RequestFactory().get(path)
    made.user = user or AnonymousUser()
    made.strategy = Selector().strategy(request=made, user=made.user)
    return made


def basket(*lines: tuple[Any, int], owner: Any = None, strategy: Any = None) -> Any:
    """A saved basket holding ``(product, quantity)`` lines, offers applied as Oscar does."""
    made = Basket.objects.create(owner=owner)
    made.strategy = strategy or Default()
    for item, quantity in lines:
        made.add_product(item, quantity)
    return apply_offers(made)


def apply_offers(made: Any) -> Any:
    """What Oscar's middleware does on each request: fresh lines, every offer applied."""
    made.reset_offer_applications()
    Applicator().apply(made, made.owner)
    return made


def place_order(made: Any, user: Any = None, **kwargs: Any) -> Any:
    """Oscar's checkout: the total from ``OrderTotalCalculator``, then ``OrderCreator``."""
    shipping = Free()
    charge = shipping.calculate(made)
    total = OrderTotalCalculator().calculate(made, charge)
    order = OrderCreator().place_order(
        basket=made,
        total=total,
        shipping_method=shipping,
        shipping_charge=charge,
        user=user,
        **kwargs,
    )
    made.submit()
    return order


def buy(*lines: tuple[Any, int], user: Any = None, **kwargs: Any) -> Any:
    """An order of ``(product, quantity)`` lines placed through Oscar's checkout."""
    return place_order(basket(*lines, owner=user), user=user, **kwargs)
