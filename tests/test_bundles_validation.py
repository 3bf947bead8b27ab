"""Bad bundle rules are refused: by the model, by the admin form and by the database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from django_crosssell.forms import validate_items
from django_crosssell.models import BundleItem, BundleRule
from tests.factories import BundleItemFactory, BundleRuleFactory, ProductFactory

pytestmark = pytest.mark.django_db

D = Decimal


def rule(**fields) -> BundleRule:
    defaults = {
        "name": "Rule",
        "slug": "rule",
        "kind": "fixed_set",
        "discount_type": "percent",
        "value": D("10"),
    }
    return BundleRule(**{**defaults, **fields})


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        instance.full_clean()
    return exc.value.message_dict


# --- the model -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5", "100.01", "150"])
def test_percent_outside_0_to_100_is_refused(value):
    assert "value" in errors_of(rule(value=D(value)))


@pytest.mark.parametrize("value", ["0.5", "100"])
def test_percent_inside_the_range_is_accepted(value):
    rule(value=D(value)).full_clean()


def test_percent_message_in_japanese():
    with override("ja"):
        assert errors_of(rule(value=D("0")))["value"] == [
            "割引率は0より大きく100以下にしてください。"
        ]


@pytest.mark.parametrize("discount_type", ["amount", "fixed_price"])
def test_negative_amounts_are_refused(discount_type):
    assert "value" in errors_of(rule(discount_type=discount_type, value=D("-1")))


def test_zero_amount_is_allowed():
    rule(discount_type="amount", value=D("0")).full_clean()


def test_amount_with_more_decimals_than_the_currency_is_refused(settings):
    with override("ja"):
        assert errors_of(rule(discount_type="amount", value=D("100.50")))["value"] == [
            "この通貨の小数点以下は0桁までです。"
        ]
    rule(discount_type="amount", value=D("100.00")).full_clean()
    settings.CROSSSELL = {**settings.CROSSSELL, "CURRENCY_DECIMALS": 2}
    rule(discount_type="amount", value=D("100.50")).full_clean()


@pytest.mark.parametrize("kind", ["mix_and_match", "multi_buy"])
@pytest.mark.parametrize("n", [None, 0, 1])
def test_n_below_two_is_refused(kind, n):
    assert "min_quantity" in errors_of(rule(kind=kind, min_quantity=n))


def test_missing_n_message_in_japanese():
    with override("ja"):
        assert errors_of(rule(kind="multi_buy"))["min_quantity"] == [
            "よりどり・まとめ買いのルールには2点以上が必要です。"
        ]


def test_a_set_ignores_n():
    instance = rule(kind="fixed_set", min_quantity=5)
    instance.full_clean()
    assert instance.min_quantity is None


def test_end_before_start_is_refused_in_japanese():
    now = timezone.now()
    with override("ja"):
        errors = errors_of(rule(starts_at=now, ends_at=now - timedelta(hours=1)))
    assert errors["ends_at"] == ["終了日時は開始日時より後にしてください。"]
    assert "ends_at" in errors_of(rule(starts_at=now, ends_at=now))


@pytest.mark.parametrize("max_applications", [0, 1000])
def test_max_applications_range(max_applications):
    assert "max_applications" in errors_of(rule(max_applications=max_applications))


def test_item_quantity_and_duplicates():
    existing = BundleItemFactory()
    with pytest.raises(ValidationError) as exc:
        BundleItem(rule=existing.rule, product=existing.product, quantity=1).full_clean()
    assert "A product can be listed only once per rule." in str(exc.value)
    with pytest.raises(ValidationError):
        BundleItem(rule=existing.rule, product=ProductFactory(), quantity=0).full_clean()


# --- the items (what the inline formset checks) ---------------------------------------------------


def test_a_set_needs_two_products():
    shirt = ProductFactory()
    with override("ja"), pytest.raises(ValidationError) as exc:
        validate_items(rule(), [(shirt, 2)])
    assert exc.value.messages == ["セットには2種類以上の商品が必要です。"]
    validate_items(rule(), [(shirt, 1), (ProductFactory(), 1)])


def test_mix_and_multi_need_a_product_and_quantities_of_one():
    with pytest.raises(ValidationError, match="at least one"):
        validate_items(rule(kind="multi_buy", min_quantity=2), [])
    with pytest.raises(ValidationError, match="leave every item quantity at 1"):
        validate_items(rule(kind="mix_and_match", min_quantity=2), [(ProductFactory(), 3)])


def test_fixed_price_must_be_below_the_regular_total():
    shirt, tie = ProductFactory(price=D("5000")), ProductFactory(price=D("1500"))
    fixed = rule(discount_type="fixed_price", value=D("6500"))
    with override("ja"), pytest.raises(ValidationError) as exc:
        validate_items(fixed, [(shirt, 1), (tie, 1)])
    assert exc.value.messages == [
        "セット価格（6,500）は商品の通常価格の合計（6,500）より安くしてください。"
    ]
    validate_items(rule(discount_type="fixed_price", value=D("6499")), [(shirt, 1), (tie, 1)])


def test_fixed_price_of_n_units_must_beat_the_cheapest_n():
    cheap, dear = ProductFactory(price=D("1000")), ProductFactory(price=D("3000"))
    too_high = rule(kind="mix_and_match", min_quantity=3, discount_type="fixed_price")
    too_high.value = D("3000")  # three of the cheap one cost 3,000: no saving
    with pytest.raises(ValidationError, match="lower than the items' regular total"):
        validate_items(too_high, [(cheap, 1), (dear, 1)])
    too_high.value = D("2999")
    validate_items(too_high, [(cheap, 1), (dear, 1)])


# --- the database --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"discount_type": "percent", "value": D("0")},
        {"discount_type": "percent", "value": D("100.5")},
        {"discount_type": "amount", "value": D("-1")},
        {"kind": "mix_and_match", "min_quantity": None},
        {"kind": "multi_buy", "min_quantity": 1},
        {"starts_at": timezone.now(), "ends_at": timezone.now() - timedelta(days=1)},
    ],
    ids=["percent-0", "percent-over-100", "negative", "mix-without-n", "multi-n-1", "window"],
)
def test_database_refuses_what_a_script_could_write(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        BundleRuleFactory(**fields)


def test_database_refuses_bad_items():
    item = BundleItemFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        BundleItem.objects.create(rule=item.rule, product=item.product)
    with pytest.raises(IntegrityError), transaction.atomic():
        BundleItem.objects.create(rule=item.rule, product=ProductFactory(), quantity=0)


# --- the admin form ------------------------------------------------------------------------------

ADD_RULE = reverse("admin:django_crosssell_bundlerule_add")


def rule_form(items, **fields):
    data = {
        "name": "Shirt and tie",
        "slug": "shirt-and-tie",
        "is_active": "on",
        "kind": "fixed_set",
        "pitch": "",
        "discount_type": "percent",
        "value": "10",
        "min_quantity": "",
        "max_applications": "",
        "priority": "0",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        "items-TOTAL_FORMS": str(len(items)),
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "1000",
    }
    for i, (product, quantity) in enumerate(items):
        data[f"items-{i}-product"] = str(product.pk)
        data[f"items-{i}-quantity"] = str(quantity)
    data.update(fields)
    return data


def post_ja(client, data):
    return client.post(ADD_RULE, data, headers={"accept-language": "ja"})


def test_admin_creates_a_valid_rule(admin_client):
    shirt, tie = ProductFactory(), ProductFactory()
    response = admin_client.post(ADD_RULE, rule_form([(shirt, 1), (tie, 1)]))
    assert response.status_code == 302, response.content.decode()[:2000]
    created = BundleRule.objects.get()
    assert sorted(created.items.values_list("product_id", flat=True)) == sorted([shirt.pk, tie.pk])


def test_admin_refuses_a_set_of_one_product(admin_client):
    response = post_ja(admin_client, rule_form([(ProductFactory(), 2)]))
    assert response.status_code == 200
    assert "セットには2種類以上の商品が必要です。" in response.content.decode()
    assert not BundleRule.objects.exists()


def test_admin_refuses_a_fixed_price_above_the_regular_total(admin_client):
    shirt, tie = ProductFactory(price=D("5000")), ProductFactory(price=D("1500"))
    data = rule_form([(shirt, 1), (tie, 1)], discount_type="fixed_price", value="7000")
    response = post_ja(admin_client, data)
    assert response.status_code == 200
    assert "商品の通常価格の合計（6,500）より安くしてください" in response.content.decode()
    assert not BundleRule.objects.exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"value": "0"}, "割引率は0より大きく100以下にしてください。"),
        ({"value": "101"}, "割引率は0より大きく100以下にしてください。"),
        ({"discount_type": "amount", "value": "-100"}, "0"),
        ({"discount_type": "amount", "value": "10.5"}, "この通貨の小数点以下は0桁までです。"),
        ({"kind": "multi_buy", "min_quantity": ""}, "2点以上が必要です"),
        ({"kind": "mix_and_match", "min_quantity": "1"}, "2"),
        (
            {
                "starts_at_0": "2026-12-10",
                "starts_at_1": "10:00:00",
                "ends_at_0": "2026-12-01",
                "ends_at_1": "10:00:00",
            },
            "終了日時は開始日時より後にしてください。",
        ),
    ],
    ids=["percent-0", "percent-101", "negative", "decimals", "no-n", "n-1", "window"],
)
def test_admin_refuses_bad_rule_fields_in_japanese(admin_client, fields, message):
    shirt, tie = ProductFactory(), ProductFactory()
    response = post_ja(admin_client, rule_form([(shirt, 1), (tie, 1)], **fields))
    assert response.status_code == 200
    content = response.content.decode()
    assert "errornote" in content
    assert message in content
    assert not BundleRule.objects.exists()


def test_admin_refuses_item_quantities_on_multi_buy(admin_client):
    data = rule_form([(ProductFactory(), 3)], kind="multi_buy", min_quantity="3")
    response = post_ja(admin_client, data)
    assert response.status_code == 200
    assert "商品の数量はすべて1にしてください" in response.content.decode()


def test_admin_refuses_the_same_product_twice(admin_client):
    shirt = ProductFactory()
    response = admin_client.post(ADD_RULE, rule_form([(shirt, 1), (shirt, 1)]))
    assert response.status_code == 200
    assert not BundleRule.objects.exists()
