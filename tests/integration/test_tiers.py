"""Tiers through the HTTP API, on both emulators: configured and versioned, validated with 400s
that change nothing, an upgrade in the very earn that crosses a threshold, the tier multiplier
and tier-limited campaigns in the breakdown, tier-only rewards, the review job with its grace
period, the progress view, and another tenant seeing none of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.events import EventType
from chalicelib.services import platform
from tests.support.http import Api

ZONE = ZoneInfo("Europe/Helsinki")  # the zone Api.create_tenant gives a tenant

TIERS = {
    "metric": "points",
    "window": {"kind": "rolling_months", "months": 12},
    "grace_periods": 1,
    "tiers": [
        {"name": "silver", "threshold": "500", "multiplier": "1.5", "perks": ["Free delivery"]},
        {"name": "gold", "threshold": "2000", "multiplier": "2", "perks": ["Free delivery", "Lounge access"]},
    ],
}


def order(order_id: str, total: str) -> dict[str, Any]:
    return {"order": {"id": order_id, "total": total, "currency": "EUR"}}


def configure(api: Api, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = api.call("PUT", "/v1/program/tiers", key=key, body=body or TIERS)
    assert reply.status == 200, reply.body
    return reply.body


@pytest.fixture
def program(api: Api, admin_key: str) -> dict[str, Any]:
    """10 points per euro; Silver at 500 points, Gold at 2 000, per rolling 12 months."""
    assert (
        api.call(
            "PUT", "/v1/program", key=admin_key, body={"points_per_currency_unit": "10", "rounding": "floor"}
        ).status
        == 200
    )
    return configure(api, admin_key)


def earn_order(api: Api, key: str, member: str, order_id: str, total: str) -> dict[str, Any]:
    reply = api.earn(key, member, order_id, **order(order_id, total))
    assert reply.status == 201, reply.body
    return reply.body


def tier_events(tenant: str = "acme") -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    later = now + timedelta(seconds=10)  # past the feed's settle window
    feed = platform().for_tenant_id(tenant, clock=lambda: later, created_at=now - timedelta(days=1)).feed
    page = feed.read(after=None, types=frozenset({EventType.TIER_CHANGED}), limit=100)
    return [dict(event.notice.data) for event in page.events if event.notice is not None]


def month_start(year: int, month: int) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=ZONE).astimezone(UTC)


def test_tiers_are_configured_as_versions_never_deleted(api: Api, admin_key: str, other_admin_key: str) -> None:
    # Given a first version, then a second scheduled for later
    first = configure(api, admin_key)
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    second = configure(api, admin_key, {**TIERS, "effective_from": later.isoformat(), "grace_periods": 2})

    # When the versions are listed (and by another tenant)
    listed = api.call("GET", "/v1/program/tiers", key=admin_key)
    other = api.call("GET", "/v1/program/tiers", key=other_admin_key)

    # Then both are there, the first in force, the second scheduled; the other tenant has none
    assert first["status"] == "active" and first["id"].startswith("tpv_")
    assert first["tiers"][1] == {
        "name": "gold",
        "threshold": "2000",
        "multiplier": "2",
        "perks": ["Free delivery", "Lounge access"],
    }
    assert (first["metric"], first["window"], first["grace_periods"]) == (
        "points",
        {"kind": "rolling_months", "months": 12},
        1,
    )
    assert listed.status == 200
    assert [(v["id"], v["status"]) for v in listed.body["data"]] == [
        (first["id"], "active"),
        (second["id"], "scheduled"),
    ]
    assert other.status == 200 and other.body == {"data": []}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tiers": [TIERS["tiers"][1], TIERS["tiers"][0]]}, "tiers.1.threshold"),  # descending
        ({"tiers": [TIERS["tiers"][0], {**TIERS["tiers"][1], "name": "silver"}]}, "tiers"),  # a name twice
        ({"tiers": [{**TIERS["tiers"][0], "threshold": "500.5"}]}, "tiers.0.threshold"),  # fractional points
        ({"window": {"kind": "rolling_months"}}, "window.months"),
        ({"window": {"kind": "calendar_year", "months": 12}}, "window.months"),
        ({"window": {"kind": "calendar_year"}, "grace_periods": 3}, "grace_periods"),
        ({"effective_from": "2020-01-01T00:00:00Z"}, "effective_from"),
        ({"tiers": [{**TIERS["tiers"][0], "name": "Gold Club"}]}, "tiers.0.name"),
        ({"tiers": [{**TIERS["tiers"][0], "multiplier": "0.5"}]}, "tiers.0.multiplier"),
        ({"metric": "visits"}, "metric"),
    ],
)
def test_invalid_tiers_are_refused_with_a_400_that_changes_nothing(
    api: Api, admin_key: str, change: dict[str, Any], field: str
) -> None:
    before = configure(api, admin_key)

    reply = api.call("PUT", "/v1/program/tiers", key=admin_key, body={**TIERS, **change})

    assert reply.status == 400, reply.body
    assert reply.error_code() == "invalid_request"
    assert field in [f["path"] for f in reply.body["error"]["details"]["fields"]], reply.body
    listed = api.call("GET", "/v1/program/tiers", key=admin_key).body["data"]
    assert [v["id"] for v in listed] == [before["id"]]


def test_an_earn_that_crosses_a_threshold_upgrades_the_member_in_the_same_request(
    api: Api, admin_key: str, program: dict
) -> None:
    member = api.enrol(admin_key)

    # When a first order earns 320 points (below Silver), then a second crosses 500
    first = earn_order(api, admin_key, member, "o-1", "32.00")
    second = earn_order(api, admin_key, member, "o-2", "20.00")
    replay = api.earn(admin_key, member, "o-2", **order("o-2", "20.00"))

    # Then the first leaves the member without a tier, the second's own response says silver
    assert first["balance"]["tier"] is None
    assert second["balance"]["tier"] == "silver" and second["transaction"]["points"] == 200
    assert replay.body == second and replay.headers["idempotent-replayed"] == "true"
    # And the member view shows the tier, when it is reviewed, and what Gold takes
    now = datetime.now(UTC).astimezone(ZONE)
    balance = api.balance(admin_key, member)
    status = balance["tier_status"]
    assert balance["tier"] == "silver"
    assert status["tier"] == "silver" and status["multiplier"] == "1.5" and status["perks"] == ["Free delivery"]
    assert datetime.fromisoformat(status["expires_at"]) == month_start(now.year, now.month + 2)  # month + grace
    assert status["qualifying"] == 520
    assert status["progress"] == {"next_tier": "gold", "remaining": 1480, "metric": "points"}
    # And one tier.changed event says so
    events = tier_events()
    assert [datetime.fromisoformat(e.pop("expires_at")) for e in events] == [
        datetime.fromisoformat(status["expires_at"])
    ]
    assert events == [
        {
            "member_id": member,
            "from_tier": None,
            "to_tier": "silver",
            "direction": "upgrade",
            "reason": "qualified",
            "metric": "points",
            "qualifying": "520",
        }
    ]


def test_one_earn_may_cross_two_thresholds_at_once(api: Api, admin_key: str, program: dict) -> None:
    member = api.enrol(admin_key)

    reply = earn_order(api, admin_key, member, "big", "250.00")

    assert reply["balance"]["tier"] == "gold"
    balance = api.balance(admin_key, member)
    assert balance["tier_status"]["progress"] is None  # the top tier
    assert [(e["from_tier"], e["to_tier"]) for e in tier_events()] == [(None, "gold")]


def test_the_tier_multiplier_and_tier_limited_campaigns_are_shares_of_the_breakdown(
    api: Api, admin_key: str, program: dict
) -> None:
    # Given double points for Gold only and a 20-point bonus for Silver only
    gold_double = {"name": "Gold double", "kind": "order_multiplier", "factor": "2", "tiers": ["gold"]}
    silver_bonus = {"name": "Silver bonus", "kind": "order_bonus", "points": 20, "tiers": ["silver"]}
    gold_rule = api.call("POST", "/v1/program/rules", key=admin_key, body=gold_double)
    silver_rule = api.call("POST", "/v1/program/rules", key=admin_key, body=silver_bonus)
    assert gold_rule.status == 201 and gold_rule.body["tiers"] == ["gold"], gold_rule.body
    member = api.enrol(admin_key)

    # When a member without a tier orders (crossing Silver), then orders again as Silver
    first = earn_order(api, admin_key, member, "o-1", "60.00")
    second = earn_order(api, admin_key, member, "o-2", "10.00")

    # Then the first earns the base only (the tier came with it, not before it)
    assert first["transaction"]["breakdown"] == [
        {"source": "base", "name": "Base rate", "points": 600, "rule_id": None}
    ]
    # And the second earns Silver's bonus and its x1.5 multiplier, never Gold's double
    assert second["transaction"]["breakdown"] == [
        {"source": "base", "name": "Base rate", "points": 100, "rule_id": None},
        {"source": "rule", "name": "Silver bonus", "points": 20, "rule_id": silver_rule.body["id"]},
        {"source": "tier", "name": "silver tier", "points": 50, "rule_id": "tier:silver"},
    ]
    assert second["transaction"]["points"] == 170
    assert api.ledger(admin_key, member)[0]["breakdown"] == second["transaction"]["breakdown"]


def test_a_tier_rule_outside_order_rules_is_refused(api: Api, admin_key: str) -> None:
    body = {"name": "Review", "kind": "activity", "activity": "review", "points": 5, "tiers": ["gold"]}

    reply = api.call("POST", "/v1/program/rules", key=admin_key, body=body)

    assert reply.status == 400 and "tiers" in [f["path"] for f in reply.body["error"]["details"]["fields"]]
    assert api.call("GET", "/v1/program/rules", key=admin_key).body["data"] == []


def test_a_tier_only_reward_is_refused_below_its_tier(api: Api, admin_key: str, program: dict) -> None:
    lounge = {"name": "Lounge", "type": "experience", "points_cost": 100, "tiers": ["gold"]}
    reward = api.call("POST", "/v1/rewards", key=admin_key, body=lounge)
    assert reward.status == 201, reward.body
    member = api.enrol(admin_key)
    earn_order(api, admin_key, member, "o-1", "60.00")  # 600 points: silver
    path = f"/v1/members/{member}/rewards/{reward.body['id']}/redeem"

    refused = api.call("POST", path, key=admin_key, idempotency_key="lounge-1")
    listed = api.call("GET", f"/v1/members/{member}/rewards", key=admin_key)

    assert refused.status == 422 and refused.error_code() == "reward_unavailable", refused.body
    assert api.balance(admin_key, member)["available"] == 600
    mine = [r for r in listed.body["data"] if r["reward"]["id"] == reward.body["id"]]
    assert (mine[0]["redeemable"], mine[0]["locked_because"]) == (False, ["tier"]), mine

    # When the member reaches Gold, the same reward is theirs
    earn_order(api, admin_key, member, "o-2", "150.00")
    granted = api.call("POST", path, key=admin_key, idempotency_key="lounge-2")
    assert granted.status == 201, granted.body
    assert granted.body["transaction"]["points"] == -100


def test_the_review_job_keeps_the_tier_through_its_grace_then_lowers_it(api: Api, admin_key: str) -> None:
    # Given tiers over a rolling month, kept one month more (grace), and a member who reached Gold
    assert (
        api.call(
            "PUT", "/v1/program", key=admin_key, body={"points_per_currency_unit": "10", "rounding": "floor"}
        ).status
        == 200
    )
    configure(api, admin_key, {**TIERS, "window": {"kind": "rolling_months", "months": 1}})
    member = api.enrol(admin_key)
    bystander = api.enrol(admin_key)
    earn_order(api, admin_key, member, "o-1", "250.00")
    now = datetime.now(UTC).astimezone(ZONE)
    review_at = month_start(now.year, now.month + 2)

    # When the job runs just before the review is due
    early = api.call(
        "POST", "/v1/jobs/review-tiers/run", key=admin_key, body={"as_of": (review_at - timedelta(hours=1)).isoformat()}
    )

    # Then nobody is reviewed: the member is still Gold through next month (the grace)
    assert early.status == 201 and early.body["counts"] == {"members": 0, "downgraded": 0, "kept": 0}
    assert api.balance(admin_key, member)["tier"] == "gold"

    # When it runs once the review is due
    due = api.call(
        "POST", "/v1/jobs/review-tiers/run", key=admin_key, body={"as_of": (review_at + timedelta(hours=1)).isoformat()}
    )
    again = api.call(
        "POST", "/v1/jobs/review-tiers/run", key=admin_key, body={"as_of": (review_at + timedelta(hours=2)).isoformat()}
    )

    # Then the member, who earned nothing last month, loses the tier, once
    assert due.body["counts"] == {"members": 1, "downgraded": 1, "kept": 0}, due.body
    assert again.body["counts"] == {"members": 0, "downgraded": 0, "kept": 0}
    balance = api.balance(admin_key, member)
    assert (balance["tier"], balance["tier_status"]["tier"], balance["tier_status"]["expires_at"]) == (None, None, None)
    assert api.balance(admin_key, bystander)["tier"] is None
    events = tier_events()
    assert [(e["from_tier"], e["to_tier"], e["direction"], e["reason"]) for e in events] == [
        (None, "gold", "upgrade", "qualified"),
        ("gold", None, "downgrade", "review"),
    ]


def test_spend_thresholds_count_amounts_and_show_progress_as_an_amount(api: Api, admin_key: str) -> None:
    spend = {
        "metric": "spend",
        "window": {"kind": "calendar_year"},
        "tiers": [{"name": "plus", "threshold": "100.00"}, {"name": "max", "threshold": "250.50"}],
    }
    configure(api, admin_key, spend)
    member = api.enrol(admin_key)

    earn_order(api, admin_key, member, "o-1", "40.25")
    assert api.earn(admin_key, member, "a-1", amount="60.00").status == 201

    status = api.balance(admin_key, member)["tier_status"]
    assert (status["tier"], status["qualifying"]) == ("plus", "100.25")
    assert status["progress"] == {"next_tier": "max", "remaining": "150.25", "metric": "spend"}
    now = datetime.now(UTC).astimezone(ZONE)
    assert datetime.fromisoformat(status["expires_at"]) == datetime(now.year + 2, 1, 1, tzinfo=ZONE)


def test_orders_thresholds_count_orders_only(api: Api, admin_key: str) -> None:
    configure(
        api,
        admin_key,
        {
            "metric": "orders",
            "window": {"kind": "rolling_months", "months": 3},
            "tiers": [{"name": "regular", "threshold": "2"}],
        },
    )
    member = api.enrol(admin_key)

    api.earn(admin_key, member, "p-1", points=1000)  # points, not an order
    first = earn_order(api, admin_key, member, "o-1", "5.00")
    second = earn_order(api, admin_key, member, "o-2", "5.00")

    assert (first["balance"]["tier"], second["balance"]["tier"]) == (None, "regular")


def test_without_tiers_members_have_none_and_the_balance_says_so(api: Api, admin_key: str) -> None:
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "p-1", points=10_000)

    balance = api.balance(admin_key, member)

    assert (balance["tier"], balance["tier_status"]) == (None, None)


class TierQueries:
    """The tier version queries made (the tenant of each), counted at the repository."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from chalicelib.persistence.tiers import TierProgramRepository

        self.tenants: list[str] = []
        in_force = TierProgramRepository.in_force

        def counted(repository: TierProgramRepository, at: datetime) -> Any:
            self.tenants.append(repository._models.tenant_id)
            return in_force(repository, at)

        monkeypatch.setattr(TierProgramRepository, "in_force", counted)


