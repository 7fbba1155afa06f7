"""API fuzzing with Schemathesis: every operation of the OpenAPI document the server itself
serves (/v1/openapi.json), driven over real HTTP against `chalice local` on DynamoDB Local.

For each operation, schema-valid requests (positive) and schema-violating ones (negative),
with generated path identifiers and, for member routes, with a real member so that valid
bodies reach the ledger. The Bearer token is the one the operation documents (the tenant's
admin key, or the operator key). Every response must:

* never be a 5xx;
* have a documented status code, content type and headers, and a body that conforms to the
  documented schema for that status;
* be refused (4xx) whenever the request violates the schema;
* be refused without credentials, and without a required header (Schemathesis re-sends the
  request to check both);
* when it is an error, have the one error shape {"error": {"code", "message", "details"}}.

Not checked here: that every schema-valid request is accepted (``positive_data_acceptance``):
some rules cannot be written in JSON Schema (an IANA time zone, an opaque cursor); the ones
that can are pinned in test_schema_agreement.py.

Scale: ``LOYALTY_FUZZ_EXAMPLES`` examples per operation and mode (CI: 8; ``make soak``: more).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import app  # noqa: F401  (declares every operation, so the document below is complete)
from chalicelib.api.openapi import openapi_document
from tests.fuzz.conftest import LiveApi
from tests.model.stats import report

EXAMPLES = int(os.environ.get("LOYALTY_FUZZ_EXAMPLES", "8"))

#: (method, path) of every documented operation, read when the tests are collected: a new
#: route is fuzzed without touching this file.
OPERATIONS = sorted(
    (method.upper(), path) for path, operations in openapi_document()["paths"].items() for method in operations
)

FIGURES: Counter[str] = Counter()


def error_bodies_have_the_error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    """Every 4xx/5xx body is {"error": {"code": str, "message": str, "details": object}}."""
    if response.status_code < 400:
        return True
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"a {response.status_code} whose body is not JSON: {response.text[:200]!r}") from None
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(body, dict) and set(body) == {"error"} and isinstance(error, dict), (
        f"a {response.status_code} body not in the error shape: {body!r}"
    )
    assert set(error) == {"code", "message", "details"}, f"error keys {sorted(error)} in {body!r}"
    assert isinstance(error["code"], str) and error["code"], f"error code {error['code']!r}"
    assert isinstance(error["message"], str) and error["message"], f"error message {error['message']!r}"
    assert isinstance(error["details"], dict), f"error details {error['details']!r}"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    missing_required_header,
    error_bodies_have_the_error_shape,
]


@pytest.fixture(scope="session")
def schema(live_api: LiveApi) -> Iterator[Any]:
    """The document as the running server serves it."""
    started = time.monotonic()
    yield schemathesis.openapi.from_url(f"{live_api.base_url}/v1/openapi.json")
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(FIGURES.items()) if status.isdigit())
    report(
        f"API fuzzing [{live_api.emulator}]: {FIGURES['operations']} operations, {FIGURES['requests']} requests "
        f"({FIGURES['positive']} schema-valid, {FIGURES['negative']} schema-violating, {EXAMPLES} examples per "
        f"operation and mode) in {time.monotonic() - started:.0f} s; statuses: {statuses}",
        harness="fuzz",
    )


def _has_inputs(operation: Any, fixed: set[str]) -> bool:
    """Whether a negative example can be made: a body or a parameter that is not fixed."""
    raw = operation.definition.raw
    return "requestBody" in raw or any(p["name"] not in fixed for p in raw.get("parameters", []))


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_operation_honours_its_documented_contract(method: str, path: str, schema: Any, live_api: LiveApi) -> None:
    operation = schema[path][method]
    key = live_api.key_for(operation.definition.raw.get("security"))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    runs: list[tuple[GenerationMode, dict[str, str]]] = [(GenerationMode.POSITIVE, {})]
    if "{member_id}" in path:
        runs.append((GenerationMode.POSITIVE, {"member_id": live_api.member_id}))
    for _, fixed in list(runs):
        if _has_inputs(operation, set(fixed)):
            runs.append((GenerationMode.NEGATIVE, fixed))
    FIGURES["operations"] += 1

    for mode, fixed in runs:
        _fuzz(operation, mode, fixed, headers, live_api)


def _fuzz(
    operation: Any, mode: GenerationMode, fixed: dict[str, str], headers: dict[str, str], live_api: LiveApi
) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    def exchange(case: schemathesis.Case) -> None:
        response = case.call(base_url=live_api.base_url, headers=headers, timeout=30)
        FIGURES["requests"] += 1
        FIGURES[mode.value] += 1
        FIGURES[str(response.status_code)] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    exchange()
