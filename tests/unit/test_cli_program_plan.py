"""The program as code (``loyalty program apply``): the YAML file read, compared with what the
API answers, and the requests planned; no HTTP here (``devtools.program_plan`` is plain data)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.program_plan import (
    PLAN,
    REFERRALS,
    SETTINGS,
    TIERS,
    Current,
    ProgramFileError,
    canonical,
    export,
    load,
    plan,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "program.yaml").read_text()


def as_api(program: dict[str, Any]) -> Current:
    """What the API answers once ``program`` is applied: every field present, decimals in the
    API's spelling, ids, statuses and times added."""
    stamp = {"created_at": "2026-12-01T10:00:00Z"}
    settings = {**canonical(SETTINGS, program["settings"]), "updated_at": "2026-12-01T10:00:00Z"}
    settings["expiry"] = {"kind": "none", "days": None, "months": None, "period": None, "periods_after": 0}
    tiers = canonical(TIERS, program["tiers"])
    tiers["tiers"] = [{**t, "threshold": f"{t['threshold']}", "multiplier": "1.00"} for t in tiers["tiers"]]
    rules = [{**r, "id": f"rul_{n}", "status": "active", **stamp} for n, r in enumerate(program["rules"])]
    rewards = [
        {**r, "id": f"rwd_{n}", "status": "active", "issued": 0, "remaining_stock": r["stock"], **stamp}
        for n, r in enumerate(program["rewards"])
    ]
    for reward in rewards:
        if reward["amount"] is not None:
            reward["amount"] = f"{reward['amount']}.00"
    referrals = {**canonical(REFERRALS, program["referrals"]), "id": "rpv_1", "status": "active", **stamp}
    referrals["effective_from"] = "2026-12-01T10:00:00Z"
    return Current(
        settings=settings,
        tier_versions=[{**tiers, "id": "tpv_1", "status": "active", "effective_from": "2026-12-01T10:00:00Z", **stamp}],
        rules=rules,
        rewards=rewards,
        plans=[canonical(PLAN, p) for p in program["plans"]],
        referral_versions=[referrals],
    )


def test_the_example_file_reads_as_its_sections_with_the_api_defaults_filled_in() -> None:
    program = load(EXAMPLE)
    assert list(program) == ["settings", "tiers", "referrals", "rules", "rewards", "plans"]
    assert program["settings"]["points_per_currency_unit"] == "10"
    assert program["settings"]["expiry_warning_days"] == 14  # the API's default
    assert [t["threshold"] for t in program["tiers"]["tiers"]] == ["500", "2000"]
    assert [r["name"] for r in program["rules"]] == ["Gold weekends", "Free coffee every 5th purchase", "Review"]
    assert program["rewards"][0]["amount"] == "5"  # "5.00" and 5 compare equal
    assert program["referrals"]["referee_rewarded_when_capped"] is True


def test_on_an_empty_program_everything_is_created_in_dependency_order() -> None:
    # Given a tenant with nothing configured
    current = Current(settings=None)

    # When the example is planned
    steps = plan(load(EXAMPLE), current)

    # Then settings, tiers, rules, rewards and referrals are written; plans (empty both sides) are not
    assert [(s.section, s.action, s.method, s.path) for s in steps] == [
        ("settings", "set", "PUT", "/v1/program"),
        ("tiers", "set", "PUT", "/v1/program/tiers"),
        ("rules", "add", "POST", "/v1/program/rules"),
        ("rules", "add", "POST", "/v1/program/rules"),
        ("rules", "add", "POST", "/v1/program/rules"),
        ("rewards", "add", "POST", "/v1/rewards"),
        ("rewards", "add", "POST", "/v1/rewards"),
        ("referrals", "set", "PUT", "/v1/program/referrals"),
    ]
    # and the bodies say only what differs from the defaults (nulls left out, decimals as strings)
    assert steps[2].body == {
        "name": "Gold weekends",
        "kind": "order_multiplier",
        "factor": "2",
        "skus": [],
        "categories": [],
        "weekdays": ["sat", "sun"],
        "tiers": ["gold"],
        "segments": [],
    }
    voucher = steps[5].body
    assert voucher is not None and (voucher["amount"], voucher["stock"], voucher["codes"]) == ("5", 1000, "generated")


def test_the_same_program_applied_again_plans_nothing() -> None:
    program = load(EXAMPLE)
    assert plan(program, as_api(program)) == []


def test_a_changed_reward_is_updated_in_place_with_the_changed_fields_only() -> None:
    program = load(EXAMPLE)
    current = as_api(program)
    changed = load(EXAMPLE.replace("points_cost: 30", "points_cost: 40"))

    (step,) = plan(changed, current)

    assert (step.action, step.method, step.path, step.body) == (
        "update",
        "PATCH",
        "/v1/rewards/rwd_1",
        {"points_cost": 40},
    )
    assert step.describe() == '~ reward "Coffee": points_cost: 30 -> 40'


def test_a_reward_whose_type_changes_is_archived_and_created_again() -> None:
    program = load(EXAMPLE)
    changed = load(EXAMPLE.replace("type: free_product\n    sku: coffee", "type: free_shipping"))

    steps = plan(changed, as_api(program))

    assert [(s.action, s.method, s.path) for s in steps] == [
        ("archive", "POST", "/v1/rewards/rwd_1/archive"),
        ("add", "POST", "/v1/rewards"),
    ]


