"""The ``loyalty`` command line end to end, over real HTTP: a `chalice local` server on moto's
server (as `make run` serves it), the CLI run in process by typer's CliRunner.

An operator creates a tenant, a profile holds its key, the example program is applied (twice:
the second run changes nothing), changed, exported and applied back; a member earns and reads
a balance; and every failure is one line on stderr with a non-zero exit code."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from devtools.cli import cli
from tests.support.emulators import free_port
from tests.support.http import OPERATOR_KEY
from tests.support.live_server import chalice_local

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "program.yaml"


@pytest.fixture(scope="module")
def base_url(moto_server_endpoint: str) -> Iterator[str]:
    with chalice_local(moto_server_endpoint, prefix_letter="l") as url:
        yield url


@pytest.fixture
def loyalty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run the CLI with a profiles file of its own and no connection settings in the environment."""
    monkeypatch.setenv("LOYALTY_PROFILES_FILE", str(tmp_path / "profiles.toml"))
    for name in ("LOYALTY_API_URL", "LOYALTY_API_KEY", "LOYALTY_PROFILE"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, stdin: str | None = None) -> Any:
        return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)

    return run


@pytest.fixture
def tenant(base_url: str, loyalty: Any) -> str:
    """A new tenant, its admin key saved as the current profile; returns its id."""
    tenant_id = f"cli{uuid.uuid4().hex[:8]}"
    created = loyalty(
        "tenants", "create", tenant_id, "--name", "CLI Coffee", "--currency", "EUR", "--timezone",
        "Europe/Helsinki", "--api", base_url, "--key", OPERATOR_KEY, "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    secret = json.loads(created.stdout)["api_key"]["secret"]
    saved = loyalty("profile", "set", tenant_id, "--api", base_url, "--key", secret)
    assert saved.exit_code == 0 and "(current)" in saved.stdout, saved.output
    return tenant_id


def assert_one_line_error(result: Any, *fragments: str, exit_code: int = 1) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    line = result.stderr.rstrip("\n")
    assert "\n" not in line and line.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in line, line


def test_the_example_program_applied_twice_changes_nothing_the_second_time(
    loyalty: Any, tenant: str, tmp_path: Path
) -> None:
    # Given a new tenant; When --diff is asked first, Then it lists the changes and writes nothing
    preview = loyalty("program", "apply", str(EXAMPLE), "--diff")
    assert preview.exit_code == 0, preview.output
    assert '+ rule "Gold weekends" (order_multiplier)' in preview.stdout
    assert '+ reward "EUR 5 voucher" (fixed_discount)' in preview.stdout
    assert "(nothing written: --diff)" in preview.stdout
    assert "+ rule" in loyalty("program", "apply", str(EXAMPLE), "--diff").stdout  # still nothing written

    # When the example is applied, Then every section is written
    applied = loyalty("program", "apply", str(EXAMPLE))
    assert applied.exit_code == 0, applied.output
    assert "applied 8 change(s)" in applied.stdout, applied.stdout

    # When it is applied again, Then nothing changes
    again = loyalty("program", "apply", str(EXAMPLE))
    assert (again.exit_code, again.stdout) == (0, "no changes\n"), again.output

    # When the file raises the coffee's cost and makes the review rule reward a follow instead
    text = EXAMPLE.read_text().replace("points_cost: 30", "points_cost: 40")
    text = text.replace(
        "  - name: Review\n    kind: activity\n    activity: review\n",
        "  - name: Review\n    kind: activity\n    activity: social_follow\n",
    )
    changed = tmp_path / "changed.yaml"
    changed.write_text(text)
    diff = loyalty("program", "apply", str(changed), "--diff")
    # Then the diff says what changes, field by field
    assert '~ reward "Coffee": points_cost: 30 -> 40' in diff.stdout, diff.stdout
    assert '- rule "Review" ends' in diff.stdout and 'activity: "review" -> "social_follow"' in diff.stdout, diff.stdout
    assert loyalty("program", "apply", str(changed)).exit_code == 0
    assert loyalty("program", "apply", str(changed)).stdout == "no changes\n"

    # When the program is exported, Then the export applies back with no changes, and reads as the file
    exported = loyalty("program", "export")
    assert exported.exit_code == 0, exported.output
    back = tmp_path / "exported.yaml"
    back.write_text(exported.stdout)
    assert loyalty("program", "apply", str(back)).stdout == "no changes\n"
    assert loyalty("program", "apply", "-", stdin=exported.stdout).stdout == "no changes\n"
    assert "points_cost: 40" in exported.stdout and "activity: social_follow" in exported.stdout


def test_a_member_earns_once_per_idempotency_key_and_reads_the_balance(loyalty: Any, tenant: str) -> None:
    # Given the example program (10 points per euro) and a member
    assert loyalty("program", "apply", str(EXAMPLE)).exit_code == 0
    created = loyalty("members", "create", "--external-id", "cust-1", "--name", "Ann", "--json")
    assert created.exit_code == 0, created.output
    member_id = json.loads(created.stdout)["id"]
    found = loyalty("members", "find", "cust-1")
    assert found.exit_code == 0 and member_id in found.stdout

    # When points are earned twice with the same key, and an amount once
    first = loyalty("points", "earn", member_id, "--points", "100", "--idempotency-key", "order-1")
    replay = loyalty("points", "earn", member_id, "--points", "100", "--idempotency-key", "order-1")
    spent = loyalty("points", "earn", member_id, "--amount", "12.50")

    # Then the replay credits nothing more, the amount earns at the program's rate, and a key is printed
    assert first.exit_code == 0 and "earn +100 points" in first.stdout and "available 100" in first.stdout
    assert replay.exit_code == 0 and "available 100" in replay.stdout, replay.output
    assert spent.exit_code == 0 and "earn +125 points" in spent.stdout, spent.output
    assert "Idempotency-Key: cli-" in spent.stdout
    balance = loyalty("points", "balance", member_id)
    assert balance.exit_code == 0 and f"{member_id}: available 225, pending 0" in balance.stdout, balance.output
    assert json.loads(loyalty("points", "balance", member_id, "--json").stdout)["available"] == 225
    history = loyalty("points", "history", member_id, "--json")
    assert [entry["points"] for entry in json.loads(history.stdout)] == [125, 100]

    # When more is redeemed than is available, Then the API's refusal is one line
    refused = loyalty("points", "redeem", member_id, "--points", "1000")
    assert_one_line_error(refused, "422 insufficient_points")


def test_every_failure_is_one_line_with_a_non_zero_exit_code(
    loyalty: Any, tenant: str, base_url: str, tmp_path: Path
) -> None:
    # wrong credentials: the API's code and message
    assert_one_line_error(loyalty("members", "list", "--key", "lk_wrong"), "401 unauthorized")
    # an operator command with a tenant key
    assert_one_line_error(loyalty("tenants", "list"), "401")
    # an API that is down
    down = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(loyalty("members", "list", "--api", down), f"cannot reach the API at {down}")
    # an unknown profile
    assert_one_line_error(loyalty("members", "list", "--profile", "nope"), "no profile 'nope'", tenant)
    # unknown arguments and commands: usage errors (exit code 2)
    assert_one_line_error(loyalty("points", "earn", "mem_x", "--point", "5"), "No such option: --point", exit_code=2)
    assert_one_line_error(loyalty("members", "delete"), "No such command 'delete'", exit_code=2)
    assert_one_line_error(loyalty("points", "earn", "mem_x"), "give one of --points or --amount")
    # a program file that cannot be planned
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - {kind: milestone}\n")
    assert_one_line_error(loyalty("program", "apply", str(broken)), "rules[0]: name is required")
    # an unknown member
    assert_one_line_error(loyalty("points", "balance", "mem_unknown"), "404 not_found")
    # and no key anywhere
    (tmp_path / "profiles.toml").unlink()
    assert_one_line_error(loyalty("members", "list"), "no API key for http://127.0.0.1:8000")


def test_the_program_defaults_are_the_apis(base_url: str) -> None:
    """A field left out of the file means the API's default: the tables agree with the OpenAPI document."""
    from devtools.program_plan import REQUIRED, SCHEMAS

    schemas = requests.get(f"{base_url}/v1/openapi.json", timeout=10).json()["components"]["schemas"]
    names = {
        "settings": "ProgramRequest",
        "tiers": "TierProgramRequest",
        "rules": "RuleRequest",
        "rewards": "CreateRewardRequest",
        "plans": "PlanModel",
        "referrals": "ReferralProgramRequest",
    }
    for section, schema_name in names.items():
        schema = schemas[schema_name]
        assert set(SCHEMAS[section]) == set(schema["properties"]), section
        for name, field in SCHEMAS[section].items():
            if name in schema.get("required", []):
                assert field.default is REQUIRED, (section, name)
            elif "default" in schema["properties"][name]:
                default = schema["properties"][name]["default"]
                assert field.canonical(default) == field.canonical(field.default), (section, name)


def test_operator_and_admin_commands(loyalty: Any, tenant: str, base_url: str) -> None:
    operator = ("--api", base_url, "--key", OPERATOR_KEY)
    # an admin creates a read key (its secret shown once), lists it, revokes it: it no longer works
    created = loyalty("keys", "create", "reporting", "--scope", "read", "--json")
    assert created.exit_code == 0, created.output
    read_key = json.loads(created.stdout)
    assert read_key["scopes"] == ["read"] and read_key["secret"]
    assert loyalty("members", "list", "--key", read_key["secret"]).exit_code == 0
    assert "reporting" in loyalty("keys", "list").stdout
    assert loyalty("keys", "revoke", read_key["id"]).exit_code == 0
    assert_one_line_error(loyalty("members", "list", "--key", read_key["secret"]), "401 unauthorized")

    # the operator suspends the tenant: its keys get 403 until it is resumed
    assert "suspended" in loyalty("tenants", "suspend", tenant, *operator).stdout
    assert_one_line_error(loyalty("members", "list"), "403 tenant_suspended")
    assert "active" in loyalty("tenants", "resume", tenant, *operator).stdout
    shown = loyalty("tenants", "show", tenant, *operator)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["status"] == "active"
    assert tenant in loyalty("tenants", "list", *operator, "--json").stdout

    # jobs through the API, and webhooks (none yet)
    triggered = loyalty("jobs", "trigger", "expire-points", "--json")
    assert triggered.exit_code == 0 and json.loads(triggered.stdout)["job"] == "expire-points", triggered.output
    assert "expire-points" in loyalty("jobs", "runs").stdout
    assert loyalty("webhooks", "list").stdout == "(none)\n"
    created = loyalty("webhooks", "create", "http://127.0.0.1:9/hook", "--event", "points.earned", "--json")
    assert created.exit_code == 0, created.output
    webhook = json.loads(created.stdout)
    assert webhook["secret"] and webhook["events"] == ["points.earned"]
    assert [w["url"] for w in json.loads(loyalty("webhooks", "list", "--json").stdout)] == ["http://127.0.0.1:9/hook"]
    assert loyalty("webhooks", "deliveries", webhook["id"]).stdout == "(none)\n"
    assert_one_line_error(loyalty("webhooks", "redeliver", webhook["id"], "dlv_unknown"), "404 not_found")


RICH_PROGRAM = """
settings:
  points_per_currency_unit: "2.5"
  rounding: nearest
  expiry: {kind: fixed_period, months: 12}
  pending_days: 14
  birthday_bonus: 100
tiers:
  metric: spend
  window: {kind: calendar_year}
  grace_periods: 0
  tiers:
    - {name: silver, threshold: "250.50", multiplier: "1.5", perks: [free shipping]}
    - {name: gold, threshold: 1000, multiplier: 2, perks: [free shipping, early access]}
rules:
  - {name: Shoes x3, kind: line_multiplier, factor: "3", categories: [shoes], cap: 500, per: month}
  - {name: Big order, kind: order_bonus, points: 100, min_order_total: "99.90", starts_at: 2031-01-01T00:00:00+02:00}
  - {name: Cap, kind: earning_cap, cap: 10000, per: year}
rewards:
  - name: Ten percent
    type: percent_discount
    percent: 10
    points_cost: 800
    per_member_limit: 2
    limit_period: month
    tiers: [gold, silver]
    valid_days: 30
    description: Ten percent off one order
  - {name: Trees, type: charity_donation, cause: Plant a tree, points_cost: 100, ends_at: "2031-06-30T21:00:00Z"}
plans:
  - {plan_id: premium, name: Premium, tier: gold, join_bonus: 100}
  - {plan_id: plus, name: Plus, multiplier: "1.25", perks: [monthly gift]}
referrals:
  referrer_points: 300
  min_order_total: "20.00"
  cap: {limit: 5, per: month}
  referee_rewarded_when_capped: false
"""


def test_every_kind_of_field_applies_once_and_exports_back(loyalty: Any, tenant: str, tmp_path: Path) -> None:
    """Decimals, instants in other offsets, sets, nested objects, scheduled rules: the API's answers
    compare equal to the file, so a second run and the export's run change nothing."""
    program = tmp_path / "rich.yaml"
    program.write_text(RICH_PROGRAM)
    applied = loyalty("program", "apply", str(program))
    assert applied.exit_code == 0 and "applied 9 change(s)" in applied.stdout, applied.output
    again = loyalty("program", "apply", str(program))
    assert again.stdout == "no changes\n", again.output
    exported = loyalty("program", "export").stdout
    assert loyalty("program", "apply", "-", stdin=exported).stdout == "no changes\n", exported
    assert "threshold: '250.5'" in exported and "starts_at: '2030-12-31T22:00:00Z'" in exported, exported


def test_a_members_data_is_exported_to_a_file(loyalty: Any, tenant: str, tmp_path: Path) -> None:
    # Given a member who earned points
    created = loyalty("members", "create", "--external-id", "cust-9", "--email", "nine@example.com", "--json")
    member_id = json.loads(created.stdout)["id"]
    assert loyalty("points", "earn", member_id, "--points", "30", "--idempotency-key", "e-9").exit_code == 0

    # When the member's data is exported to a file, and printed
    target = tmp_path / "member.json"
    written = loyalty("members", "export", member_id, "--output", str(target))
    printed = loyalty("members", "export", member_id)

    # Then the file holds the whole document: profile, balance, ledger
    assert written.exit_code == 0 and str(target) in written.stdout, written.output
    document = json.loads(target.read_text())
    assert document["member"]["email"] == "nine@example.com" and document["balance"]["available"] == 30
    assert [t["idempotency_key"] for t in document["transactions"]] == ["e-9"]
    assert printed.exit_code == 0 and json.loads(printed.stdout)["member"] == document["member"]
