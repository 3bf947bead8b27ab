"""Curation in the Django admin (Oscar's product admin gains the links inline), Oscar's own
recommendations imported as curated links, and the offer's install command and migration."""

from importlib import import_module

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command

from django_crosssell import models as cs
from django_crosssell.admin import ProductRelationInline
from django_crosssell.contrib.oscar import offers
from django_crosssell.contrib.oscar.admin import add_relation_inline
from tests.oscar import shop as builders

pytestmark = pytest.mark.django_db

Recommendation = builders.get_model("catalogue", "ProductRecommendation")
ConditionalOffer = builders.get_model("offer", "ConditionalOffer")


def test_oscars_product_admin_has_the_links_inline(admin_client, shop):
    model_admin = admin.site.get_model_admin(builders.Product)
    assert model_admin.inlines[-1] is ProductRelationInline
    assert add_relation_inline() is True  # idempotent
    assert model_admin.inlines.count(ProductRelationInline) == 1
    assert add_relation_inline(admin.AdminSite(name="empty")) is False
    response = admin_client.get(f"/admin/catalogue/product/{shop.jeans.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="crosssell_relations-TOTAL_FORMS"' in html
    assert "admin-autocomplete" in html  # Oscar's product admin has search_fields


def test_links_are_saved_from_oscars_product_admin(admin_client, shop):
    url = f"/admin/catalogue/product/{shop.jeans.pk}/change/"
    page = admin_client.get(url).context
    data = {}  # the page as Oscar's admin renders it, unchanged ...

    def keep(form):
        for name in form.fields:
            value = form[name].value()
            if value is not None and value is not False:
                data[form.add_prefix(name)] = value

    keep(page["adminform"].form)
    for inline in page["inline_admin_formsets"]:
        formset = inline.formset
        data[f"{formset.prefix}-TOTAL_FORMS"] = formset.initial_form_count()
        data[f"{formset.prefix}-INITIAL_FORMS"] = formset.initial_form_count()
        for form in formset.initial_forms:
            keep(form)
    # ... plus one link in the crosssell inline.
    data.update({
        "crosssell_relations-TOTAL_FORMS": 1, "crosssell_relations-INITIAL_FORMS": 0,
        "crosssell_relations-0-target": shop.mug.pk, "crosssell_relations-0-kind": "cross_sell",
        "crosssell_relations-0-position": 1, "crosssell_relations-0-is_active": "on",
    })  # fmt: skip
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["errors"]
    link = cs.ProductRelation.objects.get(source=shop.jeans)
    assert (link.target, link.kind) == (shop.mug, "cross_sell")


def test_oscars_recommendations_are_imported_once(shop):
    Recommendation.objects.create(primary=shop.jeans, recommendation=shop.mug, ranking=1)
    Recommendation.objects.create(primary=shop.jeans, recommendation=shop.socks, ranking=5)
    Recommendation.objects.create(primary=shop.jeans, recommendation=shop.small, ranking=3)
    Recommendation.objects.create(primary=shop.medium, recommendation=shop.jeans, ranking=0)
    Recommendation.objects.create(primary=shop.medium, recommendation=shop.shirt, ranking=0)
    call_command("crosssell_import_oscar_recommendations", "--dry-run")
    assert not cs.ProductRelation.objects.exists()

    call_command("crosssell_import_oscar_recommendations")
    links = cs.ProductRelation.objects.order_by("source_id", "position")
    assert [(link.source, link.target, link.position, link.kind) for link in links] == [
        (shop.shirt, shop.jeans, 1, "related"),  # a variant's recommendation: its parent's
        (shop.jeans, shop.socks, 1, "related"),  # Oscar's highest ranking first
        (shop.jeans, shop.shirt, 2, "related"),  # a variant recommended: its parent
        (shop.jeans, shop.mug, 3, "related"),
    ]  # the T-shirt M -> T-shirt row would link the T-shirt to itself: skipped
    call_command("crosssell_import_oscar_recommendations")
    assert cs.ProductRelation.objects.count() == 4

    Recommendation.objects.filter(recommendation=shop.mug).update(ranking=9)
    staff = cs.ProductRelation.objects.get(target=shop.socks)
    staff.note = "edited by staff"
    staff.save()
    call_command("crosssell_import_oscar_recommendations")
    positions = dict(
        cs.ProductRelation.objects.filter(source=shop.jeans).values_list("target", "position")
    )
    assert positions == {shop.mug.pk: 1, shop.socks.pk: 1, shop.shirt.pk: 3}
    call_command("crosssell_import_oscar_recommendations", "--kind", "cross_sell")
    assert cs.ProductRelation.objects.filter(kind="cross_sell").count() == 4


def test_the_install_command_repairs_the_offer(capsys):
    offer = ConditionalOffer.objects.get(slug=offers.OFFER_SLUG)
    offer.benefit.proxy_class = "somewhere.Else"
    offer.benefit.save()
    call_command("crosssell_oscar_install_offer")
    assert "Already installed" in capsys.readouterr().out
    offer.refresh_from_db()
    assert offer.benefit.proxy_class == offers.BENEFIT_CLASS
    offer.delete()
    call_command("crosssell_oscar_install_offer")
    assert "Installed the site offer" in capsys.readouterr().out
    assert ConditionalOffer.objects.get(slug=offers.OFFER_SLUG).is_available()


def test_the_data_migration_installs_and_removes_the_offer():
    migration = import_module("django_crosssell.contrib.oscar.migrations.0002_install_offer")
    migration.uninstall(apps, None)
    assert not ConditionalOffer.objects.filter(slug=offers.OFFER_SLUG).exists()
    assert (
        not builders.get_model("offer", "Benefit")
        .objects.filter(proxy_class=offers.BENEFIT_CLASS)
        .exists()
    )
    migration.install(apps, None)
    migration.install(apps, None)  # idempotent
    assert ConditionalOffer.objects.filter(slug=offers.OFFER_SLUG).count() == 1
