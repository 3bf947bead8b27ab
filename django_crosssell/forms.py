"""Forms for bundle rules: the checks that need a rule's items.

The rule's own fields are validated by ``BundleRule.clean()`` and the database constraints;
what depends on the items (how many products a set lists, whether a fixed bundle price is
really a saving) can only be checked where the items are edited, which in the admin is the
inline formset. :func:`validate_items` holds those checks so scripts and imports can run
them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.formsets import DELETION_FIELD_NAME
from django.utils.text import get_text_list
from django.utils.translation import gettext as _

from .bundles import product_prices
from .models import BundleRule
from .money import format_money


def validate_items(rule: BundleRule, items: Iterable[tuple[Any, int]]) -> None:
    """Raise ``ValidationError`` unless ``items`` ((product, quantity) pairs) suit ``rule``."""
    items = [(product, int(quantity or 0)) for product, quantity in items]
    errors = []
    products = [product for product, _ in items]
    if rule.kind == BundleRule.Kind.FIXED_SET:
        if len({p.pk for p in products}) < 2:
            errors.append(
                ValidationError(_("A set needs at least two different products."), code="set_size")
            )
    else:
        if not products:
            errors.append(
                ValidationError(_("List at least one eligible product."), code="no_products")
            )
        if any(quantity != 1 for _, quantity in items):
            errors.append(
                ValidationError(
                    _(
                        "Mix-and-match and multi-buy rules count the units needed on the rule; "
                        "leave every item quantity at 1."
                    ),
                    code="item_quantity",
                )
            )
    if rule.discount_type == BundleRule.DiscountType.FIXED_PRICE and rule.value is not None:
        regular = _cheapest_regular_total(rule, items)
        if regular is not None and Decimal(rule.value) >= regular:
            errors.append(
                ValidationError(
                    _(
                        "The fixed bundle price (%(price)s) must be lower than the items' "
                        "regular total (%(regular)s)."
                    )
                    % {
                        "price": format_money(Decimal(rule.value)),
                        "regular": format_money(regular),
                    },
                    code="fixed_price_too_high",
                )
            )
    if errors:
        raise ValidationError(errors)


def _cheapest_regular_total(rule: BundleRule, items: list[tuple[Any, int]]) -> Decimal | None:
    """Regular price of the cheapest way to fill one bundle (what the fixed price must beat)."""
    found = product_prices(product for product, _ in items)  # one call for all items
    prices: list[tuple[Decimal, int]] = []
    for product, quantity in items:
        price = found.get(product.pk)
        if price is None:
            return None
        prices.append((price, quantity))
    if not prices:
        return None
    if rule.kind == BundleRule.Kind.FIXED_SET:
        return sum((price * quantity for price, quantity in prices), Decimal(0))
    if not rule.min_quantity:
        return None
    return min(price for price, _ in prices) * rule.min_quantity


class VerboseUniqueFormSet(forms.BaseInlineFormSet):
    """Duplicate-row errors that name fields as the form labels them.

    Django's formsets name the model fields of a unique check by their attribute names
    ("product"), which reads as English inside a Japanese page; this uses the verbose names.
    """

    def get_unique_error_message(self, unique_check: Any) -> str:
        opts = self.model._meta
        names = []
        for name in unique_check:
            try:
                names.append(str(opts.get_field(name).verbose_name))
            except Exception:  # not a model field: keep the name
                names.append(str(name))
        if len(names) == 1:
            return _("Please correct the duplicate data for %(field)s.") % {"field": names[0]}
        return _("Please correct the duplicate data for %(field)s, which must be unique.") % {
            "field": get_text_list(names, _("and"))
        }


class BundleItemFormSet(VerboseUniqueFormSet):
    """Checks the items together with the rule being edited (its unsaved values)."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return  # item errors first; the totals would be misleading
        rule = self.instance
        if not rule.kind or not rule.discount_type:
            return  # the rule form reports the missing fields
        items = []
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            # What BaseFormSet._should_delete_form() reads (private, so not in the stubs).
            if self.can_delete and form.cleaned_data.get(DELETION_FIELD_NAME, False):
                continue
            product = form.cleaned_data.get("product")
            if product is not None:
                items.append((product, form.cleaned_data.get("quantity") or 1))
        validate_items(rule, items)
