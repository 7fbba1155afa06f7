"""Fixtures of the model-based ledger test: the backend it drives, and the run's summary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.model.stats import SUMMARY


@pytest.fixture(params=["dynamodb-local", "moto"])
def model_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DynamoDB Local (one session-scoped JVM) or moto in-process; each example of the machine
    then gets its own table prefix, hence its own control and tenant tables."""
    if request.param == "moto":
        from moto import mock_aws

        with mock_aws():
            yield "moto"
        return
    endpoint = request.getfixturevalue("dynamodb_local_endpoint")
    if endpoint is None:
        pytest.skip("DynamoDB Local not installed and LOYALTY_SKIP_DYNAMODB_LOCAL=1")
    monkeypatch.setenv("LOYALTY_DYNAMODB_ENDPOINT", endpoint)
    yield "dynamodb-local"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Without xdist (``make soak``, or this directory alone) the figures are printed here."""
    if SUMMARY["model"]:
        terminalreporter.section("model-based ledger test")
        for line in SUMMARY["model"]:
            terminalreporter.write_line(line)
