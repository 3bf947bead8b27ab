"""Small helpers shared by the example shop's tests."""

from __future__ import annotations

from django.test import Client

from example_shop.shop.models import Order, OrderLine, Product


def add_to_cart(client: Client, product: Product, quantity: int | str = 1):
    return client.post(f"/cart/add/{product.pk}/", {"quantity": quantity})


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def place_orders(products: dict[str, Product], baskets: list[tuple[tuple[str, ...], int]]) -> None:
    """Paid orders of known baskets (``((keys...), times)``): the co-purchases a test's
    recompute should find."""
    for keys, times in baskets:
        for _ in range(times):
            order = Order.objects.create(status=Order.Status.PAID)
            for key in keys:
                product = products[key]
                OrderLine.objects.create(
                    order=order,
                    product=product,
                    product_name=product.name,
                    unit_price=product.price,
                )
