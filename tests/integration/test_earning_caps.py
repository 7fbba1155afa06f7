"""Earning caps through the HTTP API, on both emulators: an overall cap per member and month
cuts an earn to what is left (the cut is a share of the breakdown), an earn past it records 0
points and replays as such, a campaign cap cuts only its campaign, reversals give the counter
back, caps are validated and another tenant's members are not counted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.services import platform
from tests.support.http import Api

ZONE = ZoneInfo("Europe/Helsinki")  # the zone Api.create_tenant gives a tenant


def add_rule(api: Api, key: str, **rule: Any) -> dict[str, Any]:
    reply = api.call("POST", "/v1/program/rules", key=key, body=rule)
    assert reply.status == 201, reply.body
    return reply.body


def month_counter(member: str, tenant: str = "acme") -> int:
    month = datetime.now(UTC).astimezone(ZONE).strftime("%Y-%m")
    return platform().for_tenant_id(tenant).points.counter(f"cap:{member}:{month}")


@pytest.fixture
def monthly_cap(api: Api, admin_key: str) -> dict[str, Any]:
    """10 points per euro; at most 5 000 points per member per calendar month."""
    body = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    return add_rule(api, admin_key, name="Monthly cap", kind="earning_cap", cap=5000, per="month")


def test_an_earn_over_the_monthly_cap_is_cut_and_one_past_it_records_zero(
    api: Api, admin_key: str, monthly_cap: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)

    # When the member earns 4 700, then 600, then 100 points in one month
    first = api.earn(admin_key, member, "e-1", points=4700)
    second = api.earn(admin_key, member, "e-2", points=600)
    third = api.earn(admin_key, member, "e-3", points=100)
    replay = api.earn(admin_key, member, "e-3", points=100)

    # Then the first is whole, the second is cut to the 300 left, the third gives 0
    assert [r.status for r in (first, second, third)] == [201, 201, 201], third.body
    assert first.body["transaction"]["points"] == 4700 and first.body["transaction"]["breakdown"] == []
    cut = {"source": "cap", "name": "Monthly cap: capped at 5000 per month", "rule_id": monthly_cap["id"]}
    assert second.body["transaction"]["points"] == 300
    assert second.body["transaction"]["breakdown"] == [
        {"source": "requested", "name": "Requested", "points": 600, "rule_id": None},
        {**cut, "points": -300},
    ]
    assert third.body["transaction"]["points"] == 0
    assert third.body["transaction"]["breakdown"] == [
        {"source": "requested", "name": "Requested", "points": 100, "rule_id": None},
        {**cut, "points": -100},
    ]
    # And a replay answers the recorded 0, the balance holds exactly the cap, the counter too
    assert replay.body == third.body and replay.headers["idempotent-replayed"] == "true"
    balance = api.balance(admin_key, member)
    assert (balance["available"], balance["lifetime_earned"]) == (5000, 5000)
    assert [e["points"] for e in api.ledger(admin_key, member)] == [0, 300, 4700]
    assert month_counter(member) == 5000


def test_order_earns_and_activities_count_towards_the_same_cap(
    api: Api, admin_key: str, monthly_cap: dict[str, Any]
) -> None:
    add_rule(api, admin_key, name="Review", kind="activity", activity="review", points=50, limit=5, per="month")
    member = api.enrol(admin_key)
    order = {"id": "o-1", "total": "480.00", "currency": "EUR"}

    earned = api.earn(admin_key, member, "o-1", order=order)  # 4 800 points
    amount = api.earn(admin_key, member, "a-1", amount="15.00")  # 150 asked, 200 left
    review = api.call(
        "POST", f"/v1/members/{member}/activities", key=admin_key, idempotency_key="r-1", body={"type": "review"}
    )

    assert earned.body["transaction"]["points"] == 4800
    assert amount.body["transaction"]["points"] == 150
    assert review.status == 201 and review.body["transaction"]["points"] == 50
    assert [s["points"] for s in review.body["transaction"]["breakdown"]] == [50]  # not cut: exactly the cap
    again = api.earn(admin_key, member, "a-2", amount="1.00")
    assert again.body["transaction"]["breakdown"][0] == {
        "source": "requested",
        "name": "Base rate",
        "points": 10,
        "rule_id": None,
    }
    assert again.body["transaction"]["points"] == 0 and again.body["transaction"]["amount"] == "1.00"
    assert api.balance(admin_key, member)["available"] == 5000


def test_a_campaign_cap_cuts_only_that_campaign(api: Api, admin_key: str) -> None:
    body = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    double = add_rule(api, admin_key, name="Double points", kind="order_multiplier", factor="2", cap=300, per="month")
    assert (double["cap"], double["per"]) == (300, "month")
    member = api.enrol(admin_key)

    def order(n: int) -> dict[str, Any]:
        reply = api.earn(admin_key, member, f"o-{n}", order={"id": f"o-{n}", "total": "20.00", "currency": "EUR"})
        assert reply.status == 201, reply.body
        return reply.body["transaction"]

    first, second, third = order(1), order(2), order(3)

    # 200 base + 200 extra, then 200 + 100 of the 300 extra allowed, then the base only
    assert (first["points"], second["points"], third["points"]) == (400, 300, 200)
    assert second["breakdown"] == [
        {"source": "base", "name": "Base rate", "points": 200, "rule_id": None},
        {"source": "rule", "name": "Double points", "points": 200, "rule_id": double["id"]},
        {"source": "cap", "name": "Double points: capped at 300 per month", "points": -100, "rule_id": double["id"]},
    ]
    assert [s["points"] for s in third["breakdown"]] == [200, 200, -200]
    month = datetime.now(UTC).astimezone(ZONE).strftime("%Y-%m")
    assert platform().for_tenant_id("acme").points.counter(f"cap:{double['id']}:{member}:{month}") == 300


def test_a_reversal_gives_back_to_the_cap_what_it_takes_back(
    api: Api, admin_key: str, monthly_cap: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "e-1", points=4700, reference="order-1")
    capped = api.earn(admin_key, member, "e-2", points=600, reference="order-2")  # 300 credited
    assert capped.body["transaction"]["points"] == 300

    # When part, then the rest, of the capped earn is reversed
    part = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        idempotency_key="r-1",
        body={"reference": "order-2", "points": 100},
    )
    assert part.status == 201, part.body
    assert month_counter(member) == 4900
    rest = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        idempotency_key="r-2",
        body={"reference": "order-2", "points": 200},
    )
    too_much = api.call(
        "POST",
        f"/v1/members/{member}/reverse",
        key=admin_key,
        idempotency_key="r-3",
        body={"reference": "order-2", "points": 1},
    )

    # Then the counter is back where it was before the capped earn, and the room is usable again
    assert rest.status == 201 and too_much.error_code() == "reversal_exceeds_earned"
    assert month_counter(member) == 4700
    again = api.earn(admin_key, member, "e-3", points=300)
    assert again.body["transaction"]["points"] == 300 and again.body["transaction"]["breakdown"] == []
    assert month_counter(member) == 5000 and api.balance(admin_key, member)["available"] == 5000


def test_a_cap_ended_no_longer_applies_and_one_of_another_tenant_counts_nothing_here(
    api: Api, admin_key: str, other_admin_key: str, monthly_cap: dict[str, Any]
) -> None:
    member = api.enrol(admin_key)
    other = api.enrol(other_admin_key)
    api.earn(admin_key, member, "e-1", points=5000)

    elsewhere = api.earn(other_admin_key, other, "e-1", points=9000)  # globex has no cap
    ended = api.call("POST", f"/v1/program/rules/{monthly_cap['id']}/end", key=admin_key)
    after = api.earn(admin_key, member, "e-2", points=100)

    assert elsewhere.body["transaction"]["points"] == 9000
    assert ended.status == 200 and after.body["transaction"]["points"] == 100
    assert month_counter(member) == 5000  # earns after the cap ended do not move it


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"name": "x", "kind": "earning_cap", "per": "month"}, "cap"),
        ({"name": "x", "kind": "earning_cap", "cap": 100}, "cap"),
        ({"name": "x", "kind": "earning_cap", "cap": 0, "per": "month"}, "cap"),
        ({"name": "x", "kind": "earning_cap", "cap": 100, "per": "fortnight"}, "per"),
        ({"name": "x", "kind": "earning_cap", "cap": 100, "per": "month", "points": 5}, "points"),
        ({"name": "x", "kind": "earning_cap", "cap": 100, "per": "month", "tiers": ["gold"]}, "tiers"),
        ({"name": "x", "kind": "order_bonus", "points": 5, "cap": 100}, "cap"),
        ({"name": "x", "kind": "milestone", "every": 3, "points": 5, "cap": 100, "per": "month"}, "cap"),
        ({"name": "x", "kind": "activity", "activity": "review", "points": 5, "cap": 10, "per": "day"}, "cap"),
    ],
)
def test_invalid_caps_are_refused_and_change_nothing(
    api: Api, admin_key: str, rule: dict[str, Any], field: str
) -> None:
    reply = api.call("POST", "/v1/program/rules", key=admin_key, body=rule)

    assert reply.status == 400 and reply.error_code() == "invalid_request", reply.body
    assert field in [f["path"] for f in reply.body["error"]["details"]["fields"]], reply.body
    assert api.call("GET", "/v1/program/rules", key=admin_key).body["data"] == []


def test_weekly_and_yearly_caps_and_activity_limits_per_week(api: Api, admin_key: str) -> None:
    weekly = add_rule(api, admin_key, name="Weekly", kind="earning_cap", cap=250, per="week")
    yearly = add_rule(api, admin_key, name="Yearly", kind="earning_cap", cap=200, per="year")
    review = add_rule(api, admin_key, name="Review", kind="activity", activity="review", points=10, limit=1, per="week")
    member = api.enrol(admin_key)

    earned = api.earn(admin_key, member, "e-1", points=300)
    first = api.call(
        "POST", f"/v1/members/{member}/activities", key=admin_key, idempotency_key="r-1", body={"type": "review"}
    )
    second = api.call(
        "POST", f"/v1/members/{member}/activities", key=admin_key, idempotency_key="r-2", body={"type": "review"}
    )

    assert (weekly["per"], yearly["per"], review["per"]) == ("week", "year", "week")
    assert earned.body["transaction"]["points"] == 200  # the week's 250, then the year's 200
    assert [s["points"] for s in earned.body["transaction"]["breakdown"]] == [300, -50, -50]
    retry = api.call(
        "POST", f"/v1/members/{member}/activities", key=admin_key, idempotency_key="r-1", body={"type": "review"}
    )
    assert first.status == 201 and first.body["transaction"]["points"] == 0  # capped, allowance used
    assert second.status == 422 and second.error_code() == "limit_reached"
    assert retry.status == 201 and retry.body == first.body and retry.headers["idempotent-replayed"] == "true"


def _program_item(tenant: str = "acme") -> Any:
    from chalicelib.persistence.factory import tenant_models

    services = platform()
    models = tenant_models(tenant, services.settings.tenant_table_name(tenant), services.connection)
    return models.program, models.program.get("PROGRAM", "#CURRENT")


def test_a_plain_earn_finds_its_cap_through_the_programs_summary_of_the_rules(
    api: Api, admin_key: str, monthly_cap: dict[str, Any]
) -> None:
    # Given a monthly cap, then a program change (which keeps the rules' summary)
    body = {"points_per_currency_unit": "20", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    _, item = _program_item()
    assert item.summarised and item.capped_rules == {monthly_cap["id"]}
    member = api.enrol(admin_key)

    # When the member earns past the cap by points and by amount
    by_points = api.earn(admin_key, member, "e-1", points=4900)
    by_amount = api.earn(admin_key, member, "e-2", amount="10.00")  # 200 asked, 100 left

    # Then the cap cuts the second
    assert by_points.body["transaction"]["points"] == 4900
    assert by_amount.body["transaction"]["points"] == 100, by_amount.body
    assert api.balance(admin_key, member)["available"] == 5000


def test_a_cap_stored_before_the_program_summarised_the_rules_still_cuts(
    api: Api, admin_key: str, monthly_cap: dict[str, Any]
) -> None:
    # Given a program item that has no summary of the rules (written before it was kept)
    model, item = _program_item()
    item.update(actions=[model.summarised.remove(), model.capped_rules.remove()])
    member = api.enrol(admin_key)

    # When the member earns past the cap
    reply = api.earn(admin_key, member, "e-1", points=6000)

    # Then the earn read the rules and was cut to the cap
    assert reply.body["transaction"]["points"] == 5000, reply.body


def test_a_brand_whose_rules_have_no_cap_is_summarised_as_such(api: Api, admin_key: str) -> None:
    # Given a rule without a cap and no program put yet
    add_rule(api, admin_key, name="Double", kind="order_multiplier", factor="2")

    # Then the program item holds only the summary, and the program reads as the default
    _, item = _program_item()
    assert item.summarised and not item.capped_rules
    program = api.call("GET", "/v1/program", key=admin_key)
    assert program.status == 200 and program.body["points_per_currency_unit"] == "1", program.body
    member = api.enrol(admin_key)
    assert api.earn(admin_key, member, "e-1", points=70).body["transaction"]["points"] == 70


def test_the_programs_summary_knows_when_a_tier_version_is_stored(api: Api, admin_key: str) -> None:
    # Given a program (summarised without tiers), then a tier program
    body = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    _, before = _program_item()
    from tests.integration.test_tiers import TIERS

    added = api.call("PUT", "/v1/program/tiers", key=admin_key, body=TIERS)

    # Then the summary says tiers are stored, and an earn past silver's threshold reaches it
    _, after = _program_item()
    assert before.summarised and not before.tiers_stored
    assert added.status == 200, added.body
    assert after.summarised and after.tiers_stored
    member = api.enrol(admin_key)
    reply = api.earn(admin_key, member, "e-1", points=600)
    assert reply.body["balance"]["tier"] == "silver", reply.body


def test_a_container_kept_across_movements_sees_a_cap_added_after_its_first_earn(api: Api, admin_key: str) -> None:
    # Given one tenant container kept across movements (as a job run holds it), which has
    # already earned once in a brand without caps (so it read a program naming no cap)
    from chalicelib.domain.movement_requests import MovementRequest, MovementType

    body = {"points_per_currency_unit": "10", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=body).status == 200
    member = api.enrol(admin_key)
    kept = platform().for_tenant_id("acme")
    first = kept.points.move(MovementRequest(member, MovementType.EARN, "kept-1", points=100))
    assert first.entry.points == 100

    # When a cap is added through the API (another container), then the kept one earns again
    add_rule(api, admin_key, name="Monthly cap", kind="earning_cap", cap=50, per="month")
    second = kept.points.move(MovementRequest(member, MovementType.EARN, "kept-2", points=100))

    # Then the second earn is cut to the cap (the first, older than the cap, counts nothing),
    # as an earn through the API would be
    assert second.entry.points == 50, second.entry
    assert api.balance(admin_key, member)["available"] == 150
    assert month_counter(member) == 50
