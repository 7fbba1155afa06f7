"""The Lambda deployment package, built offline from the packages already installed here.

``chalice.cdk.Chalice`` runs ``chalice package``, whose dependency step calls
``pip download`` for ``requirements.txt`` (manylinux wheels for the Lambda runtime):
that needs the network, and CI checks the synthesis offline. Chalice reuses a package it
already built, cached as ``.chalice/deployments/<hash>-<runtime>.zip`` where the hash
covers ``requirements.txt``, ``app.py``, ``chalicelib/``, ``vendor/`` and Chalice's own
runtime files. So before the construct runs we build that very file with Chalice's own
``LambdaDeploymentPackager`` (app files, ``vendor/`` and zip layout are Chalice's), giving
it a dependency builder that copies the runtime closure of ``requirements.txt`` from this
virtualenv instead of downloading it. Chalice then says "Reusing existing deployment
package" and never calls pip.

This is only done when it is sound: the interpreter is CPython of the runtime's version
on Linux of the function's architecture, every pinned requirement is installed at exactly
its pinned version, and every distribution of the closure was installed from a wheel
that Lambda can load (pure Python, or manylinux no newer than the runtime's glibc, the
same test Chalice applies to downloaded wheels). Otherwise :func:`prebuild_from_environment`
returns ``None`` and Chalice's normal pip path runs (which needs the network): e.g. on a
Mac, whose compiled wheels would not load on Lambda.

The zip is therefore made of exactly the package versions the test suite ran against.
"""

from __future__ import annotations

import compileall
import importlib.metadata as metadata
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: glibc of the Lambda Python runtimes (Amazon Linux 2 up to 3.11, Amazon Linux 2023 after).
_RUNTIME_GLIBC = {"3.10": (2, 26), "3.11": (2, 26), "3.12": (2, 34), "3.13": (2, 34), "3.14": (2, 34)}
_MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
#: Never shipped: Chalice adds its own runtime module; pip's tooling is not needed at run time.
_NEVER_SHIPPED = {"chalice", "pip", "setuptools", "wheel"}


class NotPackageable(Exception):
    """This environment cannot stand in for Lambda's: let Chalice download wheels instead."""


@dataclass(frozen=True)
class Prebuilt:
    path: Path
    distributions: tuple[str, ...]
    reused: bool


def lambda_python_version() -> str:
    """The runtime Chalice picks: the running interpreter's (``Config.lambda_python_version``)."""
    return f"python{sys.version_info[0]}.{sys.version_info[1]}"


def _pinned_requirements(requirements_file: Path) -> list[Requirement]:
    requirements = []
    for raw in requirements_file.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise NotPackageable(f"{requirements_file.name}: options are not supported here ({line!r})")
        requirements.append(Requirement(line))
    return requirements


def _wheel_tags(distribution: metadata.Distribution) -> list[str]:
    wheel = distribution.read_text("WHEEL")
    if wheel is None:
        raise NotPackageable(f"{distribution.metadata['Name']} was not installed from a wheel")
    return [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]


def _platform_fits(platform_tag: str, machine: str, glibc: tuple[int, int]) -> bool:
    if platform_tag == "any":
        return True
    match = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(.+)", platform_tag)
    if match:
        return match.group(2) == machine and _LEGACY_MANYLINUX[match.group(1)] <= glibc
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(.+)", platform_tag)
    if match:
        return match.group(3) == machine and (int(match.group(1)), int(match.group(2))) <= glibc
    return False


def _fits_lambda(tag: str, abi: str, machine: str, glibc: tuple[int, int]) -> bool:
    interpreter, tag_abi, platform_tag = tag.split("-")
    if not _platform_fits(platform_tag, machine, glibc):
        return False
    if tag_abi == "none":
        return interpreter.startswith(("py3", "cp3"))
    return tag_abi in {abi, "abi3"}