def test_a_changed_rule_is_ended_then_added_and_a_rule_left_out_is_ended() -> None:
    # Given the example applied
    program = load(EXAMPLE)
    current = as_api(program)
    # When the file doubles the review's points and drops the milestone
    text = EXAMPLE.replace("points: 50", "points: 100")
    text = text.replace(
        "  - name: Free coffee every 5th purchase\n    kind: milestone\n    every: 5\n    points: 30\n", ""
    )

    steps = plan(load(text), current)

    # Then both old rules end first (a replaced rule never counts twice), then the new one is added
    assert [(s.action, s.path) for s in steps] == [
        ("end", "/v1/program/rules/rul_1/end"),
        ("end", "/v1/program/rules/rul_2/end"),
        ("add", "/v1/program/rules"),
    ]
    assert steps[2].changes == ("points: 50 -> 100",)
    assert steps[0].describe() == '- rule "Free coffee every 5th purchase" ends'


def test_ended_rules_are_history_not_changes() -> None:
    program = load(EXAMPLE)
    current = as_api(program)
    ended = {
        **current.rules[0],
        "id": "rul_old",
        "name": "Summer",
        "status": "ended",
        "ends_at": "2026-09-01T00:00:00Z",
    }
    assert plan(program, Current(**{**vars(current), "rules": [ended, *current.rules]})) == []


def test_versions_compare_with_the_newest_and_ignore_effective_from_unless_the_file_gives_one() -> None:
    program = load(EXAMPLE)
    current = as_api(program)
    newer = {**current.tier_versions[0], "id": "tpv_2", "created_at": "2026-12-02T10:00:00Z", "grace_periods": 3}
    # the newest version differs from the file: a new version
    (step,) = plan({"tiers": program["tiers"]}, Current(tier_versions=[current.tier_versions[0], newer]))
    assert (step.method, step.path, step.changes) == ("PUT", "/v1/program/tiers", ("grace_periods: 3 -> 1",))
    # a tier's threshold of 2000 compares equal to "2000.000"
    spelled = {**current.tier_versions[0]}
    spelled["tiers"] = [{**t, "threshold": f"{t['threshold']}.000"} for t in spelled["tiers"]]
    assert plan({"tiers": program["tiers"]}, Current(tier_versions=[spelled])) == []


def test_plans_are_replaced_as_a_whole_when_they_differ() -> None:
    text = EXAMPLE.replace("plans: []", "plans:\n  - {plan_id: premium, name: Premium, tier: gold, join_bonus: 100}\n")
    (step,) = plan({"plans": load(text)["plans"]}, Current())
    assert (step.method, step.path) == ("PUT", "/v1/program/plans")
    assert step.body == {
        "plans": [
            {"plan_id": "premium", "name": "Premium", "tier": "gold", "multiplier": "1", "perks": [], "join_bonus": 100}
        ]
    }
    same = [canonical(PLAN, p) for p in load(text)["plans"]]
    assert plan({"plans": load(text)["plans"]}, Current(plans=same)) == []


def test_a_section_left_out_of_the_file_is_left_as_it_is() -> None:
    current = as_api(load(EXAMPLE))
    assert plan(load("settings:\n  points_per_currency_unit: 10\n  rounding: floor\n"), current) == []


def test_the_export_reads_back_as_a_file_that_plans_nothing() -> None:
    current = as_api(load(EXAMPLE))
    text = yaml.safe_dump(export(current), sort_keys=False)
    assert plan(load(text), current) == []
    exported = yaml.safe_load(text)
    assert exported["rules"][0] == {
        "name": "Gold weekends",
        "kind": "order_multiplier",
        "factor": "2",
        "weekdays": ["sat", "sun"],
        "tiers": ["gold"],
    }
    assert "expiry" not in exported["settings"] and "effective_from" not in exported["tiers"]
    assert exported["rewards"][0]["amount"] == "5.00"  # as the API spells it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("settings: [1, 2", "not valid YAML (line 1)"),
        ("- a\n- b\n", "the file must be a mapping of sections"),
        ("reward: []\n", "unknown section reward; the sections are settings, tiers, rules, rewards, plans, referrals"),
        ("rules:\n  - {kind: milestone, every: 5, points: 1}\n", "rules[0]: name is required"),
        ("rules:\n  - {name: a, kind: milestone}\n  - {name: a, kind: activity}\n", "rules[1]: two entries have"),
        (
            "tiers:\n  metric: points\n  window: {kind: calendar_year}\n  tiers: [{name: gold}]\n",
            "tiers.tiers[0]: threshold is required",
        ),
    ],
)
def test_a_file_that_cannot_be_planned_says_why_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ProgramFileError) as raised:
        load(text)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_unknown_fields_are_sent_as_written_and_compared_by_name() -> None:
    program = load("settings:\n  points_per_currency_unit: 10\n  rounding: floor\n  future_field: 3\n")
    (step,) = plan(program, Current(settings={"points_per_currency_unit": "10", "rounding": "floor"}))
    assert step.body is not None and step.body["future_field"] == 3 and step.changes == ("future_field: null -> 3",)


def test_the_command_line_never_imports_the_application() -> None:
    """It knows the API by its routes and bodies only (devtools/cli.py's local jobs aside)."""
    sources = [ROOT / "devtools" / "profiles.py", ROOT / "devtools" / "program_plan.py"]
    sources += sorted((ROOT / "devtools" / "commands").glob("*.py"))
    for source in sources:
        tree = ast.parse(source.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] in ("chalicelib", "app")}, source
