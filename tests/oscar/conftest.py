"""Fixtures of the django-oscar suite, and its collection rules.

The suite runs only under its own settings (``pytest --ds=tests.oscar.settings
tests/oscar``); the library's default run (``tests.settings``) skips the directory. Without
django-oscar installed only ``test_oscar_installed.py`` is collected, which skips with the
reason, or fails on CI (``CROSSSELL_REQUIRE_SERVICES=1``).
"""

import os
from importlib.util import find_spec
from pathlib import Path

import pytest

OSCAR_SETTINGS = "tests.oscar.settings"

if os.environ.get("DJANGO_SETTINGS_MODULE") != OSCAR_SETTINGS:
    collect_ignore_glob = ["*"]
elif find_spec("oscar") is None:
    collect_ignore = [
        path.name
        for path in Path(__file__).parent.glob("test_*.py")
        if path.name != "test_oscar_installed.py"
    ]


def pytest_configure(config):
    """Create Oscar's tables directly instead of running its ~150 migrations.

    They take 100 s on SQLite before the first test; the suite installs the bundle offer
    itself (``django_db_setup`` below), and ``test_offer_install.py`` runs the app's data
    migration. ``make lint`` checks the app's migrations against its models.
    """
    if os.environ.get("DJANGO_SETTINGS_MODULE") == OSCAR_SETTINGS:
        config.option.nomigrations = True
        # Oscar's own noise: its catalogue code calls deprecated treebeard methods, and
        # haystack's simple backend warns on every product save.
        config.addinivalue_line("filterwarnings", r"ignore:Using Category\.")
        config.addinivalue_line("filterwarnings", "ignore:update is not implemented:UserWarning")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database with the bundle offer installed, as migration 0002 does."""
    from django_crosssell.contrib.oscar.management.commands import crosssell_oscar_install_offer

    with django_db_blocker.unblock():
        crosssell_oscar_install_offer.Command().handle()


# Fixtures import the shop lazily: this module is imported under any settings.


@pytest.fixture
def shop(db):
    """The Oscar catalogue of tests/oscar/shop.py."""
    from tests.oscar import shop as builders

    return builders.catalogue()


@pytest.fixture
def customer(db, django_user_model):
    return django_user_model.objects.create_user(
        username="customer", email="customer@example.com", password="x"
    )
