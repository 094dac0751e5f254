"""GET /api/openapi.json is a valid OpenAPI document, and the API keeps to it (schemathesis).

schemathesis's own pytest plugin does not support pytest 9 yet, so its
strategies are driven with hypothesis directly, one test per operation.
"""
from __future__ import annotations

import re

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from api import create_app
from api.http import ROUTES
from api.http.openapi import openapi_document

OPERATIONS = [(method, path) for path, item in openapi_document()["paths"].items() for method in item]


def test_document_is_valid_openapi_and_lists_every_route(client) -> None:
    doc = client.get("/api/openapi.json").get_json()
    validate(doc)
    assert {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", url) for _, url in ROUTES} == set(doc["paths"])


# A schema-valid request may still be refused for rules JSON Schema cannot state
# (oversold < overbought, exactly one of crypto_id/symbol: 400), an unknown id
# (404) or a reused Idempotency-Key (409/422); every one of those is documented.
CONFIG = SchemathesisConfig.from_str(
    '[checks.positive_data_acceptance]\nexpected-statuses = ["2xx", "400", "404", "409", "422", "429"]\n')


@pytest.fixture(scope="module")
def api_schema(settings, demo_db_module):
    # a small MAX_SWEEP_BACKTESTS keeps each fuzzed grid and Monte Carlo to a fraction of a second (a bigger one
    # is a documented 400)
    app = create_app(settings, max_concurrent_batches=4, max_sweep_backtests=500)
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=CONFIG)


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m.upper()} {p}" for m, p in OPERATIONS])
def test_api_conforms_to_its_openapi_document(api_schema, method, path) -> None:
    """All checks, 100 examples: no server error, every response matches its documented schema."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case) -> None:
        case.call_and_validate()

    check()
