"""The Lambda entry module must not build AWS clients or read settings when imported."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_builds_no_aws_client_and_reads_no_settings() -> None:
    probe = textwrap.dedent(
        """
        import botocore.session
        def refuse(*args, **kwargs):
            raise SystemExit("an AWS client was created at import time")
        botocore.session.Session.create_client = refuse

        import app
        from chalicelib.settings import get_settings
        from chalicelib.services import platform
        assert get_settings.cache_info().currsize == 0, "settings were read at import"
        assert platform.cache_info().currsize == 0, "services were built at import"
        assert len(app.app.routes) >= 10
        print("clean")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1"},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip().endswith("clean")


def test_importing_the_app_registers_routes_and_imports_no_schema_presenter_or_document() -> None:
    # Given a fresh interpreter, when the app is imported: the routes are there, and the
    # pydantic schemas, the presenters and the OpenAPI document wait for their first use
    probe = (
        "import sys, app; "
        "print(len(app.app.routes), sorted(m for m in sys.modules if m.startswith("
        "('chalicelib.api.schemas', 'chalicelib.api.presenters', 'chalicelib.api.openapi'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    routes, loaded = result.stdout.strip().split(" ", 1)
    assert int(routes) >= 10 and loaded == "[]", result.stdout


#: What a route's declaration names (its scope, the errors it answers, a job's name): all the
#: domain an ``import app`` loads. The rest is imported by the handler that uses it.
DECLARATION_VOCABULARY = {
    "chalicelib.domain",
    "chalicelib.domain.audit",
    "chalicelib.domain.clock",
    "chalicelib.domain.errors",
    "chalicelib.domain.ids",
    "chalicelib.domain.jobs",
    "chalicelib.domain.scopes",
}


def test_importing_the_app_loads_only_the_domain_its_declarations_name_and_no_persistence() -> None:
    probe = (
        "import json, sys, app; "
        "print(json.dumps([m for m in sys.modules if m.startswith(('chalicelib.domain', 'chalicelib.persistence'))]))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    assert loaded <= DECLARATION_VOCABULARY, sorted(loaded - DECLARATION_VOCABULARY)
    assert "chalicelib.domain.scopes" in loaded


def test_every_lazily_named_model_resolves() -> None:
    import app  # noqa: F401  (registers every operation)
    from chalicelib.api.routing import OPERATIONS

    for op in OPERATIONS:
        for model in (op.body, op.query, op.response):
            if model is not None:
                assert model.load().__name__ == model.name, (op.operation_id, model)


DEVELOPER_TOOLS = ("devtools", "devtools.cli", "devtools.bulk_client", "devtools.devserver")


def test_cli_tools_are_not_imported_by_the_app() -> None:
    watched = ("typer", "rich", "moto", "requests", *DEVELOPER_TOOLS)
    probe = f"import sys, app; print(sorted(m for m in {watched!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _imported_modules(source: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_the_deployed_code_never_imports_the_developer_tools() -> None:
    """Anywhere in the module, function bodies included: a late import would fail in Lambda,
    whose bundle holds app.py and chalicelib/ only."""
    sources = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    assert len(sources) > 20
    offenders = {
        str(source.relative_to(ROOT)): sorted(m for m in _imported_modules(source) if m.split(".")[0] == "devtools")
        for source in sources
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_importing_the_app_loads_no_library_or_feature_a_route_does_not_need() -> None:
    # Given a fresh interpreter, when the app is imported: pydantic, pynamodb and python-ulid
    # wait for the first request, and so do the persistence layer and the features' services
    # (a request loads the ones its route uses, e.g. an earn never loads the Shopify intake)
    probe = (
        "import sys, app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pynamodb', 'ulid') "
        "or m.startswith(('chalicelib.persistence', 'chalicelib.integrations.http', 'chalicelib.domain.shopify', "
        "'chalicelib.domain.webhooks', 'chalicelib.domain.imports', 'chalicelib.domain.exports', "
        "'chalicelib.domain.commerce', 'chalicelib.domain.tiers', 'chalicelib.domain.ledger'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
