"""``EXCLUDE_PURCHASED = "auto"``: what a customer owns is hidden, what they buy again is not.

Issue 16: a filter's page recommended the coffee maker the buyer already owned, while coffee
beans they bought last month should stay recommendable. "auto" decides per category: a
category where some product has an active replenishment profile (learned from repeat
orders, or set by staff) is bought again.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings

from django_crosssell.models import ReplenishmentProfile
from django_crosssell.recommend import recommend_for_product
from tests.factories import (
    AffinityRunFactory,
    CategoryFactory,
    ProductAffinityFactory,
    ProductFactory,
    make_order,
)
from tests.settings import CROSSSELL

pytestmark = pytest.mark.django_db


@pytest.fixture
def coffee(django_user_model):
    machines, beans_category = CategoryFactory(), CategoryFactory()
    paper = ProductFactory(name="Filter", price=Decimal("380"), category=beans_category)
    maker = ProductFactory(name="Coffee maker", price=Decimal("3800"), category=machines)
    beans = ProductFactory(name="Beans", price=Decimal("1280"), category=beans_category)
    decaf = ProductFactory(name="Decaf", price=Decimal("1380"), category=beans_category)
    ReplenishmentProfile.objects.create(product=beans, staff_interval_days=30)
    run = AffinityRunFactory(current=True)
    for target, score in ((maker, 0.9), (beans, 0.8), (decaf, 0.7)):
        ProductAffinityFactory(run=run, source=paper, target=target, score=score)
    customer = django_user_model.objects.create_user("hanako")
    make_order(maker, beans, decaf, customer=customer)
    return paper, customer


def names(recs) -> list[str]:
    return [rec.product.name for rec in recs]


def test_auto_hides_durables_and_keeps_what_is_bought_again(coffee):
    paper, customer = coffee
    settings = {**CROSSSELL, "FALLBACK": None, "EXCLUDE_PURCHASED": "auto"}
    with override_settings(CROSSSELL=settings):
        # decaf has no profile of its own: its category (beans) is bought again
        assert names(recommend_for_product(paper, user=customer)) == ["Beans", "Decaf"]


def test_true_hides_everything_bought_and_false_nothing(coffee):
    paper, customer = coffee
    with override_settings(CROSSSELL={**CROSSSELL, "FALLBACK": None, "EXCLUDE_PURCHASED": True}):
        assert names(recommend_for_product(paper, user=customer)) == []
    with override_settings(CROSSSELL={**CROSSSELL, "FALLBACK": None, "EXCLUDE_PURCHASED": False}):
        assert names(recommend_for_product(paper, user=customer)) == [
            "Coffee maker",
            "Beans",
            "Decaf",
        ]


def test_an_inactive_profile_does_not_count(coffee):
    paper, customer = coffee
    ReplenishmentProfile.objects.update(is_active=False)
    settings = {**CROSSSELL, "FALLBACK": None, "EXCLUDE_PURCHASED": "auto"}
    with override_settings(CROSSSELL=settings):
        assert names(recommend_for_product(paper, user=customer)) == []


def test_auto_is_the_default(coffee):
    paper, customer = coffee
    with override_settings(CROSSSELL={**CROSSSELL, "FALLBACK": None}):
        assert names(recommend_for_product(paper, user=customer)) == ["Beans", "Decaf"]


def test_auto_adds_no_query(coffee, django_assert_max_num_queries):
    paper, customer = coffee
    settings = {**CROSSSELL, "FALLBACK": None, "EXCLUDE_PURCHASED": "auto"}
    with override_settings(CROSSSELL=settings), django_assert_max_num_queries(2):
        recommend_for_product(paper, user=customer)
