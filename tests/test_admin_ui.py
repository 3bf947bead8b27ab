"""The admin staff work in (issue 16): slugs from Japanese names, ladder steps the price
rule blocks, kind labels that say where links show, duplicate errors in the page's
language, "Recompute now", and what a product page will show."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from django_crosssell import slugs
from django_crosssell.models import AffinityRun, BundleRule, ProductRelation, TierLadder
from tests.factories import (
    AffinityRunFactory,
    ProductAffinityFactory,
    ProductFactory,
    ProductRelationFactory,
    TierLadderFactory,
    TierStepFactory,
)
from tests.settings import CROSSSELL
from tests.test_admin import ladder_form

pytestmark = pytest.mark.django_db


# --- slugs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("砥石", "toishi"),
        ("お茶 よりどり2点で10%オフ", "o-cha-yoridori-2-ten-de-10-percent-ofu"),
        ("Shirt and tie", "shirt-and-tie"),
    ],
)
def test_slugs_read_like_the_name(name, slug):
    assert slugs.slug_for(name) == slug


def test_without_pykakasi_the_slug_is_a_stable_hash(monkeypatch):
    monkeypatch.setattr(slugs, "_kakasi", lambda: None)
    first = slugs.slug_for("砥石", prefix="ladder")
    assert first.startswith("ladder-") and len(first) == len("ladder-") + 8
    assert slugs.slug_for("砥石", prefix="ladder") == first  # stable
    assert slugs.slug_for("包丁", prefix="ladder") != first
    assert slugs.slug_for("お茶 よりどり2点で10%オフ", prefix="bundle").startswith("bundle-")
    assert slugs.slug_for("Shirt 2", prefix="x") == "shirt-2"  # ASCII names need nothing
    assert slugs.slug_for("12", prefix="x").startswith("x-")  # digits alone say nothing


def test_an_empty_slug_is_made_from_a_japanese_name_never_required(admin_client):
    basic, pro = ProductFactory(price=Decimal("3000")), ProductFactory(price=Decimal("4000"))
    url = reverse("admin:django_crosssell_tierladder_add")
    for expected in ("toishi", "toishi-2"):
        response = admin_client.post(
            url, ladder_form([(1, basic, "並"), (2, pro, "上")], name="砥石", slug="")
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        assert TierLadder.objects.filter(slug=expected).exists()
        TierLadder.objects.filter(slug=expected).update(name="砥石")
        basic, pro = ProductFactory(), ProductFactory()


def test_bundle_rule_slug_from_its_name(admin_client):
    a, b = ProductFactory(price=Decimal("1000")), ProductFactory(price=Decimal("1000"))
    data = {
        "name": "お茶 よりどり2点で10%オフ",
        "slug": "",
        "is_active": "on",
        "kind": "mix_and_match",
        "pitch": "",
        "discount_type": "percent",
        "value": "10",
        "min_quantity": "2",
        "max_applications": "",
        "priority": "0",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        "items-TOTAL_FORMS": "2",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "1",
        "items-MAX_NUM_FORMS": "1000",
        "items-0-product": a.pk,
        "items-0-quantity": "1",
        "items-1-product": b.pk,
        "items-1-quantity": "1",
    }
    response = admin_client.post(reverse("admin:django_crosssell_bundlerule_add"), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert BundleRule.objects.get().slug == "o-cha-yoridori-2-ten-de-10-percent-ofu"


# --- ladders ---------------------------------------------------------------------------------


@pytest.fixture
def blocked_ladder():
    """The issue's ladder: ¥3,300 -> ¥4,980 (ratio 1.509) under the 1.5 rule, then a fine step."""
    ladder = TierLadderFactory(name="Whetstones", slug="whetstones")
    prices = ["3300", "4980", "6000"]
    steps = []
    for rank, price in enumerate(prices, 1):
        product = ProductFactory(name=f"Stone {price}", price=Decimal(price))
        steps.append(TierStepFactory(ladder=ladder, product=product, rank=rank, label=price))
    return ladder


def test_the_ladder_list_flags_a_step_the_ratio_rule_blocks(admin_client, blocked_ladder):
    html = admin_client.get(reverse("admin:django_crosssell_tierladder_changelist")).content
    text = html.decode()
    assert "3300 → 4980 is never offered" in text and "1.509" in text and "1.5" in text
    assert "4980 → 6000" not in text


