"""The welcome: on enrolment by any path, the sign-up bonus once; ``member.welcome`` once, by the notify job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.jobs.imports import run_import
from chalicelib.services import platform
from tests.support.checks import assert_error
from tests.support.http import Api

PROGRAM = {"points_per_currency_unit": "2", "rounding": "floor"}


def notify(api: Api, admin_key: str, *, runs: int = 2) -> list[int]:
    """Run the notify job (as its daily schedule would, twice: the second announces nothing again)."""
    counts = []
    for _ in range(runs):
        reply = api.call("POST", "/v1/jobs/notify/run", key=admin_key, body={})
        assert reply.status == 201, reply
        counts.append(reply.body["counts"]["welcomes"])
    return counts


def welcomes(member_id: str | None = None) -> list[dict[str, Any]]:
    """The tenant's member.welcome events (read past the feed's settle window)."""
    later = datetime.now(UTC) + timedelta(seconds=10)
    today = datetime.now(UTC) - timedelta(days=1)
    feed = platform().for_tenant_id("acme", clock=lambda: later, created_at=today).feed
    from chalicelib.domain.event_payloads import event_payload
    from chalicelib.domain.events import EventType

    page = feed.read(after=None, types=frozenset({EventType.MEMBER_WELCOME}), limit=100)
    return [event_payload(e) for e in page.events if member_id is None or e.member_id == member_id]


def test_a_new_member_gets_the_signup_bonus_and_one_welcome(api: Api, admin_key: str) -> None:
    # Given a program with a sign-up bonus and a catalog with rewards
    program = {**PROGRAM, "signup_bonus": 50}
    put = api.call("PUT", "/v1/program", key=admin_key, body=program)
    assert put.status == 200 and put.body["signup_bonus"] == 50 and put.body["welcome_imported"] is False, put
    for name, cost in (("Cinema", 300), ("Coffee", 120)):
        body = {"name": name, "type": "experience", "points_cost": cost}
        assert api.call("POST", "/v1/rewards", key=admin_key, body=body).status == 201
    vip = {"name": "Lounge", "type": "experience", "points_cost": 10, "tiers": ["gold"]}
    assert api.call("POST", "/v1/rewards", key=admin_key, body=vip).status == 201

    # When a member enrols, and the request is retried with its key
    first = api.call("POST", "/v1/members", key=admin_key, body={"name": "Ada"}, idempotency_key="enrol-ada")
    again = api.call("POST", "/v1/members", key=admin_key, body={"name": "Ada"}, idempotency_key="enrol-ada")
    assert first.status == 201 and again.status == 201 and again.body["id"] == first.body["id"]
    member = first.body["id"]

    # Then the bonus is credited at once, once, through the ledger
    ledger = api.ledger(admin_key, member)
    assert [(e["type"], e["points"], e["idempotency_key"]) for e in ledger] == [("earn", 50, f"signup:{member}")]
    assert api.balance(admin_key, member)["available"] == 50
    assert welcomes(member) == []
    # And the notify job announces one member.welcome summarising the program: the bonus, the rate,
    # the first reward within reach
    assert notify(api, admin_key) == [1, 0]
    (welcome,) = welcomes(member)
    assert welcome["data"] == {
        "signup_bonus_points": 50,
        "signup_bonus_transaction_id": ledger[0]["id"],
        "available_points": 50,
        "points_per_currency_unit": "2",
        "first_reward_id": welcome["data"]["first_reward_id"],
        "first_reward_name": "Coffee",
        "first_reward_points_cost": 120,
        "points_to_first_reward": 70,
    }
    # And a client cannot take the bonus's key
    stolen = api.earn(admin_key, member, f"signup:{member}", points=1)
    assert_error(stolen, 400, "invalid_request", "a client key with the bonus's prefix")


def test_without_a_bonus_the_welcome_still_goes_out_and_no_reward_may_be_within_reach(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key, name="Bo")
    assert api.ledger(admin_key, member) == []
    assert notify(api, admin_key) == [1, 0]
    (welcome,) = welcomes(member)
    assert welcome["data"]["signup_bonus_points"] == 0 and welcome["data"]["signup_bonus_transaction_id"] is None
    assert welcome["data"]["first_reward_id"] is None and welcome["data"]["points_to_first_reward"] is None


def test_an_order_intake_enrolment_is_welcomed(api: Api, admin_key: str) -> None:
    assert api.call("PUT", "/v1/program", key=admin_key, body={**PROGRAM, "signup_bonus": 25}).status == 200
    event = {
        "type": "paid",
        "event_id": "e-1",
        "order": {"id": "o-1", "total": "10.00", "currency": "EUR"},
        "customer": {"external_id": "shopper-1"},
        "enrol": True,
    }
    taken = api.call("POST", "/v1/integrations/orders", key=admin_key, body=event)
    assert taken.status in (200, 201), taken
    found = api.call("GET", "/v1/members?external_id=shopper-1", key=admin_key).body["data"]
    assert len(found) == 1, taken
    member = found[0]["id"]
    assert notify(api, admin_key) == [1, 0] and len(welcomes(member)) == 1
    keys = sorted(e["idempotency_key"] for e in api.ledger(admin_key, member))
    assert f"signup:{member}" in keys and len(keys) == 2  # the bonus and the order's earn


def test_imported_members_are_welcomed_only_when_the_program_says_so(api: Api, admin_key: str) -> None:
    assert api.call("PUT", "/v1/program", key=admin_key, body={**PROGRAM, "signup_bonus": 10}).status == 200

    def imported(csv: str) -> list[str]:
        submitted = api.call("POST", "/v1/imports", key=admin_key, body={"csv": csv})
        assert submitted.status == 202, submitted
        run_import("acme", submitted.body["id"], budget_seconds=None)
        run_import("acme", submitted.body["id"], budget_seconds=None)  # a rerun changes nothing
        ids = []
        for line in csv.splitlines()[1:]:
            external_id = line.split(",")[0]
            found = api.call("GET", f"/v1/members?external_id={external_id}", key=admin_key).body["data"]
            ids.append(found[0]["id"])
        return ids

    # Given the default program: imported members get neither bonus nor welcome
    (quiet,) = imported("external_id,points\nimp-1,100\n")
    assert notify(api, admin_key) == [0, 0]
    assert welcomes(quiet) == [] and api.balance(admin_key, quiet)["available"] == 100

    # When the program welcomes imported members
    program = {**PROGRAM, "signup_bonus": 10, "welcome_imported": True}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).body["welcome_imported"] is True
    (greeted,) = imported("external_id,points\nimp-2,100\n")
    # Then they get the bonus and one welcome (the rerun added nothing); those imported before too
    assert api.balance(admin_key, greeted)["available"] == 110
    assert notify(api, admin_key) == [2, 0]
    assert api.balance(admin_key, quiet)["available"] == 110
    (welcome,) = welcomes(greeted)
    assert welcome["data"]["available_points"] == 110


def test_a_bonus_that_failed_on_enrolment_is_credited_before_the_welcome(
    api: Api, admin_key: str, monkeypatch: Any
) -> None:
    from chalicelib.domain.welcome import WelcomeService

    assert api.call("PUT", "/v1/program", key=admin_key, body={**PROGRAM, "signup_bonus": 40}).status == 200
    real = WelcomeService.credit_signup_bonus

    def unavailable(self: WelcomeService, member_id: str, *, imported: bool = False) -> str | None:
        raise TimeoutError("the ledger did not answer")

    # Given an enrolment whose bonus could not be credited: the member is enrolled all the same
    monkeypatch.setattr(WelcomeService, "credit_signup_bonus", unavailable)
    member = api.enrol(admin_key, name="Cy")
    assert api.balance(admin_key, member)["available"] == 0
    monkeypatch.setattr(WelcomeService, "credit_signup_bonus", real)
    # When the notify job runs, Then the bonus is credited once and announced
    assert notify(api, admin_key) == [1, 0]
    assert [e["points"] for e in api.ledger(admin_key, member)] == [40]
    (welcome,) = welcomes(member)
    assert welcome["data"]["signup_bonus_points"] == 40 and welcome["data"]["available_points"] == 40
