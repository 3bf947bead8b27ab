"""The template tags: markup, i18n, query budget, and never breaking the page."""

from __future__ import annotations

import logging
import re
from decimal import Decimal

import pytest
from django.db import DatabaseError
from django.template import Context, Template
from django.test import override_settings
from django.utils import translation

from django_crosssell import cache
from django_crosssell import models as cs
from django_crosssell.recommend import queries
from django_crosssell.timeouts import overhead
from tests.factories import (
    AffinityRunFactory,
    CategoryFactory,
    ProductAffinityFactory,
    ProductFactory,
    ProductRelationFactory,
    TierLadderFactory,
    TierStepFactory,
    make_order,
)
from tests.services import require_redis
from tests.settings import CROSSSELL

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1},
    }
}


def render(source: str, **context) -> str:
    return Template("{% load crosssell %}" + source).render(Context(context))


def cards(html: str) -> list[str]:
    return re.findall(r'data-crosssell-product="([^"]+)"', html)


@pytest.fixture
def shop():
    """A product with two curated links, one computed partner and a bestseller."""
    category = CategoryFactory()

    def make(**fields):
        return ProductFactory(category=category, **fields)

    source = make(name="Kettle", price=Decimal("4980"))
    pick, partner, seller = make(name="Filter"), make(name="Beans"), make(name="Mug")
    ProductRelationFactory(source=source, target=pick)
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=source, target=partner, co_count=37, score=0.4, lift=2.0)
    ProductAffinityFactory(run=run, source=pick, target=seller, co_count=5, score=0.3, lift=2.0)
    make_order(seller)
    return {"source": source, "pick": pick, "partner": partner, "seller": seller}


def test_also_recommended_markup(shop):
    html = render("{% also_recommended product %}", product=shop["source"])

    assert '<section class="crosssell crosssell-also_recommended"' in html
    assert 'data-crosssell-widget="also_recommended"' in html
    assert f'data-crosssell-source="{shop["source"].pk}"' in html
    assert '<h2 class="crosssell-title">You may also like</h2>' in html
    assert cards(html) == [str(shop[name].pk) for name in ("pick", "partner", "seller")]
    assert re.findall(r'data-crosssell-position="(\d+)"', html) == ["1", "2", "3"]
    assert re.findall(r'data-crosssell-origin="(\w+)"', html) == [
        "curated",
        "bought_together",
        "fallback",
    ]
    assert f'href="/shop/products/{shop["pick"].pk}/"' in html
    assert "1,000" in html  # the default formatter groups digits
    assert "37 people bought these together" in html
    assert html.count("<li") == 3 and "<ol" in html
    assert "<script" not in html and "style=" not in html


def test_headings_and_reasons_in_japanese(shop):
    with translation.override("ja"):
        product_html = render("{% also_recommended product %}", product=shop["source"])
        cart_html = render("{% bought_together products %}", products=[shop["source"]])
    assert "こちらもおすすめ" in product_html
    assert "37人がこれらを一緒に購入しています" in product_html
    assert "スタッフのおすすめ" in product_html
    assert "よく一緒に購入されている商品" in cart_html


def test_title_limit_and_kind_arguments(shop):
    html = render(
        '{% also_recommended product limit=1 title="Pairs well" %}', product=shop["source"]
    )
    assert "Pairs well" in html and "You may also like" not in html
    assert cards(html) == [str(shop["pick"].pk)]
    html = render('{% also_recommended product kind="related" %}', product=shop["source"])
    assert str(shop["pick"].pk) not in cards(html)


def test_no_recommendations_render_nothing(db):
    lonely = ProductFactory()
    with override_settings(CROSSSELL={**CROSSSELL, "FALLBACK": None}):
        assert render("{% also_recommended product %}", product=lonely).strip() == ""
        assert render("{% bought_together products %}", products=[lonely]).strip() == ""
        assert render("{% upgrade_prompt product %}", product=lonely).strip() == ""
        assert render("{% downgrade_offer product %}", product=lonely).strip() == ""


def test_bought_together_never_shows_the_cart(shop):
    html = render("{% bought_together products %}", products=[shop["source"], shop["pick"]])
    assert 'data-crosssell-widget="bought_together"' in html
    assert 'data-crosssell-source="cart"' in html
    assert "Frequently bought together" in html
    assert cards(html) == [str(shop["partner"].pk), str(shop["seller"].pk)]


@pytest.fixture
def ladder(db):
    ladder = TierLadderFactory(name="Grinders", slug="grinders")
    prices = ["8000", "11000", "20000"]
    products = [ProductFactory(name=f"Grinder {p}", price=Decimal(p)) for p in prices]
    for rank, (product, label) in enumerate(zip(products, ["Basic", "Plus", "Pro"], strict=True)):
        TierStepFactory(
            ladder=ladder, product=product, rank=rank + 1, label=label, pitch=f"{label} pitch"
        )
    return products


