# One-command entry points. Everything runs inside .venv, created on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
MANAGE := $(PY) manage.py
HOST   ?= 127.0.0.1
PORT   ?= 8000
ORDERS ?= 20000

.PHONY: help install demo demo-data test test-fast lint fmt messages bench bench-quick dist clean

help:
	@echo "make demo    - install, migrate, seed demo data, compute recommendations, serve http://$(HOST):$(PORT)/"
	@echo "make test    - install the test extras and run the whole suite (library, example shop, django-oscar host)"
	@echo "make test-fast - the three suites without the slow and browser tests (for iterating)"
	@echo "make lint    - ruff, mypy and makemigrations --check"
	@echo "make bench   - run the benchmarks (writes benchmarks/RESULTS.md)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[redis,postgres,beat,apidocs]" "dj-database-url>=2.1"
	touch $@

install: $(VENV)/.installed-test

demo-data: $(VENV)/.installed-demo
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo --orders $(ORDERS) --if-empty
	$(MANAGE) crosssell_recompute
	$(MANAGE) crosssell_customers
	$(MANAGE) demo_admin --url http://$(HOST):$(PORT)/admin/

demo: demo-data
	$(MANAGE) runserver $(HOST):$(PORT)

test: $(VENV)/.installed-test
	$(BIN)/pytest $(PYTEST_ARGS)
	$(BIN)/pytest --ds=example_shop.settings example_shop/tests $(PYTEST_ARGS)
	$(BIN)/pytest --ds=tests.oscar.settings tests/oscar $(PYTEST_ARGS)

# Everything but the tests marked slow (property and fuzz suites, packaging, reference data,
# fresh processes) or browser. `make test` stays the full run (what CI does).
FAST := -m "not slow and not browser"
test-fast: $(VENV)/.installed-test
	$(BIN)/pytest $(FAST) $(PYTEST_ARGS)
	$(BIN)/pytest --ds=example_shop.settings example_shop/tests $(FAST) $(PYTEST_ARGS)
	$(BIN)/pytest --ds=tests.oscar.settings tests/oscar $(FAST) $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MANAGE) makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=tests.settings $(PY) -m django makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=tests.oscar.settings $(PY) -m django makemigrations --check --dry-run
	$(BIN)/mypy django_crosssell

fmt: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

messages: $(VENV)/.installed-test
	cd django_crosssell && ../$(PY) -m django makemessages -l ja --no-obsolete && ../$(PY) -m django compilemessages

bench: $(VENV)/.installed-test
	$(PY) benchmarks/affinity.py
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/dask_read.py
	$(PY) benchmarks/widgets.py
	$(PY) benchmarks/bundles.py
	$(PY) benchmarks/api.py
	$(PY) benchmarks/faults.py
	$(PY) benchmarks/measure.py
	$(PY) benchmarks/customers.py
	$(PY) benchmarks/personal.py

bench-quick: $(VENV)/.installed-test
	$(PY) benchmarks/affinity.py --quick --no-write
	$(PY) benchmarks/engine.py --quick --no-write
	$(PY) benchmarks/dask_read.py --quick --no-write
	$(PY) benchmarks/widgets.py --quick --no-write
	$(PY) benchmarks/bundles.py --quick --no-write
	$(PY) benchmarks/api.py --quick --no-write
	$(PY) benchmarks/faults.py --quick --no-write
	$(PY) benchmarks/measure.py --quick --no-write
	$(PY) benchmarks/customers.py --quick --no-write

dist: $(VENV)/.installed-test
	rm -rf dist && $(PY) -m build

clean:
	rm -rf dist build *.egg-info .pytest_cache .mypy_cache example_shop.sqlite3 .tox
