"""Database constraints and model validation of curated relations and tier ladders."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import override

from django_crosssell.models import ProductRelation, TierStep
from tests.factories import (
    ProductFactory,
    ProductRelationFactory,
    TierLadderFactory,
    TierStepFactory,
)

pytestmark = pytest.mark.django_db


def test_product_keys_are_uuids_so_nothing_assumes_integers():
    relation = ProductRelationFactory()
    relation.refresh_from_db()
    assert not isinstance(relation.source_id, int)
    assert relation.source.pk == relation.source_id


class TestProductRelationConstraints:
    def test_self_link_refused_by_database(self):
        product = ProductFactory()
        with pytest.raises(IntegrityError), transaction.atomic():
            ProductRelation.objects.create(source=product, target=product)

    def test_self_link_refused_by_validation(self):
        product = ProductFactory()
        with pytest.raises(ValidationError) as exc:
            ProductRelation(source=product, target=product).full_clean()
        assert "A product cannot be linked to itself." in str(exc.value)

    def test_duplicate_refused_by_database(self):
        relation = ProductRelationFactory()
        with pytest.raises(IntegrityError), transaction.atomic():
            ProductRelation.objects.create(
                source=relation.source, target=relation.target, kind=relation.kind
            )

    def test_same_pair_with_other_kind_is_allowed(self):
        relation = ProductRelationFactory(kind=ProductRelation.Kind.CROSS_SELL)
        other = ProductRelation(
            source=relation.source, target=relation.target, kind=ProductRelation.Kind.RELATED
        )
        other.full_clean()
        other.save()
        assert ProductRelation.objects.count() == 2

    def test_duplicate_refused_by_validation(self):
        relation = ProductRelationFactory()
        duplicate = ProductRelation(
            source=relation.source, target=relation.target, kind=relation.kind
        )
        with pytest.raises(ValidationError) as exc:
            duplicate.full_clean()
        assert "already linked" in str(exc.value)

    def test_end_before_start_refused_by_database(self):
        now = timezone.now()
        with pytest.raises(IntegrityError), transaction.atomic():
            ProductRelationFactory(starts_at=now, ends_at=now - timedelta(days=1))

    def test_end_before_start_refused_by_validation_in_japanese(self):
        now = timezone.now()
        relation = ProductRelation(
            source=ProductFactory(),
            target=ProductFactory(),
            starts_at=now,
            ends_at=now - timedelta(hours=1),
        )
        with override("ja"), pytest.raises(ValidationError) as exc:
            relation.full_clean()
        with override("ja"):
            assert "終了日時は開始日時より後にしてください。" in str(exc.value.messages)


class TestCurrentRelations:
    def test_current_means_active_and_inside_window(self):
        now = timezone.now()
        live = ProductRelationFactory()
        ProductRelationFactory(is_active=False)
        ProductRelationFactory(starts_at=now + timedelta(days=1))
        ProductRelationFactory(ends_at=now - timedelta(seconds=1))
        windowed = ProductRelationFactory(
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1)
        )
        current = set(ProductRelation.objects.current(now))
        assert current == {live, windowed}
        assert all(r.is_current(now) for r in current)

    def test_window_end_is_exclusive(self):
        now = timezone.now()
        relation = ProductRelationFactory(starts_at=now - timedelta(days=1), ends_at=now)
        assert not ProductRelation.objects.current(now).exists()
        assert not relation.is_current(now)
        assert relation.is_current(now - timedelta(seconds=1))


class TestTierLadder:
    def test_duplicate_rank_refused_by_database(self):
        step = TierStepFactory(rank=1)
        with pytest.raises(IntegrityError), transaction.atomic():
            TierStep.objects.create(ladder=step.ladder, product=ProductFactory(), rank=1)

    def test_duplicate_rank_refused_by_validation(self):
        step = TierStepFactory(rank=1)
        with pytest.raises(ValidationError) as exc:
            TierStep(ladder=step.ladder, product=ProductFactory(), rank=1).full_clean()
        assert "Each rank can be used only once per ladder." in str(exc.value)

    def test_product_once_per_ladder(self):
        step = TierStepFactory(rank=1)
        with pytest.raises(IntegrityError), transaction.atomic():
            TierStep.objects.create(ladder=step.ladder, product=step.product, rank=2)

    def test_same_product_on_two_ladders_is_fine(self):
        product = ProductFactory()
        TierStepFactory(product=product, ladder=TierLadderFactory())
        TierStepFactory(product=product, ladder=TierLadderFactory())
        assert TierStep.objects.filter(product=product).count() == 2

    def test_steps_are_ordered_by_rank(self):
        ladder = TierLadderFactory()
        TierStepFactory(ladder=ladder, rank=3, label="Pro")
        TierStepFactory(ladder=ladder, rank=1, label="Basic")
        TierStepFactory(ladder=ladder, rank=2, label="Standard")
        assert [s.label for s in ladder.steps.all()] == ["Basic", "Standard", "Pro"]