def test_upgrade_prompt_and_downgrade_offer(ladder):
    basic, plus, pro = ladder
    html = render("{% upgrade_prompt product %}", product=basic)
    assert 'data-crosssell-widget="upgrade_prompt"' in html
    assert "The next model up" in html
    assert "Plus pitch" in html
    assert "Price difference: 3,000 more" in html  # rounded to the currency (CURRENCY_DECIMALS 0)
    assert cards(html) == [str(plus.pk)]
    assert render("{% upgrade_prompt product %}", product=pro).strip() == ""
    assert render("{% upgrade_prompt product %}", product=plus).strip() == ""  # 20000 > 1.5x

    html = render("{% downgrade_offer product %}", product=pro)
    assert 'data-crosssell-widget="downgrade_offer"' in html
    assert "Price difference: 9,000 less" in html and cards(html) == [str(plus.pk)]
    assert render("{% downgrade_offer product %}", product=basic).strip() == ""
    with translation.override("ja"):
        html = render("{% upgrade_prompt product %}", product=basic)
    assert "ひとつ上のモデル" in html and "ご覧の商品との差額：+3,000" in html


def test_get_recommendations_for_custom_markup(shop, ladder):
    html = render(
        "{% get_recommendations product limit=2 as recs %}"
        "{% for rec in recs %}[{{ rec.product.name }}|{{ rec.source }}]{% endfor %}"
        "{% get_recommendations cart as cart_recs %}{{ cart_recs|length }}"
        '{% get_recommendations tier kind="upgrade" as up %}{{ up.0.product.name }}',
        product=shop["source"],
        cart=[shop["source"]],
        tier=ladder[0],
    )
    # The cart of one product: its curated cross-sell and its computed partner.
    assert html == "[Filter|curated][Beans|bought_together]2Grinder 11000"


def test_image_field_is_shown_when_configured(shop):
    with override_settings(CROSSSELL={**CROSSSELL, "IMAGE_FIELD": "sku"}):
        html = render("{% also_recommended product %}", product=shop["source"])
    assert f'<img class="crosssell-card-image" src="{shop["pick"].sku}" alt=""' in html
    assert "<img" not in render("{% also_recommended product %}", product=shop["source"])


