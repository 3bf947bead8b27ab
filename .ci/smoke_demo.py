"""Demo smoke run: migrate, seed a small shop, recompute, fetch the product and cart pages."""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_shop.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import django

django.setup()

from urllib.parse import urlencode  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from example_shop.shop.models import Product  # noqa: E402

call_command("migrate", verbosity=0)
call_command("seed_demo", orders=2000, seed=7)
call_command("crosssell_recompute")
call_command("demo_admin")

client = Client(HTTP_ACCEPT_LANGUAGE="ja")
failures = []


def expect(path, *texts, method="get", data=None):
    response = getattr(client, method)(path, data or {}, follow=True)
    body = response.content.decode()
    if response.status_code != 200:
        failures.append(f"{path}: HTTP {response.status_code}")
    for text in texts:
        if text not in body:
            failures.append(f"{path}: {text!r} not on the page")
    return body


product = (
    Product.objects.filter(is_active=True, stock__gt=0, crosssell_affinities__isnull=False)
    .distinct()
    .order_by("pk")
    .first()
)
assert product is not None, "no product with computed recommendations after the recompute"
expect("/", "すべての商品")  # the catalogue pages by 24; the product is found by search
expect("/?" + urlencode({"q": product.name}), product.name)
expect(product.get_absolute_url(), product.name, "こちらもおすすめ")
client.post(f"/cart/add/{product.pk}/", {"quantity": 1})
expect("/cart/", product.name, "よく一緒に購入されている商品")

if failures:
    print("Demo smoke run FAILED:\n- " + "\n- ".join(failures))
    sys.exit(1)
print(f"Demo smoke run OK: product page and cart page of {product.name!r} show the widgets.")
