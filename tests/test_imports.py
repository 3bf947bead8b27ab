"""The web path never loads numpy, pandas or scipy.

A web worker serving widgets and the API has no use for the affinity engine; numpy, pandas
and scipy together cost about 100 MB of memory and a second of start-up per process. Each
check runs in a fresh interpreter, because this test process has long imported them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pandas", "scipy")

#: What a web process imports: the URLconf, the template tags, the admin and the models.
WEB_MODULES = (
    "django_crosssell.models",
    "django_crosssell.admin",
    "django_crosssell.api.urls",
    "django_crosssell.templatetags.crosssell",
    "django_crosssell.templatetags.crosssell_bundles",
    "django_crosssell.measure",
    "django_crosssell.measure.urls",
    "django_crosssell.measure.middleware",
    "django_crosssell.measure.admin",
)

SCRIPT = """
import importlib, json, sys
import django
django.setup()
for name in sys.argv[1:]:
    if name == "checks":
        from django.core import checks
        checks.run_checks()  # what runserver and `manage.py check` do at start-up
    else:
        importlib.import_module(name)
heavy = {"numpy", "pandas", "scipy"}
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in heavy)))
"""


def heavy_modules_after(*modules: str) -> list[str]:
    """The numpy/pandas/scipy modules loaded by ``django.setup()`` and these imports."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)  # imports only: no database is touched
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_django_setup_loads_none_of_them():
    assert heavy_modules_after() == []


@pytest.mark.parametrize("module", WEB_MODULES)
def test_the_web_path_loads_none_of_them(module):
    loaded = heavy_modules_after(module)
    assert not {name.partition(".")[0] for name in loaded} & set(HEAVY), loaded


def test_the_system_checks_load_none_of_them():
    assert heavy_modules_after("checks") == []


def test_the_whole_web_path_at_once():
    assert heavy_modules_after(*WEB_MODULES, "checks") == []


def test_the_recompute_does_load_them():
    """The probe itself works: the engine's modules really show up."""
    loaded = heavy_modules_after("django_crosssell.recompute")
    assert {"numpy", "pandas", "scipy"} <= {name.partition(".")[0] for name in loaded}