def tiers_stored(tenant: str) -> bool | None:
    found = platform().tenant_store.get(tenant)
    assert found is not None
    return found.tiers_stored


def test_a_balance_read_looks_for_no_tier_version_in_a_brand_that_never_stored_one(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a brand without tiers (its registry item says so from its registration)
    member = api.enrol(admin_key)
    api.earn(admin_key, member, "p-1", points=10_000)
    queries = TierQueries(monkeypatch)

    # When the balance is read
    balance = api.balance(admin_key, member)

    # Then no tier version was looked for, and the member has no tier
    assert tiers_stored("acme") is False
    assert queries.tenants == []
    assert (balance["available"], balance["tier"], balance["tier_status"]) == (10_000, None, None)


def test_storing_a_tier_version_marks_its_own_tenant_only_and_balance_reads_then_query(
    api: Api, admin_key: str, other_admin_key: str, program: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given acme stored a tier version (the program fixture) and globex none
    member = api.enrol(admin_key)
    other = api.enrol(other_admin_key)
    assert api.earn(admin_key, member, "p-1", points=600).status == 201
    assert api.earn(other_admin_key, other, "p-1", points=600).status == 201
    queries = TierQueries(monkeypatch)

    # When both brands read a balance
    mine, theirs = api.balance(admin_key, member), api.balance(other_admin_key, other)

    # Then acme's registry item is marked and its read found the tier; globex's is not, and
    # its read looked for nothing
    assert (tiers_stored("acme"), tiers_stored("globex")) == (True, False)
    assert queries.tenants == ["acme"]
    assert (mine["tier"], mine["tier_status"]["tier"]) == ("silver", "silver")
    assert (theirs["tier"], theirs["tier_status"]) == (None, None)


def test_a_tenant_registered_before_the_mark_is_kept_still_has_its_tiers_looked_for(
    api: Api, admin_key: str, program: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a brand with tiers whose registry item has no mark (registered before it was kept)
    from chalicelib.persistence.control import tenant_pk

    member = api.enrol(admin_key)
    assert api.earn(admin_key, member, "p-1", points=600).status == 201
    tenant = platform().control.tenant
    tenant(pk=tenant_pk("acme"), sk="#TENANT").update(actions=[tenant.tiers_stored.remove()])
    assert tiers_stored("acme") is None
    queries = TierQueries(monkeypatch)

    # When the balance is read
    balance = api.balance(admin_key, member)

    # Then the version in force is looked for (unknown is not "none"), and the tier shows
    assert queries.tenants == ["acme"]
    assert balance["tier_status"]["tier"] == "silver"
