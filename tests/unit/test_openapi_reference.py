"""The OpenAPI document as a reference for a brand's integrator: every operation says what it
does (a summary and a description) and shows an example of what it takes and answers."""

from __future__ import annotations

from typing import Any

import pytest

import app  # noqa: F401 - registers every blueprint, hence every operation
from chalicelib.api.openapi import openapi_document
from chalicelib.api.routing import OPERATIONS


def _operations() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, methods in openapi_document()["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_operation_has_a_summary_and_a_written_description() -> None:
    # Given every declared operation
    assert len(OPERATIONS) == len(_operations()) > 0
    # Then each declares a description of its own, more than its summary
    missing = [op.operation_id for op in OPERATIONS if len(op.description.split()) < 8]
    assert not missing, f"operations without a description (endpoint(..., description=...)): {missing}"
    assert not [op.operation_id for op in OPERATIONS if op.description.strip() == op.summary.strip()]
    # And the document gives each a summary and a description naming the key it needs
    for route, operation in _operations():
        assert operation["summary"].strip(), route
        assert operation["description"].startswith(operation_description(route)), route
        assert "Key: " in operation["description"], route


def operation_description(route: str) -> str:
    method, path = route.split(" ", 1)
    (op,) = [op for op in OPERATIONS if op.method == method and "/v1" + op.path == path]
    return op.description


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.errors], ids=lambda op: op.operation_id)
def test_the_description_lists_the_refusals_the_operation_declares(op: Any) -> None:
    operation = openapi_document()["paths"]["/v1" + op.path][op.method.lower()]
    for error in op.errors:
        assert f"`{error.code}`" in operation["description"], error.code
