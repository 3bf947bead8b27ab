"""Property-based run of schemathesis against the generated OpenAPI schema.

Every operation, staff ones included (HTTP Basic as a staff user with the model
permissions), gets positive and negative examples; each response must not be a 5xx and must
conform to the schema: documented status code, content type, headers and body. Generated
ids rarely name a real object, so hooks swap in ids of the seeded catalogue half of the
time, which drives the 200 paths through the serializers too.

Each example runs in a rolled-back transaction, so every one starts from the same data.
The budget is ``CROSSSELL_SCHEMATHESIS_EXAMPLES`` examples per operation and generation
mode (default 20: about half a minute; 60 was run once while developing, about two
minutes on two cores, with no failure).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from django_crosssell.conf import get_product_model
from django_crosssell.models import AffinityRun, BundleRule, ProductRelation, TierLadder

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MAX_EXAMPLES = int(os.environ.get("CROSSSELL_SCHEMATHESIS_EXAMPLES", "20"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
STAFF_AUTH = "Basic " + base64.b64encode(b"staff:staff-pass").decode()
PRODUCT_KEYS = {"product", "source", "target"}


def _swap_ids(value: Any, products: list[str], counter: list[int]) -> Any:
    """The same body with every product id replaced by a real one (in turn)."""

    def next_id() -> str:
        counter[0] += 1
        return products[counter[0] % len(products)]

    if isinstance(value, dict):
        swapped = {}
        for key, item in value.items():
            if key in PRODUCT_KEYS and not isinstance(item, dict | list):
                swapped[key] = next_id()
            elif key == "product_ids" and isinstance(item, list):
                swapped[key] = [next_id() for _ in item]
            else:
                swapped[key] = _swap_ids(item, products, counter)
        return swapped
    if isinstance(value, list):
        return [_swap_ids(item, products, counter) for item in value]
    return value


def _real_ids(path: str) -> list[str]:
    """Ids of existing objects for the ``{id}`` of a path (queried when drawn: examples
    may have deleted some)."""
    for prefix, model in (
        ("/relations/", ProductRelation),
        ("/ladders/", TierLadder),
        ("/bundle-rules/", BundleRule),
        ("/runs/", AffinityRun),
    ):
        if prefix in path:
            return [str(pk) for pk in model.objects.values_list("pk", flat=True)[:5]]
    return []


def _product_ids() -> list[str]:
    return [str(pk) for pk in get_product_model()._default_manager.values_list("pk", flat=True)[:5]]


def _load_schema() -> schemathesis.BaseSchema:
    """The schema as the test host serves it, fetched through the WSGI app (no database
    access is needed to generate it, so this runs at collection)."""
    config = SchemathesisConfig.from_dict(
        {"generation": {"max-examples": MAX_EXAMPLES, "deterministic": True}}
    )
    loaded = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", WSGIHandler(), config=config
    )

    @loaded.hook
    def flatmap_path_parameters(context, path_parameters):
        if not path_parameters:
            return st.just(path_parameters)
        real: dict[str, Any] = {}
        products = _product_ids()
        if "product_id" in path_parameters and products:
            real["product_id"] = st.sampled_from(products)
        pks = _real_ids(context.operation.path)
        if "id" in path_parameters and pks:
            real["id"] = st.sampled_from(pks)
        if not real:
            return st.just(path_parameters)
        return st.one_of(
            st.just(path_parameters),
            st.fixed_dictionaries(real).map(lambda chosen: {**path_parameters, **chosen}),
        )

    @loaded.hook
    def flatmap_query(context, query):
        products = _product_ids()
        if not isinstance(query, dict) or not PRODUCT_KEYS & set(query) or not products:
            return st.just(query)
        return st.booleans().map(lambda swap: _swap_ids(query, products, [0]) if swap else query)

    @loaded.hook
    def flatmap_body(context, body):
        products = _product_ids()
        if not isinstance(body, dict | list) or not products:
            return st.just(body)
        return st.integers(0, 4).map(lambda n: _swap_ids(body, products, [n]) if n else body)

    return loaded


SCHEMA = _load_schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Calls go through the real WSGI handler, which closes the database connection after
    each request; like Django's test client, keep it open so the test transaction (and its
    seeded data) survives on PostgreSQL."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def test_every_endpoint_is_fuzzed():
    """Guards against an empty or partial schema making the run below trivially green."""
    paths = {operation.path for operation in OPERATIONS}
    assert (
        len(OPERATIONS) == 36
    )  # 27 of the REST API, 2 staff figures of measurement, 7 of customers
    assert "/crosssell/performance/" in paths
    assert "/api/crosssell/products/{product_id}/recommendations/" in paths
    assert "/api/crosssell/bundle-rules/{id}/" in paths
    assert len(PUBLIC) == 7  # for-you and buy-again included


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_api_conforms_to_its_schema(operation, mode, catalogue, staff_user):
    """No 5xx and no schema violation for generated requests, as a staff user."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        # Each example starts from the seeded catalogue (a DELETE must not change what the
        # next example draws: Hypothesis needs the id hooks to be repeatable).
        with transaction.atomic():
            response = case.call(headers={"Authorization": STAFF_AUTH})
            transaction.set_rollback(True)
        case.validate_response(response, checks=CHECKS)

    run()


PUBLIC = [op for op in OPERATIONS if "storefront" in op.definition.raw.get("tags", [])]


@pytest.mark.parametrize("operation", PUBLIC, ids=[op.label for op in PUBLIC])
def test_public_endpoints_conform_for_anonymous_clients(operation, catalogue):
    """The storefront endpoints without credentials (no user, so no personal filtering)."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def run(case):
        with transaction.atomic():
            response = case.call()
            transaction.set_rollback(True)
        case.validate_response(response, checks=CHECKS)

    run()
