"""A host adapter for a shop whose prices and stock live outside the product (like Oscar's
stock records) and whose variants point at a parent product."""

from typing import Any

from django.db.models import F, Q
from django.db.models.functions import Coalesce

from django_crosssell.adapter import CrossSellAdapter
from tests.testapp.models import Product, StockRecord


class StockRecordAdapter(CrossSellAdapter):
    def available(self, queryset, request=None):
        in_stock = Q(stockrecord__num_in_stock__gt=Coalesce(F("stockrecord__num_allocated"), 0))
        # A parent is available when one of its variants is.
        child_in_stock = Q(
            pk__in=Product.objects.filter(
                children__stockrecord__num_in_stock__gt=Coalesce(
                    F("children__stockrecord__num_allocated"), 0
                )
            ).values("pk")
        )
        return queryset.filter(in_stock | child_in_stock, is_active=True)

    def prices(self, products, request=None):
        products = list(products)
        rows = StockRecord.objects.filter(product__in=[p.pk for p in products])
        prices = dict(rows.values_list("product_id", "price"))
        # A parent costs what its cheapest variant costs.
        missing = [p.pk for p in products if p.pk not in prices]
        if missing:
            for parent, price in (
                StockRecord.objects.filter(product__parent__in=missing)
                .order_by("-price")
                .values_list("product__parent_id", "price")
            ):
                prices[parent] = price
        return prices

    def price_column(self) -> None:
        return None

    def canonical(self, product):
        return product.parent if product.parent_id else product

    def canonical_ids(self, products) -> dict[Any, Any]:
        result, keys = {}, []
        for product in products:
            if isinstance(product, Product):
                result[product.pk] = product.parent_id or product.pk
            else:
                keys.append(product)
        if keys:
            parents = dict(
                Product.objects.filter(pk__in=keys, parent__isnull=False).values_list(
                    "pk", "parent_id"
                )
            )
            result.update({pk: parents.get(pk, pk) for pk in keys})
        return result

    def invalidation_models(self):
        return [StockRecord]

    def settings_used(self):
        return ("CATEGORY_FIELD", "IMAGE_FIELD")


class BrokenAdapter:
    """Not a CrossSellAdapter subclass: system check crosssell.E017."""
