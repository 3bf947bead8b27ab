"""Edits that change what a widget shows bump the cache version: no stale widget."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from django_crosssell import cache
from django_crosssell.recommend import recommend_for_product, upgrade_for
from tests.factories import (
    AffinityRunFactory,
    BundleItemFactory,
    BundleRuleFactory,
    ProductFactory,
    ProductRelationFactory,
    TierLadderFactory,
    TierStepFactory,
)

pytestmark = pytest.mark.django_db


def bumps(action) -> bool:
    before = cache.current_version()
    action()
    return cache.current_version() > before


@pytest.fixture
def relation():
    return ProductRelationFactory()


def test_relation_save_and_delete_invalidate(relation):
    def edit():
        relation.position = 9
        relation.save()

    assert bumps(edit)
    assert bumps(relation.delete)
    assert bumps(lambda: ProductRelationFactory())


def test_ladders_steps_bundles_runs_and_products_invalidate(db):
    ladder = TierLadderFactory()
    step = TierStepFactory(ladder=ladder)
    rule = BundleRuleFactory()
    item = BundleItemFactory(rule=rule)
    product = ProductFactory()

    def rename_ladder():
        ladder.name = "Renamed"
        ladder.save()

    def reprice():
        product.price = Decimal("1.00")
        product.save()

    assert bumps(rename_ladder)
    assert bumps(step.delete)
    assert bumps(lambda: BundleItemFactory(rule=rule))
    assert bumps(item.delete)
    assert bumps(rule.delete)
    assert bumps(AffinityRunFactory)
    assert bumps(reprice)


def test_unrelated_models_do_not_invalidate(django_user_model):
    assert not bumps(lambda: django_user_model.objects.create_user("nobody"))


def test_no_stale_recommendations_after_an_admin_edit(db):
    source, first, second = ProductFactory(), ProductFactory(), ProductFactory()
    link = ProductRelationFactory(source=source, target=first)
    assert [r.product for r in recommend_for_product(source)] == [first]

    link.target = second
    link.save()
    assert [r.product for r in recommend_for_product(source)] == [second]

    second.is_active = False
    second.save()
    assert recommend_for_product(source) == []


def test_tier_edits_show_at_once(db):
    ladder = TierLadderFactory()
    low = TierStepFactory(ladder=ladder, rank=1, product=ProductFactory(price=Decimal(100)))
    high = TierStepFactory(ladder=ladder, rank=2, product=ProductFactory(price=Decimal(120)))
    assert upgrade_for(low.product).product == high.product
    high.delete()
    assert upgrade_for(low.product) is None


def test_a_transaction_invalidates_again_when_it_commits(
    relation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        before = cache.current_version()
        relation.save()
        during = cache.current_version()
    after = cache.current_version()  # the captured on_commit callbacks ran on exit
    assert during > before and after > during
    assert cache.invalidate in callbacks
