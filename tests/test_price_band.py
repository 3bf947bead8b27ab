"""The price band: a cheap consumable's page shows no computed partner far above its price.

``PARTNER_MAX_PRICE_RATIO`` (10 by default, chosen by ``benchmarks/price_band.py`` on real
orders) drops computed partners and bestsellers dearer than the ratio times the product;
staff links always show.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings

from django_crosssell import models as cs
from django_crosssell.recommend import recommend_for_product
from tests.factories import (
    AffinityRunFactory,
    CategoryFactory,
    ProductAffinityFactory,
    ProductFactory,
    ProductRelationFactory,
    make_order,
)
from tests.settings import CROSSSELL

pytestmark = pytest.mark.django_db


@pytest.fixture
def filter_page():
    """A ¥380 filter whose strongest partner is a ¥29,800 machine (bought with it once)."""
    paper = ProductFactory(name="Filter", price=Decimal("380"))
    machine = ProductFactory(name="Espresso machine", price=Decimal("29800"))
    dripper = ProductFactory(name="Dripper", price=Decimal("2200"))
    kettle = ProductFactory(name="Kettle", price=Decimal("3800"))  # 10x = 3,800: inside
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=paper, target=machine, score=0.9)
    ProductAffinityFactory(run=run, source=paper, target=dripper, score=0.5)
    ProductAffinityFactory(run=run, source=paper, target=kettle, score=0.4)
    return paper, machine, dripper, kettle


def names(recs) -> list[str]:
    return [rec.product.name for rec in recs]


def test_computed_partners_above_the_band_are_dropped(filter_page):
    paper, *_ = filter_page
    with override_settings(CROSSSELL={**CROSSSELL, "FALLBACK": None}):
        assert names(recommend_for_product(paper)) == ["Dripper", "Kettle"]


def test_no_cap_shows_them_all(filter_page):
    paper, *_ = filter_page
    settings = {**CROSSSELL, "FALLBACK": None, "PARTNER_MAX_PRICE_RATIO": None}
    with override_settings(CROSSSELL=settings):
        assert names(recommend_for_product(paper)) == ["Espresso machine", "Dripper", "Kettle"]


def test_a_tighter_cap(filter_page):
    paper, *_ = filter_page
    settings = {**CROSSSELL, "FALLBACK": None, "PARTNER_MAX_PRICE_RATIO": 6}
    with override_settings(CROSSSELL=settings):
        assert names(recommend_for_product(paper)) == ["Dripper"]


def test_staff_links_are_never_capped(filter_page):
    paper, machine, *_ = filter_page
    ProductRelationFactory(source=paper, target=machine, kind=cs.ProductRelation.Kind.CROSS_SELL)
    with override_settings(CROSSSELL={**CROSSSELL, "FALLBACK": None}):
        assert names(recommend_for_product(paper))[0] == "Espresso machine"


def test_bestsellers_are_capped_too():
    kitchen = CategoryFactory()
    paper = ProductFactory(name="Filter", price=Decimal("380"), category=kitchen)
    machine = ProductFactory(name="Espresso machine", price=Decimal("29800"), category=kitchen)
    mug = ProductFactory(name="Mug", price=Decimal("1500"), category=kitchen)
    for product in (machine, machine, mug):
        make_order(product)
    assert names(recommend_for_product(paper)) == ["Mug"]
    # The dear machine's own page is not capped downwards: cheaper products always show.
    assert "Mug" in names(recommend_for_product(machine))
