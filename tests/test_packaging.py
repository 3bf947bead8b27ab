"""The wheel and sdist ship the app with its data files and nothing of the demo or tests."""

import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def tracked_package_files() -> set[str]:
    listing = subprocess.run(
        ["git", "ls-files", "django_crosssell"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return {name for name in listing if (ROOT / name).exists()}


def test_wheel_contains_the_whole_package_and_nothing_else(dist):
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
    package = {n for n in names if n.startswith("django_crosssell/")}
    assert tracked_package_files() <= package
    assert "django_crosssell/locale/ja/LC_MESSAGES/django.mo" in package
    assert "django_crosssell/migrations/0001_initial.py" in package
    assert "django_crosssell/py.typed" in package  # PEP 561: type checkers read the hints
    assert any(n.startswith("django_crosssell/templates/") for n in package)
    others = {n for n in names - package if ".dist-info/" not in n}
    assert others == set()


def test_sdist_has_no_demo_or_tests(dist):
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(n.endswith("django_crosssell/locale/ja/LC_MESSAGES/django.mo") for n in names)
    for forbidden in ("/example_shop/", "/tests/", "/benchmarks/"):
        assert not [n for n in names if forbidden in n + "/"], forbidden


def test_wheel_installs_and_migrates_in_a_scratch_environment(dist, tmp_path):
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
    )
    # Dependencies come from the test environment (a .pth placed after the wheel's own
    # site-packages), so the app itself can only be imported from the installed wheel.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    host = tmp_path / "host"
    (host / "shop").mkdir(parents=True)
    (host / "shop" / "__init__.py").write_text("")
    (host / "shop" / "models.py").write_text(
        textwrap.dedent(
            """
            from django.db import models

            class Product(models.Model):
                name = models.CharField(max_length=100)
                price = models.IntegerField()
            """
        )
    )
    (host / "host_settings.py").write_text(
        textwrap.dedent(
            f"""
            SECRET_KEY = "x"
            INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth",
                              "django_crosssell", "shop"]
            DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
                                       "NAME": "{tmp_path / "db.sqlite3"}"}}}}
            CROSSSELL_PRODUCT_MODEL = "shop.Product"
            USE_TZ = True
            """
        )
    )
    script = textwrap.dedent(
        """
        import django, os
        os.environ["DJANGO_SETTINGS_MODULE"] = "host_settings"
        django.setup()
        import django_crosssell
        from django.core.management import call_command
        call_command("makemigrations", "shop", verbosity=0)
        call_command("migrate", verbosity=0)
        call_command("check")
        from django_crosssell.models import ProductRelation
        from django.utils import translation
        with translation.override("ja"):
            print(ProductRelation._meta.verbose_name)
        print(django_crosssell.__file__)
        """
    )
    result = subprocess.run(
        [python, "-c", script],
        cwd=host,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(host)},
    )
    assert result.returncode == 0, result.stderr
    verbose_name, location = result.stdout.strip().splitlines()[-2:]
    assert verbose_name == "商品の関連付け"  # compiled translations shipped
    assert location.startswith(str(venv))
