"""Every storefront sentence, rendered in English and Japanese, says prices plainly.

The project's method is "never pushy, never misleading". Issue 16 listed what went wrong:
「差額はわずか¥25,000です」 for a 42% step, a cheaper model called 「¥25,000お得」 (reads like
a discount), 「さらに¥1,026お得」 before any discount applied, 「期間 2026/12/14 23:59」 for
"until", a product name printed twice in one nudge. These tests render each message (the
bundle offers and nudges of every kind and discount type, both tier directions, every
widget that prints them) and reject those phrasings.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import timezone
from django.utils.translation import override

from django_crosssell.bundles import CartLine
from django_crosssell.bundles.messages import nudge_message, offer_message
from django_crosssell.models import BundleRule
from tests.factories import (
    BundleItemFactory,
    BundleRuleFactory,
    ProductFactory,
    TierLadderFactory,
    TierStepFactory,
)

pytestmark = pytest.mark.django_db

D = Decimal
LANGUAGES = ["en", "ja"]

#: Phrasings that pressure ("only", 「わずか」) or mislabel a lower price as a saving.
BANNED = [
    re.compile(r"\bonly\b", re.I),
    re.compile(r"わずか"),
    re.compile(r"お得"),
    re.compile(r"期間"),
    re.compile(r"今だけ|急いで|お見逃しなく"),
    re.compile(r"\bhurry\b|\bdon't miss\b", re.I),
]


def plain(text: str) -> str:
    return re.sub(r"<[^>]+>", " ", text)


def assert_not_pushy(text: str) -> None:
    for pattern in BANNED:
        assert not pattern.search(plain(text)), f"{pattern.pattern!r} in {text!r}"


def render(source: str, **context) -> str:
    return Template("{% load crosssell %}" + source).render(Context(context))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", BundleRule.Kind.values)
@pytest.mark.parametrize("discount_type", BundleRule.DiscountType.values)
def test_every_bundle_sentence(language, kind, discount_type):
    rule = BundleRule(
        name="r", slug="r", kind=kind, discount_type=discount_type, value=D("10"), min_quantity=2
    )
    tie = ProductFactory.build(name="Tie")
    with override(language):
        nudge = nudge_message(rule, 1, [tie], D("300"))
        offer = offer_message(rule, 2, [tie])
        headline = offer_message(rule, 2, [tie], name_partners=False)
    assert_not_pushy(nudge)
    assert_not_pushy(offer)
    assert_not_pushy(headline)
    # The widget's headline leaves the partners to the links under it.
    assert "Tie" not in headline
    # The widget links the missing products right after a nudge: it never names them.
    assert "Tie" not in nudge and "Shirt" not in nudge


@pytest.fixture
def ladder():
    ladder = TierLadderFactory(name="Grinders", slug="grinders")
    products = [ProductFactory(name=f"Grinder {p}", price=D(p)) for p in ("8000", "11000")]
    for rank, (product, label) in enumerate(zip(products, ["Basic", "Plus"], strict=True), 1):
        TierStepFactory(ladder=ladder, product=product, rank=rank, label=label, pitch="Quieter")
    return products


@pytest.mark.parametrize("language", LANGUAGES)
def test_tier_widgets_state_the_plain_difference(ladder, language):
    basic, plus = ladder
    with override(language):
        up = render("{% upgrade_prompt product %}", product=basic)
        down = render("{% downgrade_offer product %}", product=plus)
    for html in (up, down):
        assert_not_pushy(html)
        assert "3,000" in html
    # the upgrade says what the step adds, the downgrade that it costs less (not "save")
    assert "Quieter" in up
    if language == "ja":
        assert "差額：+3,000" in up and "3,000安く" in down
    else:
        assert "3,000 more" in up and "3,000 less" in down
        assert "save" not in plain(down).lower()
    # the product name appears once per widget (in its card)
    assert plain(up).count("Grinder 11000") == 1
    assert plain(down).count("Grinder 8000") == 1


@pytest.fixture
def timed_set():
    shirt = ProductFactory(name="Shirt", price=D("5000"))
    tie = ProductFactory(name="Tie", price=D("1500"))
    rule = BundleRuleFactory(
        name="Shirt and tie",
        slug="shirt-tie",
        kind="fixed_set",
        discount_type="percent",
        value=D("10"),
        ends_at=timezone.now() + timedelta(days=3),
    )
    BundleItemFactory(rule=rule, product=shirt)
    BundleItemFactory(rule=rule, product=tie)
    return shirt, tie


@pytest.mark.parametrize("language", LANGUAGES)
def test_offer_end_reads_until(timed_set, language):
    shirt, _tie = timed_set
    with override(language):
        html = render("{% bundle_offers product %}", product=shirt)
    assert_not_pushy(html)
    ends = re.search(r'<p class="crosssell-bundle-ends">(.*?)</p>', html, re.S).group(1)
    if language == "ja":
        assert re.search(r"\d{1,2}:\d{2}まで", plain(ends)), ends
    else:
        assert plain(ends).strip().startswith("Until ")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_nudge_claims_only_the_saving_it_adds(timed_set, language):
    shirt, tie = timed_set
    with override(language):
        first = render("{% bundle_progress lines %}", lines=[CartLine(shirt, 1, shirt.price)])
        second = render(
            "{% bundle_progress lines %}",
            lines=[CartLine(shirt, 2, shirt.price), CartLine(tie, 1, tie.price)],
        )
    for html in (first, second):
        assert_not_pushy(html)
        # the nudge sentence does not name the product its link names
        nudge = re.search(r"<li>(.*?)</li>", html, re.S).group(1)
        assert plain(nudge).count("Tie") <= 1 and plain(nudge).count("Shirt") <= 1
    # nothing applied yet: a plain "650 off", never "more"/「さらに」
    assert "650" in first
    assert "さらに" not in first and "more" not in plain(first)
    assert "grows" not in plain(first) and "増えます" not in first
    # a set already applied: the second one adds 650 on top of it, and says so
    assert ("増えます" if language == "ja" else "grows by 650") in second


def test_the_catalogue_has_none_of_the_listed_phrasings():
    """The compiled Japanese catalogue of the storefront strings (the admin has its own
    words such as キャンペーン期間, "campaign period", which is what it means there)."""
    from pathlib import Path

    po = Path(__file__).resolve().parents[1] / "django_crosssell/locale/ja/LC_MESSAGES/django.po"
    text = po.read_text(encoding="utf-8")
    assert "わずか" not in text
    assert "お得" not in text
    # "Until <date>" is 「<date>まで」, never 期間 ("period", right only for a period)
    assert 'msgid "Until %(date)s"\nmsgstr "%(date)sまで"' in text
