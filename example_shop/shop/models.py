"""The example shop's own catalogue and orders: django-crosssell only points at them."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Category(models.Model):
    name = models.CharField("名前", max_length=100)
    slug = models.SlugField(unique=True)
    position = models.PositiveSmallIntegerField("表示順", default=0)

    class Meta:
        verbose_name = verbose_name_plural = "カテゴリ"
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:category", args=[self.slug])


class Product(models.Model):
    name = models.CharField("商品名", max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    category = models.ForeignKey(
        Category, verbose_name="カテゴリ", on_delete=models.PROTECT, related_name="products"
    )
    price = models.PositiveIntegerField("価格（円）")
    stock = models.PositiveIntegerField("在庫", default=0)
    is_active = models.BooleanField("公開", default=True)
    description = models.TextField("説明", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = verbose_name_plural = "商品"
        ordering = ["category", "name"]
        indexes = [models.Index(fields=["is_active", "stock"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:product", args=[self.slug])

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "未払い"
        PAID = "paid", "支払い済み"
        CANCELLED = "cancelled", "キャンセル"

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="顧客",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    status = models.CharField("状態", max_length=20, choices=Status.choices, default=Status.PAID)
    placed_at = models.DateTimeField("注文日時", default=timezone.now, db_index=True)
    subtotal = models.PositiveIntegerField("小計（円）", default=0)
    discount = models.PositiveIntegerField("割引（円）", default=0)
    total = models.PositiveIntegerField("合計（円）", default=0)

    class Meta:
        verbose_name = verbose_name_plural = "注文"
        ordering = ["-placed_at", "-pk"]

    def __str__(self) -> str:
        return f"注文 #{self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        Product, null=True, on_delete=models.SET_NULL, related_name="order_lines"
    )
    product_name = models.CharField("商品名", max_length=200)
    quantity = models.PositiveIntegerField("数量", default=1)
    unit_price = models.PositiveIntegerField("単価（円）")

    class Meta:
        verbose_name = verbose_name_plural = "注文明細"

    def __str__(self) -> str:
        return f"{self.product_name} × {self.quantity}"

    @property
    def line_total(self) -> int:
        return self.quantity * self.unit_price


class OrderDiscount(models.Model):
    """A bundle discount applied at checkout, kept so order history shows what was paid."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="discounts")
    name = models.CharField("割引名", max_length=200)
    rule_slug = models.SlugField("ルール", max_length=200, blank=True)
    amount = models.PositiveIntegerField("割引額（円）")

    class Meta:
        verbose_name = verbose_name_plural = "注文の割引"

    def __str__(self) -> str:
        return f"{self.name} -¥{self.amount:,}"
