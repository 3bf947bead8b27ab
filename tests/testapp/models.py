"""A minimal host shop for the library's tests.

The product's primary key is a UUID on purpose: the example shop uses integers, so the two
together prove nothing in django-crosssell assumes an integer key.
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse


class Category(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    sku = models.CharField(max_length=50, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    is_active = models.BooleanField(default=True)
    stock = models.PositiveIntegerField(default=10)
    # Variants (a size of a T-shirt) point at the product customers browse; many-to-many
    # tags exercise a many-to-many CATEGORY_FIELD. Used by tests/adapters.py.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    tags = models.ManyToManyField(Category, blank=True, related_name="tagged")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("testapp:product", args=[self.pk])


class StockRecord(models.Model):
    """Prices and stock kept outside the product, as Oscar does (tests/adapters.py)."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="stockrecord")
    price = models.DecimalField(max_digits=10, decimal_places=2)
    num_in_stock = models.PositiveIntegerField(default=0)
    num_allocated = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Stock of {self.product}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"
        CANCELLED = "cancelled"

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PAID)
    placed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Order {self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, null=True, on_delete=models.SET_NULL)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"
