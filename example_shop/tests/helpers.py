"""Small helpers shared by the example shop's tests."""

from __future__ import annotations

from django.test import Client

from example_shop.shop.models import Product


def add_to_cart(client: Client, product: Product, quantity: int | str = 1):
    return client.post(f"/cart/add/{product.pk}/", {"quantity": quantity})


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]
