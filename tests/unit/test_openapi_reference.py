"""The OpenAPI document as a reference for a brand's integrator: every operation says what it
does (a summary and a description) and shows an example of what it takes and answers."""

from __future__ import annotations

import csv
import importlib
import io
import json
import pkgutil
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import app  # noqa: F401 - registers every blueprint, hence every operation
from chalicelib.api import schemas as schemas_package
from chalicelib.api.openapi import declared_examples, openapi_document
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


# --- examples ---------------------------------------------------------------------------------------

DOCUMENT_URI = "urn:loyalty:openapi"


def _validate(instance: Any, schema: dict[str, Any], what: str) -> None:
    document = openapi_document()
    registry = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    if "$ref" in schema:
        schema = {"$ref": DOCUMENT_URI + schema["$ref"]}
    validator = Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(instance)
    ]
    assert not errors, f"{what}: the example does not match its documented schema:\n" + "\n".join(errors)


def _examples() -> list[tuple[str, str, dict[str, Any]]]:
    """(route, what, media type object) of every request body and success answer."""
    found = []
    for route, operation in _operations():
        for media, content in operation.get("requestBody", {}).get("content", {}).items():
            if media == "application/json":
                found.append((route, "request", content))
        for status, response in operation["responses"].items():
            if status.startswith("2"):
                found += [
                    (route, f"{status} {media}", content) for media, content in response.get("content", {}).items()
                ]
    return found


def test_every_operation_shows_a_request_example_and_an_answer_example() -> None:
    # Every operation with a body shows a request, and every one shows its success answer
    with_body = [route for route, operation in _operations() if "requestBody" in operation]
    answered = {route for route, what, _content in _examples() if what[0] == "2"}
    assert answered == {route for route, _operation in _operations()}
    assert {route for route, what, _content in _examples() if what == "request"} == set(with_body)
    missing = [f"{route} {what}" for route, what, content in _examples() if content.get("example") in (None, "", {})]
    assert not missing, "examples missing:\n" + "\n".join(missing)


@pytest.mark.parametrize(("route", "what", "content"), _examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_example_matches_the_documented_schema(route: str, what: str, content: dict[str, Any]) -> None:
    _validate(content["example"], content["schema"], f"{route} {what}")


def _schema_models() -> list[type[BaseModel]]:
    models = []
    for info in pkgutil.iter_modules(schemas_package.__path__):
        module = importlib.import_module(f"{schemas_package.__name__}.{info.name}")
        models += [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
        ]
    return models


@pytest.mark.parametrize("model", [m for m in _schema_models() if declared_examples(m)], ids=lambda m: m.__name__)
def test_each_declared_model_example_parses_with_its_model(model: type[BaseModel]) -> None:
    # Every example a model declares is one the model itself accepts (as JSON, as a request is read)
    for example in declared_examples(model):
        model.model_validate_json(json.dumps(example))


@pytest.mark.parametrize(
    "model",
    sorted(
        {op.response.load() for op in OPERATIONS if op.response is not None and declared_examples(op.response.load())},
        key=str,
    ),
    ids=lambda m: m.__name__,
)
def test_each_declared_answer_example_is_what_the_model_serialises(model: type[BaseModel]) -> None:
    # An answer's example is exactly what the API would send for it: nothing missing, nothing extra
    for example in declared_examples(model):
        assert model.model_validate_json(json.dumps(example)).model_dump(mode="json") == example


def test_the_csv_examples_have_the_export_columns() -> None:
    from chalicelib.api.presenters import exports as presenters

    columns = {
        "export_members": presenters.MEMBER_EXPORT_COLUMNS,
        "export_ledger": presenters.LEDGER_EXPORT_COLUMNS,
        "insights_timeseries": ("period", "value"),
    }
    for op in OPERATIONS:
        if op.response_media != "application/json":
            rows = list(csv.reader(io.StringIO(op.response_example)))
            assert tuple(rows[0]) == columns[op.operation_id]
            assert all(len(row) == len(rows[0]) for row in rows[1:]) and len(rows) > 1
