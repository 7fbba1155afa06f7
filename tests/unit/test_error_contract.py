"""The error contract: each operation declares, at its route, the domain errors it can answer
(``endpoint(errors=...)``, plus those its kind implies: ``Operation.answers``), and the OpenAPI
document lists exactly those codes under each status. These tests keep the declarations
honest against the code that raises the errors."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import app
from chalicelib.api.errors import status_for
from chalicelib.api.openapi import openapi_document
from chalicelib.api.routing import OPERATIONS, Operation
from chalicelib.domain.errors import LoyaltyError

ROOT = Path(__file__).resolve().parents[2]

#: Codes the domain produces that never reach an HTTP caller, and why.
NOT_ANSWERED = {
    "unknown_tier": "a bulk import's row issue (chalicelib.domain.imports), recorded on the import",
}


def _error_classes() -> dict[str, type[LoyaltyError]]:
    found: dict[str, type[LoyaltyError]] = {}
    pending = [LoyaltyError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found[sub.__name__] = sub
            pending.append(sub)
    return found


def _names_built(tree: ast.AST) -> Iterator[str]:
    """Names called or raised: ``X(...)``, ``X.for_fields(...)``, ``raise X``."""
    for node in ast.walk(tree):
        target = node.func if isinstance(node, ast.Call) else node.exc if isinstance(node, ast.Raise) else None
        if isinstance(target, ast.Attribute) and target.attr == "for_fields":
            target = target.value
        if isinstance(target, ast.Name):
            yield target.id
        elif isinstance(target, ast.Attribute):
            yield target.attr


def _produced() -> dict[str, type[LoyaltyError]]:
    """The public error classes some code of chalicelib builds, by code."""
    classes = _error_classes()
    built: set[str] = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        built.update(_names_built(ast.parse(path.read_text(encoding="utf-8"))))
    return {
        cls.code: cls
        for name, cls in classes.items()
        if name in built and not name.startswith("_") and cls.__module__.startswith("chalicelib.")
    }


def test_every_declared_error_is_one_the_code_produces_and_maps_to_a_4xx_or_503() -> None:
    produced = _produced()
    problems = []
    for op in OPERATIONS:
        for error in op.errors:
            if not (isinstance(error, type) and issubclass(error, LoyaltyError)):
                problems.append(f"{op.operation_id}: {error!r} is not a domain error class")
            elif produced.get(error.code) is not error:
                problems.append(f"{op.operation_id}: {error.__name__} ({error.code}) is raised nowhere")
            elif status_for(error) == 500:
                problems.append(f"{op.operation_id}: {error.__name__} has no status in STATUS_BY_ERROR")
    assert not problems, "\n".join(problems)


def test_every_code_the_domain_produces_is_answered_by_some_operation() -> None:
    answered = {error.code for op in OPERATIONS for error in op.answers()}
    missing = sorted(set(_produced()) - answered - set(NOT_ANSWERED))
    assert not missing, f"codes no operation declares: {missing}"
    assert not set(NOT_ANSWERED) & answered, "a code listed as never answered is declared"


def _raised_by(module: ModuleType, function: str) -> set[type[LoyaltyError]]:
    """The domain errors a blueprint's handler raises itself or through the module's own helpers."""
    tree = ast.parse(inspect.getsource(module))
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    raised: set[type[LoyaltyError]] = set()
    seen: set[str] = set()
    pending = [function]
    while pending:
        name = pending.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        for built in _names_built(functions[name]):
            value = getattr(module, built, None)
            if isinstance(value, type) and issubclass(value, LoyaltyError):
                raised.add(value)
            elif built in functions:
                pending.append(built)
    return raised


def _module_of(op: Operation) -> ModuleType:
    modules = [module for module in app.API_BLUEPRINTS if hasattr(module, op.operation_id)]
    assert len(modules) == 1, f"{op.operation_id}: defined in {modules}"
    return modules[0]


def test_what_a_handler_raises_itself_is_declared() -> None:
    problems = []
    for op in OPERATIONS:
        answers = op.answers()
        for error in _raised_by(_module_of(op), op.operation_id):
            if not any(issubclass(error, answered) and error.code == answered.code for answered in answers):
                problems.append(f"{op.operation_id} raises {error.__name__} ({error.code}) without declaring it")
    assert not problems, "\n".join(problems)


def test_the_document_lists_exactly_each_operations_codes_under_their_status() -> None:
    paths = openapi_document()["paths"]
    for op in OPERATIONS:
        responses = paths["/v1" + op.path][op.method.lower()]["responses"]
        expected: dict[str, list[str]] = {"500": ["internal_error"]}
        for error in op.answers():
            expected.setdefault(str(status_for(error)), []).append(error.code)
        documented = {status: r["x-error-codes"] for status, r in responses.items() if int(status) >= 400}
        assert documented == expected, op.operation_id
        for status, codes in documented.items():
            response = responses[status]
            examples = response["content"]["application/json"]["examples"]
            assert list(examples) == codes, (op.operation_id, status)
            assert all(f"`{code}`" in response["description"] for code in codes), (op.operation_id, status)
