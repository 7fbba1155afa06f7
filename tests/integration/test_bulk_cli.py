"""``python -m devtools.cli import members`` and ``export members|ledger``, end to end on both
emulators: the CLI's HTTP calls go through chalice.test.Client, and the imports' job unit
runs between its polls (as the local schedule or the jobs queue would)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chalicelib.domain import imports as import_domain
from chalicelib.jobs.imports import resume_all
from chalicelib.services import platform, reset_platform
from devtools import cli as cli_module
from devtools.bulk_client import Client, HttpReply, split
from tests.support.http import Api


class ChaliceTransport:
    """The CLI's transport over chalice.test.Client; every look at an import first lets the
    job unit land a chunk of each open import (a budget of 0 s: one chunk per run)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.polls = 0

    def __call__(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None) -> HttpReply:
        if method == "GET" and path.startswith("/v1/imports/imp_") and "/errors" not in path:
            self.polls += 1
            resume_all(in_process=True)
        response = getattr(self.api.client.http, method.lower())(path, headers=headers, body=body or b"")
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        return HttpReply(response.status_code, {k.lower(): v for k, v in response.headers.items()}, text)


@pytest.fixture
def run_cli(api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LOYALTY_IMPORT_TIME_BUDGET_SECONDS", "0")
    monkeypatch.setattr(import_domain, "CHUNK_ROWS", 3)
    reset_platform()
    platform()
    transport = ChaliceTransport(api)
    monkeypatch.setattr(cli_module, "_client", lambda url, key: Client(transport, key))

    def run(*args: str) -> Any:
        result = CliRunner().invoke(cli_module.cli, [*args, "--key", admin_key], catch_exceptions=False)
        result.transport = transport
        return result

    return run


def test_the_cli_imports_a_file_in_parts_and_reports_rows_as_the_file_numbers_them(
    run_cli: Any, api: Api, admin_key: str, tmp_path: Path
) -> None:
    # Given a file of 12 members, one with a bad email (file row 9, after a blank line), sent in parts
    lines = ["external_id,email,points"] + [f"cli-{n},cli{n}@example.com,{n * 10}" for n in range(1, 7)]
    lines += ["", "cli-7,not-an-email,70"] + [f"cli-{n},,{n * 10}" for n in range(8, 13)]
    source = tmp_path / "members.csv"
    source.write_text("\n".join(lines) + "\n")
    assert len(split(source.read_bytes(), part_bytes=150)) >= 2
    errors_out = tmp_path / "errors.csv"

    # When the CLI imports it
    result = run_cli(
        "import", "members", str(source), "--part-bytes", "150", "--poll", "0", "--errors-out", str(errors_out)
    )

    # Then it followed the imports to their end and reports the failed row with its row in the file
    assert result.exit_code == 1, result.output
    assert "11 imported, 0 skipped (already members), 1 failed of 12 rows" in result.output, result.output
    assert "row 9 (cli-7): failed invalid_email" in result.output, result.output
    assert result.transport.polls >= 3  # progress was followed chunk by chunk
    with errors_out.open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["row"], row["external_id"], row["code"]) == ("9", "cli-7", "invalid_email")
    # and every other member landed with its balance
    for n in [*range(1, 7), *range(8, 13)]:
        found = api.call("GET", f"/v1/members?external_id=cli-{n}", key=admin_key).body["data"]
        assert len(found) == 1 and api.balance(admin_key, found[0]["id"])["available"] == n * 10

    # When the same file is imported again, Then every valid row is skipped (the bad one fails again)
    again = run_cli("import", "members", str(source), "--poll", "0")
    assert again.exit_code == 1 and "0 imported, 11 skipped (already members), 1 failed" in again.output


def test_the_cli_refuses_a_bad_file_with_the_reasons(run_cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("id,points\n1,2\n")
    result = run_cli("import", "members", str(source))
    assert result.exit_code == 2, result.output
    assert "refused: 400 invalid_request" in result.output and "external_id column is required" in result.output


def test_the_cli_exports_every_page_into_one_csv(run_cli: Any, api: Api, admin_key: str, tmp_path: Path) -> None:
    for n in range(5):
        member = api.enrol(admin_key, external_id=f"exp-{n}")
        assert api.earn(admin_key, member, f"exp-{n}", points=n + 1).status == 201
    members_out, ledger_out = tmp_path / "members.csv", tmp_path / "ledger.csv"

    members = run_cli("export", "members", "--out", str(members_out), "--page-size", "2")
    assert members.exit_code == 0 and "5 rows written" in members.output, members.output
    with members_out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["external_id"] for r in rows) == [f"exp-{n}" for n in range(5)]
    assert sorted(int(r["available"]) for r in rows) == [1, 2, 3, 4, 5]
    assert members_out.read_text().count("member_id,external_id") == 1  # the header once

    # the ledger of a period long past holds nothing; the header alone
    ledger = run_cli(
        "export", "ledger", "--out", str(ledger_out), "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z"
    )
    assert ledger.exit_code == 0 and "0 rows written" in ledger.output, ledger.output
    assert ledger_out.read_text().startswith("transaction_id,created_at")
    refused = run_cli(
        "export", "ledger", "--out", str(ledger_out), "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"
    )
    assert refused.exit_code == 2 and "invalid_request" in refused.output
