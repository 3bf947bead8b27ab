"""Replenishment intervals learned from orders, proven on simulated orders with a known
answer; due dates; the subscription suggestion for regular buyers."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import pytest

from django_crosssell.followup import intervals, replenishment, subscription
from django_crosssell.followup.models import ReplenishmentProfile
from django_crosssell.followup.replenishment import learned_interval, plan
from tests.factories import OrderLineFactory, ProductFactory, make_order

from .conftest import T0

D = timedelta(days=1)


# --- pure statistics -------------------------------------------------------------------------


def test_per_unit_gaps_divide_by_the_quantity_and_merge_same_day_purchases():
    purchases = [
        (T0, 3),
        (T0 + 90 * D, 1),
        (T0 + 90 * D + timedelta(hours=2), 1),
        (T0 + 150 * D, 1),
    ]
    # 3 units lasted 90 days; then 2 units (two orders that afternoon) lasted 60 days.
    assert intervals.per_unit_gaps(purchases) == [30.0, 30.0]
    assert intervals.per_unit_gaps([(T0, 1)]) == []


def test_shrinkage_toward_the_staff_value():
    assert intervals.shrink(40.0, 2, 20.0, 10) == pytest.approx((2 * 40 + 10 * 20) / 12)
    assert intervals.shrink(40.0, 1000, 20.0, 10) == pytest.approx(39.8, abs=0.01)
    assert intervals.shrink(None, 0, 20.0, 10) == 20.0
    assert intervals.shrink(40.0, 3, None, 10) == 40.0


def test_without_a_staff_value_a_small_sample_gives_no_interval(settings):
    assert learned_interval([30.0, 31.0], 2, None).interval_days is None
    assert learned_interval([30.0] * 5, 5, None).interval_days == 30.0


def test_coefficient_of_variation():
    assert intervals.coefficient_of_variation([30, 30, 30]) == 0
    assert intervals.coefficient_of_variation([10, 50]) == pytest.approx(math.sqrt(800) / 30)
    assert intervals.coefficient_of_variation([5]) is None


# --- learning from orders (simulated, known answer) -----------------------------------------


def simulate(product, *, customers, days_per_unit, repeats, seed, noise=0.15, start=None):
    """Customers buying ``product`` again when their supply runs out: each purchase of q
    units lasts q x days_per_unit x a log-normal factor with median 1."""
    rng = random.Random(seed)
    start = start or T0 - 700 * D
    for _ in range(customers):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user(username=f"sim-{seed}-{rng.random()}")
        at = start + rng.uniform(0, 30) * D
        for _ in range(repeats + 1):
            quantity = rng.choice([1, 1, 2, 3])
            order = make_order(customer=user, placed_at=at)
            OrderLineFactory(order=order, product=product, quantity=quantity)
            at += quantity * days_per_unit * math.exp(rng.gauss(0, noise)) * D


@pytest.mark.django_db
def test_the_learned_interval_recovers_the_simulated_one():
    beans, tea = ProductFactory(name="Beans"), ProductFactory(name="Tea")
    simulate(beans, customers=40, days_per_unit=30, repeats=4, seed=1)
    simulate(tea, customers=40, days_per_unit=12, repeats=4, seed=2)
    ReplenishmentProfile.objects.create(product=beans, staff_interval_days=25)

    learned = replenishment.learn_intervals(now=T0)

    # 160 gaps each: the median per unit is the true value within a few percent, and the
    # staff value (weight 10) moves it only slightly.
    assert learned[beans.pk].gaps == 160 and learned[beans.pk].customers == 40
    assert learned[beans.pk].median_days == pytest.approx(30, rel=0.04)
    expected = (160 * learned[beans.pk].median_days + 10 * 25) / 170
    assert learned[beans.pk].interval_days == pytest.approx(expected)
    assert learned[tea.pk].median_days == pytest.approx(12, rel=0.04)
    profile = ReplenishmentProfile.objects.get(product=beans)
    assert profile.learned_interval_days == pytest.approx(expected)
    assert profile.interval_days == profile.learned_interval_days
    # Tea had no profile: one is suggested, inactive, for staff to review.
    suggested = ReplenishmentProfile.objects.get(product=tea)
    assert not suggested.is_active
    assert suggested.learned_median_days == pytest.approx(12, rel=0.04)


@pytest.mark.django_db
def test_a_small_sample_stays_close_to_the_staff_value():
    beans = ProductFactory()
    simulate(beans, customers=1, days_per_unit=40, repeats=2, seed=3, noise=0)
    ReplenishmentProfile.objects.create(product=beans, staff_interval_days=20)

    learned = replenishment.learn_intervals(now=T0)[beans.pk]

    assert learned.gaps == 2 and learned.median_days == pytest.approx(40)
    assert learned.interval_days == pytest.approx((2 * 40 + 10 * 20) / 12)  # 23.3 days


@pytest.mark.django_db
def test_orders_outside_the_lookback_and_unpaid_orders_do_not_count(settings):
    beans = ProductFactory()
    simulate(beans, customers=3, days_per_unit=30, repeats=3, seed=4, start=T0 - 900 * D)
    assert replenishment.learn_intervals(now=T0) == {}  # all older than 730 days
    simulate(beans, customers=3, days_per_unit=30, repeats=3, seed=5)
    from tests.testapp.models import Order

    Order.objects.filter(placed_at__gt=T0 - 730 * D).update(status=Order.Status.PENDING)
    assert replenishment.learn_intervals(now=T0) == {}


@pytest.mark.django_db
def test_a_customer_who_repeated_gets_their_own_median(customer):
    beans = ProductFactory()
    profile = ReplenishmentProfile.objects.create(product=beans, staff_interval_days=30)
    at = T0 - 60 * D
    for gap in (0, 20, 20):  # this customer uses a unit every 20 days
        at += gap * D
        make_order(beans, customer=customer, placed_at=at)

    found = plan(profile, customer=customer.pk, quantity=2, at=at)

    assert found.source == "customer" and found.interval_days == pytest.approx(20)
    assert found.due_at == at + 2 * 20 * D - 3 * D
    other = plan(profile, customer=None, quantity=1, at=at)
    assert other.source == "staff" and other.due_at == at + 27 * D


@pytest.mark.django_db
def test_a_profile_without_any_interval_plans_nothing():
    profile = ReplenishmentProfile.objects.create(product=ProductFactory())
    assert plan(profile, customer=None, quantity=1, at=T0) is None


@pytest.mark.django_db
def test_a_due_date_is_never_before_the_day_after_the_purchase():
    profile = ReplenishmentProfile.objects.create(
        product=ProductFactory(), staff_interval_days=2, lead_days=5
    )
    assert plan(profile, customer=None, quantity=1, at=T0).due_at == T0 + D


# --- the subscription suggestion -------------------------------------------------------------


class SubscribingAdapter:
    calls: list = []

    def __new__(cls):
        from django_crosssell.adapter import CrossSellAdapter

        class Adapter(CrossSellAdapter):
            def subscription_offer(self, customer, product, interval_days):
                cls.calls.append((customer, product, interval_days))
                return f"/subscribe/{product.pk}/?every={interval_days}"

        return Adapter()


def buy_every(customer, product, days, times, *, jitter=0.0, seed=0):
    rng = random.Random(seed)
    at: datetime = T0 - days * times * D
    for _ in range(times):
        make_order(product, customer=customer, placed_at=at)
        at += days * (1 + rng.uniform(-jitter, jitter)) * D


@pytest.mark.django_db
def test_regular_repeat_purchases_are_offered_a_subscription_through_the_hook(customer):
    beans = ProductFactory()
    buy_every(customer, beans, 28, 5, jitter=0.05)
    adapter = SubscribingAdapter()

    found = subscription.suggestion(customer.pk, beans, adapter=adapter)

    assert found is not None and found.every_days == pytest.approx(28, abs=2)
    assert found.url == f"/subscribe/{beans.pk}/?every={found.every_days}"


@pytest.mark.django_db
def test_irregular_or_few_purchases_are_not(customer):
    beans, tea = ProductFactory(), ProductFactory()
    buy_every(customer, beans, 28, 3)  # two gaps: too few
    for day in (0, 5, 60, 70, 150):  # irregular
        make_order(tea, customer=customer, placed_at=T0 - 200 * D + day * D)
    adapter = SubscribingAdapter()
    assert subscription.suggestion(customer.pk, beans, adapter=adapter) is None
    assert subscription.suggestion(customer.pk, tea, adapter=adapter) is None


@pytest.mark.django_db
def test_the_default_adapter_offers_no_subscription(customer):
    beans = ProductFactory()
    buy_every(customer, beans, 28, 5)
    assert subscription.regularity(customer.pk, beans) is not None
    assert subscription.suggestion(customer.pk, beans) is None
