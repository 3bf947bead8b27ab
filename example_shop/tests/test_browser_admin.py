"""Staff can work in the admin at 1400 px: no page of the app scrolls sideways (issue 16).

The demo catalogue is seeded (``seed_demo``: ladders, links, bundles, follow-up records)
and recomputed, then a real browser opens every list, add and change page of
django-crosssell's admin and the shop's product page (with its relation inline and the
"what this page shows" preview), and measures the document and every scrolling box in it.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from django_crosssell.models import TierLadder, TierStep
from django_crosssell.recompute import run_recompute
from example_shop.shop.models import Category, Product
from example_shop.tests.browser import DOCS, open_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = 1400

OVERFLOW = """() => {
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    found.push(`document ${root.scrollWidth} > ${root.clientWidth}`);
  }
  for (const el of document.querySelectorAll("#content *")) {
    const style = getComputedStyle(el);
    if (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${el.tagName}.${el.className} ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  return found;
}"""


@pytest.fixture
def demo() -> list[str]:
    """Seeded demo data and the admin pages to visit (paths)."""
    call_command("seed_demo", orders=1500, verbosity=0)
    run_recompute()
    # The ladder: ¥3,300 -> ¥4,980 is 1.509x, over UPGRADE_MAX_PRICE_RATIO 1.5.
    kitchen = Category.objects.get(slug="kitchen")
    ladder = TierLadder.objects.create(name="砥石", slug="toishi")
    for rank, (name, price) in enumerate((("砥石 中砥", 3300), ("砥石 仕上げ", 4980)), 1):
        stone = Product.objects.create(
            name=name, slug=f"stone-{rank}", category=kitchen, price=price, stock=5
        )
        TierStep.objects.create(ladder=ladder, product=stone, rank=rank, label=name)
    get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    paths = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "django_crosssell":
            continue
        info = model._meta.app_label, model._meta.model_name
        paths.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.has_add_permission(_superuser_request()):
            paths.append(reverse("admin:{}_{}_add".format(*info)))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            paths.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    product = Product.objects.filter(crosssell_relations__isnull=False).first()
    paths.append(reverse("admin:shop_product_change", args=[product.pk]))
    paths.append(reverse("admin:index"))
    return paths


def _superuser_request():
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = type("U", (), {"is_active": True, "is_staff": True, "has_perm": lambda *a: True})
    return request


@pytest.fixture
def staff_page(chromium):
    yield from open_page(chromium, WIDTH)


def test_every_admin_page_fits_1400_px(live_server, demo, staff_page):
    page = staff_page
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(live_server.url + reverse("admin:index"))
    problems = {}
    for path in demo:
        response = page.goto(live_server.url + path)
        assert response is not None and response.ok, path
        found = page.evaluate(OVERFLOW)
        if found:
            problems[path] = found
    assert problems == {}
    page.goto(live_server.url + reverse("admin:django_crosssell_productrelation_changelist"))
    page.screenshot(path=str(DOCS / "admin-relations.png"), full_page=False)

    # The blocked step is flagged on the ladder list, with its ratio; the seeded ones show.
    page.goto(live_server.url + reverse("admin:django_crosssell_tierladder_changelist"))
    flags = page.locator(".crosssell-warning li").all_inner_texts()
    assert flags == [
        "⚠ 砥石 中砥 → 砥石 仕上げ は表示されません：価格が1.509倍で、"
        "UPGRADE_MAX_PRICE_RATIO（1.5）を超えています。"
    ]
    assert page.locator(".crosssell-ok").count() == 3  # the demo's three ladders
    page.screenshot(path=str(DOCS / "admin-ladders.png"), full_page=False)