def _closure(requirements: Iterable[Requirement]) -> list[metadata.Distribution]:
    """Installed distributions needed at run time by ``requirements`` (markers evaluated for
    this interpreter, which :func:`_check_interpreter` has matched to the runtime)."""
    environment = default_environment()
    found: dict[str, metadata.Distribution] = {}
    pending = [(requirement, "") for requirement in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name in _NEVER_SHIPPED:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError as missing:
            raise NotPackageable(f"{requirement.name} is not installed in {sys.prefix}") from missing
        if not requirement.specifier.contains(distribution.version, prereleases=True):
            raise NotPackageable(f"{requirement.name} {distribution.version} installed, {requirement} required")
        extras = sorted(requirement.extras)
        if name in found and not extras:
            continue
        found[name] = distribution
        for dependency in distribution.requires or []:
            parsed = Requirement(dependency)
            for wanted in extras or [""]:
                pending.append((parsed, wanted))
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _check_interpreter(python_version: str, architecture: str) -> tuple[str, str, tuple[int, int]]:
    runtime = python_version.removeprefix("python")
    if runtime not in _RUNTIME_GLIBC:
        raise NotPackageable(f"no known Lambda runtime for {python_version}")
    machine = _MACHINES[architecture]
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if sys.implementation.name != "cpython" or here != runtime:
        raise NotPackageable(f"interpreter is {sys.implementation.name} {here}, the runtime {python_version}")
    if sys.platform != "linux" or platform.machine() != machine:
        raise NotPackageable(f"platform is {sys.platform}/{platform.machine()}, the runtime linux/{machine}")
    return "cp" + runtime.replace(".", ""), machine, _RUNTIME_GLIBC[runtime]


class InstalledDependencyBuilder:
    """Stands in for ``chalice.deploy.packager.DependencyBuilder``: same entry point, but it
    copies installed distributions instead of downloading wheels."""

    def __init__(self, architecture: str = "x86_64") -> None:
        self.architecture = architecture
        self.distributions: tuple[str, ...] = ()

    def build_site_packages(self, abi: str, requirements_filepath: str, target_directory: str) -> None:
        _, machine, glibc = _check_interpreter(f"python{abi[2]}.{abi[3:]}", self.architecture)
        closure = _closure(_pinned_requirements(Path(requirements_filepath)))
        for distribution in closure:
            tags = _wheel_tags(distribution)
            if not any(_fits_lambda(tag, abi, machine, glibc) for tag in tags):
                raise NotPackageable(f"{distribution.metadata['Name']} wheel {tags} does not run on Lambda")
        target = Path(target_directory)
        for distribution in closure:
            root = Path(distribution.locate_file(""))
            for entry in distribution.files or []:
                parts = Path(entry).parts
                if parts[0] == ".." or "__pycache__" in parts:  # console scripts; bytecode of this machine
                    continue
                destination = target / entry
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / entry, destination)
        self.distributions = tuple(f"{d.metadata['Name']}=={d.version}" for d in closure)


def prebuild_from_environment(project_dir: Path, architecture: str = "x86_64") -> Prebuilt | None:
    """Put Chalice's deployment package for ``project_dir`` in its cache, built from this
    environment; ``None`` (and nothing written) when this environment cannot stand in for
    the Lambda runtime. Safe to run concurrently: the file appears atomically."""
    from chalice.deploy.packager import LambdaDeploymentPackager
    from chalice.utils import OSUtils

    python_version = lambda_python_version()
    try:
        _check_interpreter(python_version, architecture)
    except NotPackageable:
        return None
    _settle_bytecode(project_dir)
    builder = InstalledDependencyBuilder(architecture)
    packager = LambdaDeploymentPackager(
        osutils=OSUtils(), dependency_builder=builder, ui=_Silent(), architecture=architecture
    )
    final = Path(packager.deployment_package_filename(str(project_dir), python_version))
    if final.exists():
        return Prebuilt(final, (), reused=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=".partial-", suffix=".zip", dir=final.parent)
    os.close(handle)
    os.unlink(partial)

    class _ToTemporaryFile(LambdaDeploymentPackager):
        def deployment_package_filename(self, project_dir: str, python_version: str) -> str:
            return partial

    try:
        _ToTemporaryFile(
            osutils=OSUtils(), dependency_builder=builder, ui=_Silent(), architecture=architecture
        ).create_deployment_package(str(project_dir), python_version)
        os.replace(partial, final)
    except NotPackageable:
        return None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    _prune(final.parent, keep=final, python_version=python_version)
    return Prebuilt(final, builder.distributions, reused=False)


def _prune(deployments: Path, keep: Path, python_version: str, newest: int = 3) -> None:
    """Each code change makes a new ~20 MB package: keep the few newest (Chalice's cache
    never shrinks by itself)."""
    pattern = re.compile(rf"[0-9a-f]{{32}}-{re.escape(python_version)}\.zip")
    packages = sorted(
        (path for path in deployments.iterdir() if pattern.fullmatch(path.name) and path != keep),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for stale in packages[newest - 1 :]:
        stale.unlink(missing_ok=True)


def _settle_bytecode(project_dir: Path) -> None:
    """Chalice's cache key covers every file under ``chalicelib/``, ``__pycache__/*.pyc``
    included, and importing the app (Chalice does, right after this) writes the missing
    ones: the key would move between this build and Chalice's lookup, and Chalice would
    fall back to pip. Compiling what is missing or stale first settles them: an import
    never rewrites a current ``.pyc``, whichever process (a test worker, say) does it."""
    library = project_dir / "chalicelib"
    if library.is_dir():
        compileall.compile_dir(library, quiet=2)


class _Silent:
    """Chalice's UI, minus the progress lines (synthesis output stays a template)."""

    def write(self, *_args: object, **_kwargs: object) -> None:
        return None
