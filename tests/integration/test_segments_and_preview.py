"""Member segments and the preview for a member, through the HTTP API on both emulators:
segments set at enrolment and by PATCH (validated), campaigns limited to segments applied at
earn and in the preview, and a preview for a member that equals what their earn then records
(tier multiplier, tier campaigns, segments, next milestone, caps) while writing nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.http import Api

ORDER = {"id": "o-1", "total": "20.00", "currency": "EUR"}


def add_rule(api: Api, key: str, **rule: Any) -> dict[str, Any]:
    reply = api.call("POST", "/v1/program/rules", key=key, body=rule)
    assert reply.status == 201, reply.body
    return reply.body


@pytest.fixture
def ten_per_euro(api: Api, admin_key: str) -> None:
    body = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200


# --- segments on members -----------------------------------------------------------------------


def test_segments_are_set_at_enrolment_replaced_by_patch_and_cleared(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key, segments=["vip"])
    path = f"/v1/members/{member}"

    replaced = api.call("PATCH", path, key=admin_key, body={"segments": ["staff", "vip-2027"]})
    renamed = api.call("PATCH", path, key=admin_key, body={"name": "Ada"})  # segments untouched
    cleared = api.call("PATCH", path, key=admin_key, body={"segments": []})

    assert api.call("GET", path, key=admin_key).body["segments"] == []
    assert replaced.status == 200 and replaced.body["segments"] == ["staff", "vip-2027"]
    assert renamed.body["segments"] == ["staff", "vip-2027"]
    assert cleared.status == 200 and cleared.body["segments"] == []


@pytest.mark.parametrize(
    ("segments", "field"),
    [
        (["VIP"], "segments.0"),
        (["vip", "vip"], "segments"),
        (["has space"], "segments.0"),
        ([f"s{n}" for n in range(21)], "segments"),
        (["x" * 33], "segments.0"),
        (None, "body"),
    ],
)
def test_invalid_segments_are_refused_and_change_nothing(
    api: Api, admin_key: str, segments: list[str] | None, field: str
) -> None:
    member = api.enrol(admin_key, segments=["vip"])

    patched = api.call("PATCH", f"/v1/members/{member}", key=admin_key, body={"segments": segments})
    enrolled = api.call("POST", "/v1/members", key=admin_key, body={"segments": segments})

    assert patched.status == 400 and enrolled.status == 400, (patched.body, enrolled.body)
    assert field in [f["path"] for f in patched.body["error"]["details"]["fields"]], patched.body
    assert api.call("GET", f"/v1/members/{member}", key=admin_key).body["segments"] == ["vip"]
    assert len(api.call("GET", "/v1/members", key=admin_key).body["data"]) == 1


def test_a_segment_rule_outside_order_rules_is_refused(api: Api, admin_key: str) -> None:
    body = {"name": "x", "kind": "activity", "activity": "review", "points": 5, "segments": ["vip"]}

    reply = api.call("POST", "/v1/program/rules", key=admin_key, body=body)

    assert reply.status == 400 and "segments" in [f["path"] for f in reply.body["error"]["details"]["fields"]]


# --- campaigns for segments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member_segments", "gets_bonus"),
    [
        ([], False),
        (["vip"], True),
        (["staff"], True),
        (["newsletter"], False),
        (["newsletter", "vip"], True),
    ],
)
def test_a_campaign_for_segments_applies_to_their_members_only_at_earn_and_in_preview(
    api: Api, admin_key: str, ten_per_euro: None, member_segments: list[str], gets_bonus: bool
) -> None:
    bonus = add_rule(api, admin_key, name="VIP bonus", kind="order_bonus", points=50, segments=["vip", "staff"])
    assert bonus["segments"] == ["staff", "vip"]
    member = api.enrol(admin_key, segments=member_segments)

    preview = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": ORDER, "member_id": member})
    anonymous = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": ORDER})
    earned = api.earn(admin_key, member, "o-1", order=ORDER)

    expected = [{"source": "base", "name": "Base rate", "points": 200, "rule_id": None}]
    if gets_bonus:
        expected.append({"source": "rule", "name": "VIP bonus", "points": 50, "rule_id": bonus["id"]})
    assert earned.status == 201 and earned.body["transaction"]["breakdown"] == expected
    assert preview.status == 200 and preview.body == {
        "points": 250 if gets_bonus else 200,
        "breakdown": expected,
        "tier": None,
    }
    assert anonymous.body["points"] == 200  # no member: no segment


def test_a_segment_change_applies_to_the_next_earn(api: Api, admin_key: str, ten_per_euro: None) -> None:
    add_rule(api, admin_key, name="Staff x2", kind="order_multiplier", factor="2", segments=["staff"])
    member = api.enrol(admin_key)

    before = api.earn(admin_key, member, "o-1", order=ORDER)
    api.call("PATCH", f"/v1/members/{member}", key=admin_key, body={"segments": ["staff"]})
    after = api.earn(admin_key, member, "o-2", order={**ORDER, "id": "o-2"})

    assert (before.body["transaction"]["points"], after.body["transaction"]["points"]) == (200, 400)


# --- the preview for a member ----------------------------------------------------------------


def test_the_preview_for_a_member_is_what_their_earn_then_records(api: Api, admin_key: str, ten_per_euro: None) -> None:
    # Given Silver (x1.5) at 500 points, a Silver-only bonus, a VIP double capped at 700 a month,
    # a milestone on every 2nd order, and at most 1 500 points a month
    tiers = {
        "metric": "points",
        "window": {"kind": "rolling_months", "months": 12},
        "tiers": [{"name": "silver", "threshold": "500", "multiplier": "1.5"}],
    }
    assert api.call("PUT", "/v1/program/tiers", key=admin_key, body=tiers).status == 200
    bonus = add_rule(api, admin_key, name="Silver bonus", kind="order_bonus", points=20, tiers=["silver"])
    double = add_rule(
        api, admin_key, name="VIP double", kind="order_multiplier", factor="2", segments=["vip"], cap=700, per="month"
    )
    every_2nd = add_rule(api, admin_key, name="Every 2nd order", kind="milestone", every=2, points=30)
    cap = add_rule(api, admin_key, name="Monthly cap", kind="earning_cap", cap=1500, per="month")
    # And a VIP member whose first order (600 base + 600 VIP) made them Silver
    member = api.enrol(admin_key, segments=["vip"])
    first = api.earn(admin_key, member, "o-0", order={**ORDER, "id": "o-0", "total": "60.00"})
    assert (first.body["transaction"]["points"], first.body["balance"]["tier"]) == (1200, "silver"), first.body
    ledger_before = api.ledger(admin_key, member)
    balance_before = api.balance(admin_key, member)

    # When the next order is previewed for the member
    preview = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": ORDER, "member_id": member})

    # Then the preview wrote nothing
    assert preview.status == 200, preview.body
    assert api.ledger(admin_key, member) == ledger_before and api.balance(admin_key, member) == balance_before

    # And the earn of that order records exactly the preview
    earned = api.earn(admin_key, member, "o-1", order=ORDER)
    transaction = earned.body["transaction"]
    assert preview.body == {"points": transaction["points"], "breakdown": transaction["breakdown"], "tier": "silver"}
    assert transaction["breakdown"] == [
        {"source": "base", "name": "Base rate", "points": 200, "rule_id": None},
        {"source": "rule", "name": "Silver bonus", "points": 20, "rule_id": bonus["id"]},
        {"source": "rule", "name": "VIP double", "points": 200, "rule_id": double["id"]},
        {"source": "cap", "name": "VIP double: capped at 700 per month", "points": -100, "rule_id": double["id"]},
        {"source": "tier", "name": "silver tier", "points": 100, "rule_id": "tier:silver"},
        {"source": "rule", "name": "Every 2nd order", "points": 30, "rule_id": every_2nd["id"]},
        {"source": "cap", "name": "Monthly cap: capped at 1500 per month", "points": -150, "rule_id": cap["id"]},
    ]
    assert transaction["points"] == 300 and api.balance(admin_key, member)["available"] == 1500
    # And a preview without the member shows what any member would earn (no tier, segment or cap)
    anonymous = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": ORDER})
    assert anonymous.body == {
        "points": 200,
        "breakdown": [{"source": "base", "name": "Base rate", "points": 200, "rule_id": None}],
        "tier": None,
    }


def test_a_preview_for_an_unknown_or_another_tenants_member_is_404(
    api: Api, admin_key: str, other_admin_key: str
) -> None:
    theirs = api.enrol(other_admin_key)
    unknown = "mem_01J00000000000000000000000"

    for member in (theirs, unknown):
        reply = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": ORDER, "member_id": member})
        assert reply.status == 404 and reply.error_code() == "not_found", reply.body
    malformed = api.call("POST", "/v1/program/preview", key=admin_key, body={"order": ORDER, "member_id": "nobody"})
    assert malformed.status == 400