def test_the_ladder_form_flags_it_with_the_ratio(admin_client, blocked_ladder):
    url = reverse("admin:django_crosssell_tierladder_change", args=[blocked_ladder.pk])
    with translation.override("ja"):
        html = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "1.509" in html
    with override_settings(CROSSSELL={**CROSSSELL, "UPGRADE_MAX_PRICE_RATIO": 1.6}):
        html = admin_client.get(url).content.decode()
    assert "Every step is offered." in html


def test_a_flat_step_is_flagged_too(admin_client):
    ladder = TierLadderFactory()
    for rank in (1, 2):
        TierStepFactory(ladder=ladder, rank=rank, product=ProductFactory(price=Decimal("500")))
    html = admin_client.get(reverse("admin:django_crosssell_tierladder_changelist")).content
    assert "does not cost more" in html.decode()


# --- relations -------------------------------------------------------------------------------


def test_kind_labels_say_where_each_kind_shows(admin_client):
    html = admin_client.get(reverse("admin:django_crosssell_productrelation_add")).content
    text = html.decode()
    assert "Goes with it (cross-sell)" in text and "Alternative (related)" in text
    assert "Frequently bought together" in text and "only under" in text


def test_duplicate_inline_rows_name_fields_in_the_page_language(admin_client):
    shirt, tie = ProductFactory(name="Shirt"), ProductFactory(name="Tie")
    url = reverse("admin:testapp_product_change", args=[shirt.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    prefix = next(
        formset.formset.prefix
        for formset in page.context["inline_admin_formsets"]
        if formset.formset.model is ProductRelation
    )
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields if form[name].value()}
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": "2",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    )
    for index in (0, 1):
        data.update(
            {
                f"{prefix}-{index}-target": tie.pk,
                f"{prefix}-{index}-kind": "cross_sell",
                f"{prefix}-{index}-position": "0",
                f"{prefix}-{index}-is_active": "on",
            }
        )
    with translation.override("ja"):
        response = admin_client.post(url, data, HTTP_ACCEPT_LANGUAGE="ja")
    html = response.content.decode()
    assert response.status_code == 200
    assert "重複したデータを修正してください" in html
    assert "おすすめ商品" in html and "target" not in html.split("errornote")[-1][:2000]


def test_the_relation_page_previews_the_product_page(admin_client):
    source = ProductFactory(name="Kettle", price=Decimal("3000"))
    linked = ProductFactory(name="Cups", price=Decimal("1200"))
    computed = ProductFactory(name="Tea", price=Decimal("900"))
    relation = ProductRelationFactory(source=source, target=linked)
    ProductAffinityFactory(run=AffinityRunFactory(current=True), source=source, target=computed)
    url = reverse("admin:django_crosssell_productrelation_change", args=[relation.pk])
    html = admin_client.get(url).content.decode()
    preview = html.split('class="crosssell-page-preview"', 1)[1]
    assert "You may also like" in preview and "Frequently bought together" in preview
    assert preview.index("Cups") < preview.index("Tea")
    assert "staff link" in preview and "bought together" in preview
    assert "Not shown" in preview  # no tier ladder, no bundle


# --- recompute now ---------------------------------------------------------------------------


def test_recompute_now_queues_a_run_and_shows_it(admin_client):
    changelist = reverse("admin:django_crosssell_affinityrun_changelist")
    assert "Recompute now" in admin_client.get(changelist).content.decode()
    url = reverse("admin:django_crosssell_affinityrun_recompute")
    assert admin_client.get(url).status_code == 405  # POST only
    response = admin_client.post(url)
    run = AffinityRun.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:django_crosssell_affinityrun_change", args=[run.pk])
    page = admin_client.get(response.url).content.decode()
    assert f"run #{run.pk}" in page or run.get_status_display() in page


def test_the_scores_are_rounded_in_the_list(admin_client):
    ProductAffinityFactory(run=AffinityRunFactory(current=True), score=0.123456789012, lift=3.14159)
    html = admin_client.get(reverse("admin:django_crosssell_productaffinity_changelist")).content
    assert "0.123" in html.decode() and "0.1234567" not in html.decode()
    assert "3.14" in html.decode() and "3.14159" not in html.decode()
