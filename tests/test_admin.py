"""Staff curate links and ladders in the admin; bad input is refused on the form."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect, ForeignKeyRawIdWidget
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from django_crosssell.admin import ProductRelationAdmin
from django_crosssell.models import ProductRelation, TierLadder, TierStep
from tests.factories import ProductFactory, ProductRelationFactory, TierStepFactory
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db

ADD_RELATION = reverse("admin:django_crosssell_productrelation_add")


def relation_form(source, target, **extra):
    return {
        "source": source.pk,
        "target": target.pk,
        "kind": "cross_sell",
        "position": 0,
        "is_active": "on",
        "note": "",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        **extra,
    }


def test_add_relation(admin_client):
    shirt, tie = ProductFactory(name="Shirt"), ProductFactory(name="Tie")
    response = admin_client.post(ADD_RELATION, relation_form(shirt, tie))
    assert response.status_code == 302
    assert ProductRelation.objects.get().target == tie


def test_self_link_is_refused_on_the_form(admin_client):
    shirt = ProductFactory()
    response = admin_client.post(ADD_RELATION, relation_form(shirt, shirt))
    assert response.status_code == 200
    assert "A product cannot be linked to itself." in response.content.decode()
    assert not ProductRelation.objects.exists()


def test_duplicate_is_refused_on_the_form(admin_client):
    existing = ProductRelationFactory()
    response = admin_client.post(ADD_RELATION, relation_form(existing.source, existing.target))
    assert response.status_code == 200
    assert "already linked" in response.content.decode()
    assert ProductRelation.objects.count() == 1


def test_end_before_start_is_refused_in_japanese(admin_client):
    shirt, tie = ProductFactory(), ProductFactory()
    data = relation_form(
        shirt,
        tie,
        starts_at_0="2026-12-10",
        starts_at_1="10:00:00",
        ends_at_0="2026-12-01",
        ends_at_1="10:00:00",
    )
    response = admin_client.post(ADD_RELATION, data, headers={"accept-language": "ja"})
    assert response.status_code == 200
    assert "終了日時は開始日時より後にしてください。" in response.content.decode()
    assert not ProductRelation.objects.exists()


def test_self_link_message_in_japanese(admin_client):
    shirt = ProductFactory()
    response = admin_client.post(
        ADD_RELATION, relation_form(shirt, shirt), headers={"accept-language": "ja"}
    )
    assert "商品を自分自身に関連付けることはできません。" in response.content.decode()


def test_changelist_filters_and_search(admin_client):
    now = timezone.now()
    live = ProductRelationFactory(source__name="Camera body", target__name="Camera bag")
    ProductRelationFactory(ends_at=now - timedelta(days=1), source__name="Old promo")
    url = reverse("admin:django_crosssell_productrelation_changelist")
    current = admin_client.get(url, {"current": "yes"})
    assert list(current.context["cl"].queryset) == [live]
    not_current = admin_client.get(url, {"current": "no"})
    assert [r.source.name for r in not_current.context["cl"].queryset] == ["Old promo"]
    found = admin_client.get(url, {"q": "bag"})
    assert list(found.context["cl"].queryset) == [live]
    by_kind = admin_client.get(url, {"kind__exact": "related"})
    assert list(by_kind.context["cl"].queryset) == []


def test_add_reverse_links_action(admin_client):
    one = ProductRelationFactory(position=3)
    already = ProductRelationFactory()
    ProductRelationFactory(source=already.target, target=already.source)
    response = admin_client.post(
        reverse("admin:django_crosssell_productrelation_changelist"),
        {"action": "add_reverse_links", "_selected_action": [one.pk, already.pk]},
        follow=True,
    )
    assert response.status_code == 200
    reverse_link = ProductRelation.objects.get(source=one.target, target=one.source)
    assert (reverse_link.kind, reverse_link.position) == (one.kind, 3)
    assert ProductRelation.objects.count() == 4
    assert "1 reverse link added, 1 already existed." in response.content.decode()


def test_product_pickers_use_autocomplete_when_host_admin_is_searchable(admin_user):
    model_admin = ProductRelationAdmin(ProductRelation, admin.site)
    request = RequestFactory().get("/")
    request.user = admin_user
    form = model_admin.get_form(request)()
    assert isinstance(form.fields["source"].widget.widget, AutocompleteSelect)


def test_product_pickers_fall_back_to_raw_ids_without_search_fields(admin_user):
    site = admin.AdminSite(name="bare")
    site.register(Product)  # no search_fields: autocomplete is impossible
    model_admin = ProductRelationAdmin(ProductRelation, site)
    request = RequestFactory().get("/")
    request.user = admin_user
    form = model_admin.get_form(request)()
    assert isinstance(form.fields["source"].widget.widget, ForeignKeyRawIdWidget)
    assert model_admin.get_autocomplete_fields(request) == []


def test_the_host_product_admin_gets_the_request_for_its_search_fields(admin_user):
    seen = []

    class PerUserProductAdmin(admin.ModelAdmin):
        def get_search_fields(self, request):
            seen.append(request)
            return ["name"] if request.user.is_superuser else []

    site = admin.AdminSite(name="per-user")
    site.register(Product, PerUserProductAdmin)
    model_admin = ProductRelationAdmin(ProductRelation, site)
    request = RequestFactory().get("/")
    request.user = admin_user
    assert "source" in model_admin.get_autocomplete_fields(request)
    assert seen and all(r is request for r in seen)


def test_host_product_admin_shows_the_relation_inline(admin_client):
    shirt, tie = ProductFactory(), ProductFactory()
    ProductRelationFactory(source=shirt, target=tie, note="pairs well")
    response = admin_client.get(reverse("admin:testapp_product_change", args=[shirt.pk]))
    assert response.status_code == 200
    assert "pairs well" in response.content.decode()


def ladder_form(steps, **extra):
    data = {
        "name": "Cameras",
        "slug": "cameras",
        "is_active": "on",
        "description": "",
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        **extra,
    }
    for index, (rank, product, label) in enumerate(steps):
        data.update(
            {
                f"steps-{index}-rank": rank,
                f"steps-{index}-product": product.pk,
                f"steps-{index}-label": label,
                f"steps-{index}-pitch": "",
            }
        )
    return data


def test_add_ladder_with_steps(admin_client):
    basic, pro = ProductFactory(), ProductFactory()
    response = admin_client.post(
        reverse("admin:django_crosssell_tierladder_add"),
        ladder_form([(1, basic, "Standard"), (2, pro, "Premium")]),
    )
    assert response.status_code == 302
    ladder = TierLadder.objects.get()
    assert [s.label for s in ladder.steps.all()] == ["Standard", "Premium"]


def test_duplicate_rank_is_refused_on_the_form(admin_client):
    basic, pro = ProductFactory(), ProductFactory()
    response = admin_client.post(
        reverse("admin:django_crosssell_tierladder_add"),
        ladder_form([(1, basic, "Standard"), (1, pro, "Premium")]),
    )
    assert response.status_code == 200
    assert not TierLadder.objects.exists()
    assert "rank" in response.content.decode()


def test_duplicate_rank_against_saved_step_is_refused(admin_client):
    step = TierStepFactory(rank=1)
    ladder = step.ladder
    url = reverse("admin:django_crosssell_tierladder_change", args=[ladder.pk])
    data = ladder_form([(1, ProductFactory(), "Other")], name=ladder.name, slug=ladder.slug)
    data["steps-TOTAL_FORMS"] = "2"
    data["steps-INITIAL_FORMS"] = "1"
    data.update(
        {
            "steps-1-id": step.pk,
            "steps-1-ladder": ladder.pk,
            "steps-1-rank": 1,
            "steps-1-product": step.product.pk,
            "steps-1-label": step.label,
            "steps-1-pitch": "",
        }
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert TierStep.objects.count() == 1


def test_computed_data_is_read_only(admin_client):
    response = admin_client.get(reverse("admin:django_crosssell_affinityrun_changelist"))
    assert response.status_code == 200
    assert admin_client.get(reverse("admin:django_crosssell_affinityrun_add")).status_code == 403
