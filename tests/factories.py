"""factory-boy factories for the test host (tests.testapp) and django-crosssell models."""

from decimal import Decimal

import factory
from django.utils import timezone

from django_crosssell import models as cs
from tests.testapp import models as shop


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = shop.Category

    name = factory.Sequence(lambda n: f"Category {n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = shop.Product

    name = factory.Sequence(lambda n: f"Product {n}")
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    price = Decimal("1000.00")
    category = factory.SubFactory(CategoryFactory)
    is_active = True
    stock = 10


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = shop.Order

    status = shop.Order.Status.PAID
    placed_at = factory.LazyFunction(timezone.now)


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = shop.OrderLine

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price = factory.LazyAttribute(lambda line: line.product.price)


def make_order(*products, status=shop.Order.Status.PAID, placed_at=None, customer=None):
    """One order containing each given product once."""
    order = OrderFactory(status=status, placed_at=placed_at or timezone.now(), customer=customer)
    for product in products:
        OrderLineFactory(order=order, product=product)
    return order


class ProductRelationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = cs.ProductRelation

    source = factory.SubFactory(ProductFactory)
    target = factory.SubFactory(ProductFactory)
    kind = cs.ProductRelation.Kind.CROSS_SELL
    position = 0


class TierLadderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = cs.TierLadder

    name = factory.Sequence(lambda n: f"Ladder {n}")
    slug = factory.Sequence(lambda n: f"ladder-{n}")


class TierStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = cs.TierStep

    ladder = factory.SubFactory(TierLadderFactory)
    product = factory.SubFactory(ProductFactory)
    rank = factory.Sequence(lambda n: n + 1)
    label = factory.Sequence(lambda n: f"Tier {n}")


class BundleRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = cs.BundleRule

    name = factory.Sequence(lambda n: f"Bundle {n}")
    slug = factory.Sequence(lambda n: f"bundle-{n}")
    kind = cs.BundleRule.Kind.FIXED_SET
    discount_type = cs.BundleRule.DiscountType.PERCENT
    value = Decimal("10")


class BundleItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = cs.BundleItem

    rule = factory.SubFactory(BundleRuleFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1


class AffinityRunFactory(factory.django.DjangoModelFactory):
    """A finished recompute. ``AffinityRunFactory(current=True)`` is the one the
    recommendation service reads (at most one run is current)."""

    class Meta:
        model = cs.AffinityRun

    status = cs.AffinityRun.Status.SUCCEEDED
    is_current = False

    class Params:
        current = factory.Trait(is_current=True)


class ProductAffinityFactory(factory.django.DjangoModelFactory):
    """One stored pair of a run; ``confidence`` follows ``score`` unless given."""

    class Meta:
        model = cs.ProductAffinity

    run = factory.SubFactory(AffinityRunFactory)
    source = factory.SubFactory(ProductFactory)
    target = factory.SubFactory(ProductFactory)
    co_count = 3
    support = 0.1
    confidence = factory.SelfAttribute("score")
    lift = 1.5
    score = 0.5
