"""The generated reference names every error code the code can answer with and every event
type it can emit. The codes are found here independently of the generator: by reading the
source (``code = "..."`` on error classes, ``code="..."`` passed to an error), not by importing
the classes the generator walks."""

from __future__ import annotations

import ast
from pathlib import Path

from devtools import reference

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(path for path in (ROOT / "chalicelib").rglob("*.py") if "__pycache__" not in path.parts)


def _error_classes(tree: ast.Module) -> list[ast.ClassDef]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def codes_in_source() -> set[str]:
    """Every error code the code states: class attributes ``code = "..."`` of public classes, and
    ``code="..."`` keyword arguments, plus the 500 the API answers for a bug."""
    codes = {"internal_error"}
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        for cls in _error_classes(tree):
            if cls.name.startswith("_"):
                continue  # private: caught before it reaches a caller
            for stmt in cls.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "code" for t in stmt.targets)
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                ):
                    codes.add(stmt.value.value)
        for call in ast.walk(tree):
            if isinstance(call, ast.Call):
                for keyword in call.keywords:
                    if (
                        keyword.arg == "code"
                        and isinstance(keyword.value, ast.Constant)
                        and isinstance(keyword.value.value, str)
                    ):
                        codes.add(keyword.value.value)
    return codes


def event_types_in_source() -> set[str]:
    """The values of ``EventType`` members, read from the enum's source."""
    tree = ast.parse((ROOT / "chalicelib" / "domain" / "events.py").read_text())
    enum = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "EventType")
    return {
        stmt.value.value
        for stmt in enum.body
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
    }


def test_the_source_scan_finds_codes():
    # Given the source, When it is scanned, Then the well-known codes are among what it finds
    codes = codes_in_source()
    assert {"insufficient_points", "idempotency_key_reused", "card_code_taken", "retry_later"} <= codes


def test_every_error_code_is_in_the_error_reference():
    # Given the codes the source states, When the error reference is generated
    page = reference.errors_page()
    # Then each has its row
    missing = sorted(code for code in codes_in_source() if f"`{code}`" not in page)
    assert missing == [], f"error codes missing from docs/reference/errors.md: {missing}"


def test_every_event_type_is_in_the_event_reference():
    page = reference.events_page()
    missing = sorted(event for event in event_types_in_source() if f"| `{event}` |" not in page)
    assert missing == [], f"event types missing from docs/reference/events.md: {missing}"


def test_every_event_type_says_what_its_data_holds():
    # The table's data column is never empty: an example or the keys found in the code
    page = reference.events_page()
    rows = [line for line in page.splitlines() if line.startswith("| `") and "." in line.split("|")[1]]
    assert rows
    assert [row for row in rows if row.rstrip().endswith("| - |")] == []


def test_every_job_is_in_the_jobs_reference_with_what_it_counts():
    from chalicelib.domain.jobs import JobName

    page = reference.jobs_page()
    for job in JobName:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{job}` |")), None)
        assert row is not None, f"job {job} missing from docs/reference/jobs.md"
        assert not row.rstrip().endswith("| - |"), f"job {job}: no counts found"


def test_every_setting_is_in_the_configuration_reference():
    from chalicelib.settings import Settings

    page = reference.configuration_page()
    for name in Settings.model_fields:
        assert f"LOYALTY_{name.upper()}" in page or name in {"aws_region", "tracing"}


def test_every_operation_is_in_the_api_reference():
    document = reference.openapi()
    page = reference.api_page(document)
    for path, methods in document["paths"].items():
        for method in methods:
            assert f"`{method.upper()} {path}`" in page
