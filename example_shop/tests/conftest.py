"""Fixtures of the example shop's tests (run with ``--ds=example_shop.settings``)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import pytest
from django.core.cache import caches
from django.test import Client, override_settings

from django_crosssell.measure import experiments
from example_shop.shop.models import Category, Product
from example_shop.tests.browser import chromium  # noqa: F401  (the browser tests' fixture)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """The shop's PBKDF2 costs a good part of a second per hash by design; the tests create
    and log in users often (the library's tests.settings uses MD5 for the same reason)."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True)
def _clear_caches():
    """Recommendation widgets cache per product; each test starts cold."""
    for cache in caches.all():
        # A dead cache must not break tests that are not about it.
        with contextlib.suppress(Exception):
            cache.clear()
    experiments.forget_local()
    yield


@pytest.fixture
def category(db) -> Category:
    return Category.objects.create(name="コーヒー", slug="coffee", position=1)


@pytest.fixture
def other_category(db) -> Category:
    return Category.objects.create(name="文房具", slug="stationery", position=2)


@pytest.fixture
def make_product(db, category) -> Callable[..., Product]:
    counter = itertools.count(1)

    def make(**fields) -> Product:
        number = next(counter)
        fields.setdefault("name", f"テスト商品{number}")
        fields.setdefault("slug", f"test-product-{number}")
        fields.setdefault("category", category)
        fields.setdefault("price", 1000 * number)
        fields.setdefault("stock", 10)
        return Product.objects.create(**fields)

    return make


@pytest.fixture
def product(make_product) -> Product:
    return make_product(
        name="ハウスブレンド 200g",
        slug="house-blend",
        price=1280,
        stock=5,
        description="自家焙煎のコーヒー豆です。",
    )


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="hanako", password="pw-hanako")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user(username="taro", password="pw-taro")


@pytest.fixture
def user_client(client: Client, user) -> Client:
    client.force_login(user)
    return client
