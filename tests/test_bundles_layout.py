"""The layout of ``django_crosssell.bundles``: what its modules import, and what tests may use."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "django_crosssell"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, function-level imports included."""
    modules = {
        _module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:
                    package = base
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    target = f"{package}.{node.module}" if node.module else package
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        edges.add(f"{target}.{alias.name}")
                    elif target in modules:
                        edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def test_no_import_cycle_through_the_bundle_modules():
    graph = _import_graph()
    bundle_modules = [name for name in graph if name.startswith("django_crosssell.bundles")]
    assert len(bundle_modules) == 7
    cycles = [name for name in bundle_modules if name in _reachable(graph, name)]
    assert cycles == []


def test_the_solver_imports_nothing_of_django_or_the_app():
    source = (PACKAGE / "bundles" / "solver.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    top_level = {
        alias.name.split(".")[0] if isinstance(node, ast.Import) else (node.module or ".")
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert top_level <= {
        "__future__",
        "decimal",
        "itertools",
        "collections.abc",
        "dataclasses",
        "typing",
    }


def test_importing_the_bundles_and_their_tags_loads_no_numpy_or_scipy():
    """SciPy is imported inside the fallback functions only (checked in a fresh process)."""
    script = (
        "import sys, django\n"
        "django.setup()\n"
        "for name in [m for m in sys.modules if m.startswith(('django_crosssell.bundles',"
        " 'django_crosssell.templatetags.crosssell_bundles'))]:\n"
        "    del sys.modules[name]\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('numpy', 'scipy', 'pandas'):\n"
        "            raise ImportError(f'{name} imported while importing the bundles')\n"
        "for name in [m for m in sys.modules if m.split('.')[0] in ('numpy', 'scipy', 'pandas')]:\n"
        "    del sys.modules[name]\n"
        "sys.meta_path.insert(0, Block())\n"
        "import django_crosssell.bundles, django_crosssell.templatetags.crosssell_bundles\n"
        "print('ok')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_tests_and_benchmarks_use_no_private_bundle_names():
    offenders = []
    for folder in ("tests", "benchmarks", "example_shop"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("django_crosssell.bundles")
                    and any(alias.name.startswith("_") for alias in node.names)
                ) or (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in ("bundles", "solver", "rules", "offers")
                    and node.attr.startswith("_")
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
