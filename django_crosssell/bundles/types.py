"""The public data types of bundle evaluation and offers.

``CartLine`` is the host adapter's (:class:`django_crosssell.adapter.CartLine`), re-exported
here so ``bundles.CartLine`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Model

from ..adapter import CartLine
from ..models import BundleRule
from .messages import nudge_message, offer_message

ZERO = Decimal(0)


@dataclass
class AppliedBundle:
    """A rule applied ``times`` times, the units it covers per product and its discount.

    ``units`` is keyed by the canonical product key (a variant counts as its parent).
    """

    rule: BundleRule
    times: int
    units: dict[Any, int]
    discount: Decimal
    #: Regular price of the covered units.
    covered_subtotal: Decimal

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass
class MissingItem:
    product: Model
    quantity: int


@dataclass
class Nudge:
    """Units that would unlock (one more application of) a rule, and what that would save."""

    rule: BundleRule
    missing: list[MissingItem]
    saving: Decimal

    @property
    def units(self) -> int:
        return sum(item.quantity for item in self.missing)

    @property
    def message(self) -> str:
        """For example "Add 1 more to get 10% off" (あと1点で10%オフ), translated when read."""
        return nudge_message(
            self.rule, self.units, [item.product for item in self.missing], self.saving
        )


@dataclass
class BundleEvaluation:
    applied: list[AppliedBundle] = field(default_factory=list)
    total_discount: Decimal = ZERO
    subtotal: Decimal = ZERO
    total: Decimal = ZERO
    nudges: list[Nudge] = field(default_factory=list)
    #: False when a search limit was hit (see :mod:`django_crosssell.bundles.solver`).
    exact: bool = True


@dataclass
class BundleOffer:
    """A current rule that includes a product, priced at the items' current prices."""

    rule: BundleRule
    product: Model
    #: The other products of a set (empty for mix-and-match and multi-buy).
    partners: list[Model]
    #: Units of the rule needed for one application (N, or the set's total quantity).
    units: int
    regular_total: Decimal
    saving: Decimal
    #: ``(product key, quantity)`` of one application of a set (what "add the set" adds).
    items: list[tuple[Any, int]] = field(default_factory=list)

    @property
    def unit_keys(self) -> list[Any]:
        """One product key per unit of the set: the fields an "add the set" form posts."""
        return [key for key, quantity in self.items for _ in range(quantity)]

    @property
    def bundle_total(self) -> Decimal:
        return self.regular_total - self.saving

    @property
    def message(self) -> str:
        return offer_message(self.rule, self.units, self.partners)

    @property
    def headline(self) -> str:
        """The message without the partners' names, which the widget lists right under it."""
        return offer_message(self.rule, self.units, self.partners, name_partners=False)


__all__ = ["AppliedBundle", "BundleEvaluation", "BundleOffer", "CartLine", "MissingItem", "Nudge"]