def test_a_host_can_override_a_widget_template(shop, tmp_path, settings):
    widgets = tmp_path / "django_crosssell" / "widgets"
    widgets.mkdir(parents=True)
    (widgets / "also_recommended.html").write_text(
        "<div id=mine>{% for card in cards %}{{ card.name }};{% endfor %}</div>"
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    html = render("{% also_recommended product %}", product=shop["source"])
    assert html == "<div id=mine>Filter;Beans;Mug;</div>"


# --- never breaking the page -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, "", "not-a-key", 3.5])
def test_bad_arguments_render_empty_and_log(shop, bad, caplog):
    with caplog.at_level(logging.WARNING, logger="django_crosssell"):
        for tag in ("also_recommended", "upgrade_prompt", "downgrade_offer", "bought_together"):
            assert render(f"<p>{{% {tag} value %}}</p>", value=bad) == "<p></p>"
        assert render("{% get_recommendations value as r %}{{ r|length }}", value=bad) == "0"
    assert len(caplog.records) == 5
    assert "also_recommended widget rendered empty" in caplog.records[0].getMessage()
    assert "InvalidProductKey" in caplog.records[0].getMessage()


def test_debug_mode_raises(shop, settings):
    settings.DEBUG = True
    with pytest.raises(ValueError, match="None"):
        render("{% also_recommended value %}", value=None)


def test_database_errors_render_empty(shop, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(queries, "union", broken)
    with caplog.at_level(logging.WARNING, logger="django_crosssell"):
        html = render("<main>{% also_recommended product %}</main>", product=shop["source"])
    assert html == "<main></main>"
    assert "DatabaseError: connection lost" in caplog.text


def test_a_broken_product_url_renders_empty(shop, monkeypatch, caplog):
    monkeypatch.setattr(type(shop["pick"]), "get_absolute_url", lambda self: 1 / 0)
    with caplog.at_level(logging.WARNING, logger="django_crosssell"):
        assert render("{% also_recommended product %}", product=shop["source"]) == ""
    assert "ZeroDivisionError" in caplog.text


def test_a_deleted_product_renders_empty(shop):
    source = shop["source"]
    pk = source.pk
    source.delete()
    source.pk = pk
    assert render("{% also_recommended product %}", product=source) == ""


def test_a_dead_cache_falls_back_to_the_database(shop, caplog, django_assert_max_num_queries):
    with override_settings(CACHES=DEAD_REDIS), caplog.at_level(logging.WARNING):
        with django_assert_max_num_queries(2 + overhead()):
            html = render("{% also_recommended product %}", product=shop["source"])
        assert cards(html) == [str(shop[name].pk) for name in ("pick", "partner", "seller")]
        assert cache.is_down()  # further widgets skip the dead server instead of waiting
        html = render("{% bought_together products %}", products=[shop["source"]])
        assert str(shop["partner"].pk) in cards(html)
    assert "cache unavailable" in caplog.text
    assert not cache.is_down()  # the settings changed back: the outage is forgotten


@pytest.mark.services
def test_with_real_redis_warm_widgets_need_no_queries(
    shop, ladder, django_assert_max_num_queries, django_assert_num_queries
):
    url = require_redis()
    redis = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "test-widgets",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    page = "{% also_recommended product %}{% upgrade_prompt tier %}{% bought_together cart %}"
    context = {"product": shop["source"], "tier": ladder[0], "cart": [shop["source"]]}
    with override_settings(CACHES=redis):
        cache.invalidate()  # cold, without flushing a Redis database others may share
        with django_assert_max_num_queries(5 + 3 * overhead()):  # three widgets
            cold = render(page, **context)
        with django_assert_num_queries(0):
            assert render(page, **context) == cold
        cs.ProductRelation.objects.filter(target=shop["pick"]).delete()
        fresh = render(page, **context)  # no stale widget after an edit
        assert str(shop["pick"].pk) in cards(cold) and str(shop["pick"].pk) not in cards(fresh)


# --- query budget ----------------------------------------------------------------------------


def test_product_widget_queries_cold_and_warm(
    shop, ladder, django_assert_max_num_queries, django_assert_num_queries
):
    for template, context in [
        ("{% also_recommended product %}", {"product": shop["source"]}),
        ("{% also_recommended product %}", {"product": shop["pick"].pk}),
        ("{% upgrade_prompt product %}", {"product": ladder[0]}),
        ("{% downgrade_offer product %}", {"product": ladder[2]}),
    ]:
        with django_assert_max_num_queries(2 + overhead()):
            cold = render(template, **context)
        assert cards(cold)
        with django_assert_num_queries(0):
            assert render(template, **context) == cold


@pytest.mark.parametrize("size", [1, 10, 40])
def test_cart_widget_queries_do_not_grow_with_the_cart(
    shop, size, django_assert_max_num_queries, django_assert_num_queries
):
    extra = ProductFactory.create_batch(size - 1)
    run = cs.AffinityRun.objects.get(is_current=True)
    for product in extra:
        ProductAffinityFactory(
            run=run, source=product, target=shop["partner"], co_count=2, score=0.2, lift=1.0
        )
    cart = [shop["source"], *extra]
    with django_assert_max_num_queries(2 + overhead()):
        cold = render("{% bought_together cart %}", cart=cart)
    # The staff pick first, then the partner every cart item was bought with.
    assert cards(cold) == [str(shop["pick"].pk), str(shop["partner"].pk)]
    with django_assert_num_queries(0):
        assert render("{% bought_together cart %}", cart=cart) == cold


def test_cached_markup_expires_with_the_data_it_shows(shop, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    ProductRelationFactory(
        source=shop["source"],
        target=ProductFactory(),
        starts_at=timezone.now() + timedelta(seconds=90),
    )
    import time

    from django_crosssell.conf import app_settings

    timeouts = {}
    fresh_for = {}
    real_set = cache.set

    def spy(key, value, timeout=None):
        if ":widget:" in key:
            timeouts[key] = timeout
            fresh_for[key] = value[2] - time.time()  # (version, html, expires_at)
        real_set(key, value, timeout)

    monkeypatch.setattr(cache, "set", spy)
    render("{% also_recommended product %}", product=shop["source"])
    widget_keys = [key for key in timeouts if ":widget:" in key]
    assert len(widget_keys) == 1
    # Fresh until the campaign starts; kept STALE_SECONDS longer, to be served only while
    # one request computes the new markup (see stampede.py).
    assert 0 < fresh_for[widget_keys[0]] <= 91
    assert 1 <= timeouts[widget_keys[0]] <= 91 + app_settings.STALE_SECONDS


def test_bought_together_leaves_out_the_downsell_shown_next_to_it(ladder):
    basic, plus, pro = ladder
    mug, spoon = ProductFactory(name="Mug"), ProductFactory(name="Spoon")
    run = AffinityRunFactory(current=True)
    for target, score in ((plus, 0.9), (mug, 0.5), (spoon, 0.4)):
        ProductAffinityFactory(run=run, source=basic, target=target, score=score)
    cart = [basic]
    assert cards(render("{% bought_together cart %}", cart=cart)) == [
        str(plus.pk),
        str(mug.pk),
        str(spoon.pk),
    ]
    # pro was removed from the cart: its downsell (plus) is offered on its own, not here
    html = render('{% bought_together cart downsell_of=pro limit="2" %}', cart=cart, pro=pro)
    assert cards(html) == [str(mug.pk), str(spoon.pk)]
