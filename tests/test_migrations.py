"""The shipped migrations must follow CROSSSELL_PRODUCT_MODEL, never a hard-coded model."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command

import django_crosssell

MIGRATIONS = Path(django_crosssell.__file__).parent / "migrations"


def migration_files():
    return sorted(p for p in MIGRATIONS.glob("[0-9]*.py"))


def test_there_are_migrations():
    assert migration_files()


def test_no_migration_hard_codes_a_product_model():
    offenders = []
    for path in migration_files():
        text = path.read_text()
        # to='app.model' is fine for our own models only.
        for target in re.findall(r"to='([\w]+)\.(\w+)'", text):
            if target[0] != "django_crosssell":
                offenders.append((path.name, target))
        dependencies = text.split("dependencies = [", 1)[1].split("]", 1)[0]
        for dep in re.findall(r"\('(\w+)', '(\w+)'\)", dependencies):
            if dep[0] not in ("django_crosssell",):
                offenders.append((path.name, dep))
    assert offenders == []


def test_product_foreign_keys_use_the_setting():
    text = (MIGRATIONS / "0001_initial.py").read_text()
    assert "migrations.swappable_dependency(settings.CROSSSELL_PRODUCT_MODEL)" in text
    assert text.count("to=settings.CROSSSELL_PRODUCT_MODEL") >= 6


@pytest.mark.django_db
def test_makemigrations_is_clean_for_a_uuid_product_model(capsys):
    call_command("makemigrations", "--check", "--dry-run")
    assert "No changes detected" in capsys.readouterr().out
