"""The Lambda bundle as `chalice package` builds it (offline, through the stand-in for
Chalice's pip step), that stand-in itself, and the stage settings: no synthesis."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.api import console, reference
from infra.loyalty_infra import packaging
from infra.loyalty_infra.sam import sqs_queue_name
from infra.loyalty_infra.stages import load_stage
from tests.infra.conftest import ROOT, offline_environment
from tests.support.api_docs import ensure_api_docs_assets
from tests.support.console_assets import ensure_console_assets

GLIBC_311 = (2, 26)
#: What Chalice puts in the bundle from the project directory (besides the dependencies).
SHIPPED = {"app.py", "chalicelib"}
DEVELOPER_TOOLS = ("cli.py", "bulk_client.py", "devserver.py")
#: The `chalice` command of this interpreter's environment.
CHALICE = (sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())")
#: Not project sources: environments, caches, build output (Chalice's own cache included).
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", ".ruff_cache",
    ".mypy_cache", ".local", "cdk.out", "chalice.out", "deployments",
)  # fmt: skip


def test_chalice_package_ships_the_app_and_leaves_out_the_developer_tools(tmp_path: Path) -> None:
    """`chalice package` on a copy of the project, with the developer tools, tests, benchmarks
    and infrastructure beside the app: the deployment zip holds app.py, every chalicelib
    module and the runtime dependencies, and nothing else of the project. The app then
    imports from the unzipped bundle alone, without any site-packages. The API reference's
    and the console's assets (copied into chalicelib/static/ by the build step) are in it, and
    so are the console's own files; the rest of their npm packages is not."""
    ensure_api_docs_assets()  # what `make synth` and `make deploy` do first (make install)
    ensure_console_assets()
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=_NOT_SOURCES)
    for present in ("devtools/__init__.py", *(f"devtools/{tool}" for tool in DEVELOPER_TOOLS), "tests", "bench"):
        assert (project / present).exists(), present  # what the bundle must leave out is there to leave out
    # Offline: Chalice finds its dependency step done (packaging.py), as in `make synth`.
    if packaging.prebuild_from_environment(project) is None:
        pytest.skip(f"{sys.platform}/{sys.version_info[:2]} cannot stand in for Lambda: Chalice would download wheels")
    out = tmp_path / "out"
    result = subprocess.run(
        [*CHALICE, "--project-dir", str(project), "package", "--stage", "dev", str(out)],
        cwd=tmp_path,
        env={**offline_environment(), "AWS_DEFAULT_REGION": "eu-west-1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Reusing existing deployment package" in output  # no pip download
    assert (out / "sam.json").is_file()

    with zipfile.ZipFile(out / "deployment.zip") as bundle:
        names = set(bundle.namelist())
        bundle.extractall(tmp_path / "bundle")
    top_level = {name.split("/")[0] for name in names}
    assert top_level & {entry.name for entry in project.iterdir()} == SHIPPED
    assert {"app.py", "chalice/app.py", "chalicelib/__init__.py", "chalicelib/services.py"} <= names
    library = project / "chalicelib"
    sources = {f"chalicelib/{path.relative_to(library).as_posix()}" for path in library.rglob("*.py")}
    assert {name for name in names if name.startswith("chalicelib/") and name.endswith(".py")} == sources
    assert not top_level & {"devtools", "tests", "bench", "infra", "vendor"}
    from_project = [name for name in names if name.split("/")[0] in SHIPPED]
    assert not [name for name in from_project if name.rsplit("/", 1)[-1] in DEVELOPER_TOOLS]
    assert not [name for name in names if name.rsplit("/", 1)[-1] in {"bulk_client.py", "devserver.py"}]
    static = {name for name in names if name.startswith("chalicelib/static/")}
    assert static == {f"chalicelib/static/swagger-ui/{name}" for name in reference.COPIED_FILES} | {
        f"chalicelib/static/uplot/{name}" for name in console.COPIED_FILES
    }
    # The brand console ships with the API that serves it
    assert {f"chalicelib/console/{path.name}" for path in console.SOURCE_DIR.iterdir()} <= names
    assert not [name for name in names if "node_modules" in name or "swagger-ui-dist" in name]

    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import app; "
        "assert not [p for p in sys.path if 'site-packages' in p], sys.path; "
        "print(app.__file__, len(app.app.routes))"
    )
    imported = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(tmp_path / "bundle")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    module, routes = imported.stdout.split()
    assert Path(module) == tmp_path / "bundle" / "app.py"
    assert int(routes) >= 10


@pytest.mark.parametrize(
    ("tag", "fits"),
    [
        ("py3-none-any", True),
        ("py2-none-any", False),
        ("cp311-cp311-manylinux2014_x86_64", True),
        ("cp311-cp311-manylinux_2_17_x86_64", True),
        ("cp311-abi3-manylinux_2_17_x86_64", True),
        ("cp311-cp311-manylinux_2_28_x86_64", False),  # newer glibc than Lambda's python3.11
        ("cp311-cp311-manylinux2014_aarch64", False),
        ("cp312-cp312-manylinux2014_x86_64", False),
        ("cp311-cp311-macosx_11_0_arm64", False),
        ("cp311-cp311-win_amd64", False),
        ("cp311-cp311-linux_x86_64", False),  # built here: no promise it loads on Amazon Linux
    ],
)
def test_wheel_tags_that_load_on_lambda_python311(tag: str, fits: bool) -> None:
    assert packaging._fits_lambda(tag, "cp311", "x86_64", GLIBC_311) is fits


def test_runtime_closure_is_the_pinned_requirements_and_their_dependencies() -> None:
    root = Path(__file__).resolve().parents[2]
    closure = packaging._closure(packaging._pinned_requirements(root / "requirements.txt"))
    names = {d.metadata["Name"].lower().replace("_", "-") for d in closure}
    assert {"pydantic", "pydantic-core", "pynamodb", "botocore", "aws-lambda-powertools", "jmespath"} <= names
    assert not names & {"chalice", "pytest", "moto", "aws-cdk-lib", "pip", "setuptools"}


def test_requirements_with_options_are_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--index-url https://example.invalid/simple\npydantic==2.14.3\n")
    with pytest.raises(packaging.NotPackageable):
        packaging._pinned_requirements(requirements)


def test_a_version_other_than_the_pin_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic==1.0.0\n")
    with pytest.raises(packaging.NotPackageable, match="pydantic"):
        packaging._closure(packaging._pinned_requirements(requirements))


def test_queue_name_from_chalice_event_source() -> None:
    sub = {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:loyalty-jobs"}
    assert sqs_queue_name(sub) == "loyalty-jobs"
    with pytest.raises(ValueError):
        sqs_queue_name({"Fn::GetAtt": ["Queue", "Arn"]})


def test_stage_settings_come_from_the_chalice_config(tmp_path: Path) -> None:
    prod = load_stage("prod")
    assert (prod.table_prefix, prod.control_table_name, prod.tenant_table_pattern) == (
        "loyalty-prod",
        "loyalty-prod-control",
        "loyalty-prod-tenant-*",
    )
    assert prod.operator_key_parameter == "/loyalty/prod/operator-key-sha256"
    with pytest.raises(ValueError, match="unknown stage"):
        load_stage("local")
    config = {"stages": {"dev": {"environment_variables": {"LOYALTY_TABLE_PREFIX": "Loyalty*"}}}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="LOYALTY_TABLE_PREFIX"):
        load_stage("dev", path)
