"""Program insights reconcile with the ledger: after a randomised history (earns, orders,
redeems, rewards, coupon uses, reversals, expiries, adjustments, activities, transfers, paid
plans, tier changes, referrals, challenge completions, an erasure), every figure the API answers
is computed again here from the members' ledgers, balances, coupons, referrals, subscriptions and
events, on both emulators; and the what-if earns recent orders again as their earns did."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain.jobs import JobName
from chalicelib.services import platform
from tests.support.http import Api

TZ = ZoneInfo("Europe/Helsinki")


def later() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=6)  # past the feed's settle window


def fold(tenant: str = "acme") -> dict[str, int]:
    return platform().for_registered_tenant(tenant, clock=later).jobs.run(JobName.FOLD_INSIGHTS).counts


def get(api: Api, key: str, path: str, **headers: str) -> Any:
    reply = api.call("GET", path, key=key, headers=headers)
    assert reply.status == 200, reply
    return reply.body


def rate(numerator: int | Decimal, denominator: int | Decimal) -> str | None:
    if not denominator:
        return None
    return format((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.000001")), "f")


def lots_by_month(members: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Available points by local month of expiry, pending points by month of maturity."""
    ledger = platform().for_registered_tenant("acme")._ledger
    expiring: Counter[str] = Counter()
    maturing: Counter[str] = Counter()
    for member in members:
        for lot in ledger.get_lots(member, consistent=True):
            if lot.matures_at is not None:
                maturing[lot.matures_at.astimezone(TZ).strftime("%Y-%m")] += lot.remaining
            elif lot.expires_at is not None:
                expiring[lot.expires_at.astimezone(TZ).strftime("%Y-%m")] += lot.remaining
    return {k: v for k, v in expiring.items() if v}, {k: v for k, v in maturing.items() if v}


RECONCILE_TIERS = {
    "metric": "points",
    "window": {"kind": "rolling_months", "months": 12},
    "grace_periods": 1,
    "tiers": [
        {"name": "silver", "threshold": "60", "multiplier": "1.5"},
        {"name": "gold", "threshold": "250", "multiplier": "2"},
    ],
}
RECONCILE_PLANS = [
    {"plan_id": "premium", "name": "Premium", "tier": "gold", "multiplier": "1.5", "join_bonus": 15},
    {"plan_id": "boost", "name": "Boost", "multiplier": "2"},
]


def history(api: Api, key: str, seed: int) -> tuple[list[str], list[str]]:
    """A random history over a few members (earns, orders, redeems, rewards, coupon uses,
    reversals, expiries, adjustments, activities, transfers, paid plans started and cancelled,
    tier changes, referrals, challenge completions and an erasure); returns the members and
    those erased."""
    rng = random.Random(seed)
    program = {
        "points_per_currency_unit": "1",
        "rounding": "floor",
        "expiry": {"kind": "fixed_period", "days": 1},
        "point_value": "0.01",
        "transfers": {"enabled": True, "minimum": 1, "daily_maximum": 100000},
    }
    assert api.call("PUT", "/v1/program", key=key, body=program).status == 200
    cap = {"name": "Daily cap", "kind": "earning_cap", "cap": 300, "per": "day"}
    assert api.call("POST", "/v1/program/rules", key=key, body=cap).status == 201
    for activity in ("review", "social_follow"):
        rule = {"name": activity, "kind": "activity", "activity": activity, "points": 30}
        assert api.call("POST", "/v1/program/rules", key=key, body=rule).status == 201
    assert api.call("PUT", "/v1/program/tiers", key=key, body=RECONCILE_TIERS).status == 200
    assert api.call("PUT", "/v1/program/plans", key=key, body={"plans": RECONCILE_PLANS}).status == 200
    referrals = {"referrer_points": 50, "referee_points": 20, "min_order_total": "20.00"}
    assert api.call("PUT", "/v1/program/referrals", key=key, body=referrals).status == 200
    start = datetime.now(UTC)
    window = {"starts_at": (start - timedelta(days=1)).isoformat(), "ends_at": (start + timedelta(days=1)).isoformat()}
    challenge = {"name": "Two orders", "kind": "orders", "goal": 2, "reward_points": 40, **window}
    assert api.call("POST", "/v1/challenges", key=key, body=challenge).status == 201
    reward = api.call(
        "POST",
        "/v1/rewards",
        key=key,
        body={"name": "Coffee", "type": "fixed_discount", "amount": "5.00", "points_cost": 20},
    )
    assert reward.status == 201, reward
    reward_id = reward.body["id"]
    members = [api.enrol(key) for _ in range(rng.randint(3, 5))]
    codes = {m: get(api, key, f"/v1/members/{m}")["referral_code"] for m in members[:2]}
    members += [api.enrol(key, referral_code=codes[rng.choice(list(codes))]) for _ in range(rng.randint(1, 3))]
    erased: list[str] = []
    placed: list[tuple[str, str]] = []
    coupons: list[str] = []  # issued and not used yet
    kinds = ["earn", "order", "order", "redeem", "reward", "use", "reverse", "adjust", "activity", "transfer", "plan"]
    for n in range(48):
        if n == 15:  # points wait out a return window, and expire in a year
            program |= {"pending_days": 3, "expiry": {"kind": "fixed_period", "days": 400}}
            assert api.call("PUT", "/v1/program", key=key, body=program).status == 200
        if n == 32:  # points never expire
            program |= {"pending_days": 0, "expiry": {"kind": "none"}}
            assert api.call("PUT", "/v1/program", key=key, body=program).status == 200
        if n == 40:  # a member is erased (their points forfeited); nothing more happens to them
            gone = rng.choice(members[2:])  # not a referrer: their referrals are read below
            reply = api.call("POST", f"/v1/members/{gone}/erase", key=key, idempotency_key=f"x-{n}")
            assert reply.status in (200, 201), reply
            erased.append(gone)
        alive = [m for m in members if m not in erased]
        member = rng.choice(alive)
        kind = rng.choice(kinds)
        if kind == "earn":
            api.earn(key, member, f"e-{n}", points=rng.randint(1, 200))
        elif kind == "order":
            order = {"id": f"o-{n}", "total": f"{rng.randint(5, 90)}.{rng.randint(0, 99):02d}", "currency": "EUR"}
            api.call("POST", f"/v1/members/{member}/earn", key=key, idempotency_key=f"o-{n}", body={"order": order})
            placed.append((member, f"o-{n}"))
        elif kind == "redeem":
            api.redeem(key, member, f"r-{n}", points=rng.randint(1, 60))
        elif kind == "reward":
            path = f"/v1/members/{member}/rewards/{reward_id}/redeem"
            if (reply := api.call("POST", path, key=key, idempotency_key=f"w-{n}")).status == 201:
                coupons.append(reply.body["coupon"]["code"])
        elif kind == "use" and coupons:
            code = coupons.pop(rng.randrange(len(coupons)))
            use_coupon(api, key, code, f"u-{n}")
        elif kind == "reverse" and placed:
            member, reference = rng.choice(placed)
            body = {"reference": reference, "points": rng.randint(1, 20)}
            api.call("POST", f"/v1/members/{member}/reverse", key=key, idempotency_key=f"v-{n}", body=body)
        elif kind == "adjust":
            body = {"points": rng.randint(1, 40), "reason": "goodwill"}
            api.call("POST", f"/v1/members/{member}/adjust", key=key, idempotency_key=f"a-{n}", body=body)
        elif kind == "transfer" and len(alive) > 1:
            to = rng.choice([m for m in alive if m != member])
            body = {"to": {"member_id": to}, "points": rng.randint(1, 30)}
            api.call("POST", f"/v1/members/{member}/transfers", key=key, idempotency_key=f"t-{n}", body=body)
        elif kind == "plan":
            subscriptions = get(api, key, f"/v1/members/{member}/subscriptions")["data"]
            active = [s for s in subscriptions if s["status"] == "active"]
            if active and rng.random() < 0.5:
                path = f"/v1/members/{member}/subscriptions/{active[0]['id']}/cancel"
                assert api.call("POST", path, key=key, idempotency_key=f"c-{n}").status == 200
            elif not active:
                now = datetime.now(UTC)
                body = {
                    "plan_id": rng.choice(["premium", "boost"]),
                    "period_start": (now - timedelta(minutes=1)).isoformat(),
                    "period_end": (now + timedelta(days=30)).isoformat(),
                    "reference": f"inv-{n}",
                }
                reply = api.call(
                    "POST", f"/v1/members/{member}/subscriptions", key=key, body=body, idempotency_key=f"p-{n}"
                )
                assert reply.status == 201, reply
        else:
            body = {"type": rng.choice(["review", "social_follow"]), "reference": f"rv-{n}"}
            api.call("POST", f"/v1/members/{member}/activities", key=key, idempotency_key=f"y-{n}", body=body)
        if n == 13:  # some points expire: the job settles what is due two days on
            run = (
                platform()
                .for_registered_tenant("acme")
                .jobs.run(JobName.EXPIRE_POINTS, datetime.now(UTC) + timedelta(days=2))
            )
            assert run.counts["members"] >= 0
    if coupons:  # a coupon used, and its use replayed (counted once)
        use_coupon(api, key, coupons[0], "u-last")
        use_coupon(api, key, coupons[0], "u-last")
    # A referee who has not ordered yet subscribes to the plan granting gold (an upgrade), and
    # cancels it (a downgrade)
    newcomer = api.enrol(key, referral_code=codes[members[0]])
    members.append(newcomer)
    now = datetime.now(UTC)
    body = {
        "plan_id": "premium",
        "period_start": (now - timedelta(minutes=1)).isoformat(),
        "period_end": (now + timedelta(days=30)).isoformat(),
        "reference": "inv-last",
    }
    started = api.call("POST", f"/v1/members/{newcomer}/subscriptions", key=key, body=body, idempotency_key="p-last")
    assert started.status == 201, started
    path = f"/v1/members/{newcomer}/subscriptions/{started.body['subscription']['id']}/cancel"
    assert api.call("POST", path, key=key, idempotency_key="c-last").status == 200
    return members, erased


ENDED = ("subscription.lapsed", "subscription.cancelled")


def money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01"), ROUND_HALF_EVEN), "f")


def feed_events() -> list[dict[str, Any]]:
    """Every event of the tenant's feed, as GET /v1/events answers them (past the settle window)."""
    from chalicelib.api.presenters.events import event as present

    feed = platform().for_registered_tenant("acme", clock=later).feed
    events, cursor = [], None
    while True:
        page = feed.read(after=cursor, types=frozenset(), limit=100)
        events += [present(event).model_dump(mode="json") for event in page.events]
        if not page.events:
            return events
        cursor = page.next_cursor


def use_coupon(api: Api, key: str, code: str, idempotency_key: str) -> None:
    body = {"reference": f"till-{idempotency_key}"}
    reply = api.call("POST", f"/v1/coupons/{code}/use", key=key, idempotency_key=idempotency_key, body=body)
    assert reply.status == 200, reply


def coupon_statuses(api: Api, key: str, members: list[str]) -> Counter[str]:
    """The members' coupons by status, as the API answers them."""
    statuses: Counter[str] = Counter()
    for member in members:
        statuses.update(coupon["status"] for coupon in get(api, key, f"/v1/members/{member}/coupons?limit=100")["data"])
    return statuses


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_the_figures_reconcile_with_the_ledger(api: Api, admin_key: str, seed: int) -> None:
    # Given a random history, folded
    members, erased = history(api, admin_key, seed)
    alive = [member for member in members if member not in erased]
    first = fold()
    assert first["events"] > 0

    # When the figures are read
    today = datetime.now(UTC).astimezone(TZ).date().isoformat()
    summary = get(api, admin_key, f"/v1/insights/summary?from=2026-01-01&to={today}")
    liability = get(api, admin_key, "/v1/insights/liability")

    # Then each is what the ledgers and balances say (an erased member's ledger is kept, its
    # points forfeited by an adjustment)
    entries = [entry for member in members for entry in api.ledger(admin_key, member)]
    balances = [api.balance(admin_key, member) for member in alive]
    by_type: Counter[str] = Counter()
    for entry in entries:
        by_type[entry["type"]] += entry["points"]
    orders = [e for e in entries if e["type"] == "earn" and e["breakdown"] and e["breakdown"][0]["source"] == "base"]
    revenue = sum((Decimal(e["amount"]) for e in orders), Decimal(0))
    active = {e["member_id"] for e in entries if e["type"] in ("earn", "redeem")}
    redeemers = {e["member_id"] for e in entries if e["type"] == "redeem"}
    available = sum(b["available"] for b in balances)
    pending = sum(b["pending"] for b in balances)

    assert summary["members"] == {
        "total": len(members),
        "enrolled": len(members),
        "active_30d": len(active),
        "active_90d": len(active),
    }
    assert summary["points"] == {
        "issued": by_type["earn"],
        "redeemed": -by_type["redeem"],
        "expired": -by_type["expire"],
        "reversed": -by_type["reverse"],
        "adjusted": by_type["adjust"],
    }
    assert summary["redemption"] == {
        "rate": rate(-by_type["redeem"], by_type["earn"]),
        "active_redeemer_share": rate(len(redeemers), len(active)),
    }
    assert summary["orders"]["count"] == len(orders)
    assert Decimal(summary["orders"]["revenue"]) == revenue
    assert summary["orders"]["repeat_rate"] == rate(
        sum(1 for e in orders if any(o["member_id"] == e["member_id"] and o["id"] < e["id"] for o in orders)),
        len(orders),
    )
    activities = Counter(e["metadata"]["activity"] for e in entries if e["metadata"].get("activity"))
    assert summary["activities"] == dict(sorted(activities.items()))
    rewards = Counter(
        e["metadata"]["reward_id"] for e in entries if e["type"] == "redeem" and "reward_id" in e["metadata"]
    )
    assert [(r["reward_id"], r["count"]) for r in summary["rewards"]["redemptions"]] == sorted(
        rewards.items(), key=lambda item: (-item[1], item[0])
    )
    statuses = coupon_statuses(api, admin_key, members)
    assert statuses["used"] > 0  # the history used coupons
    assert summary["rewards"]["coupons"] == {
        "issued": sum(statuses.values()),
        "cancelled": statuses["cancelled"],
        "used": statuses["used"],
    }
    assert summary["liability"]["available"] == {"points": available, "value": f"{Decimal(available) / 100:.2f}"}
    assert summary["liability"]["pending"]["points"] == pending

    # And the orders' figures: count, revenue, average order value, per member, lifetime value
    assert summary["orders"]["aov"] == (money(revenue / len(orders)) if orders else None)
    assert summary["orders"]["per_member"] == rate(len(orders), len(members))
    assert summary["clv"] == money(revenue / len(members))

    # And the tier mix is the members' tiers as their balances show them, and the upgrades and
    # downgrades are the tier.changed events (earns, paid plans started and ended)
    assert summary["tiers"]["mix"] == dict(sorted(Counter(b["tier"] for b in balances if b["tier"]).items()))
    events = feed_events()
    changes = Counter(e["data"]["direction"] for e in events if e["type"] == "tier.changed")
    assert (summary["tiers"]["upgrades"], summary["tiers"]["downgrades"]) == (changes["upgrade"], changes["downgrade"])

    # And referrals are the members enrolled with a code and the referrals completed
    referrals = [r for member in members[:2] for r in get(api, admin_key, f"/v1/members/{member}/referrals")["data"]]
    completed = sum(1 for r in referrals if r["status"] == "completed")
    assert summary["referrals"] == {
        "codes_used": len(referrals),
        "completed": completed,
        "conversion": rate(completed, len(referrals)),
    }

    # And paid plans are the members' subscriptions active now, and the subscriptions started and
    # ended (an erased member's are told by their events; the others' answer the same)
    subscriptions = [s for m in alive for s in get(api, admin_key, f"/v1/members/{m}/subscriptions")["data"]]
    plan_events = [e for e in events if e["type"].startswith("subscription.")]
    started = {e["data"]["subscription_id"] for e in plan_events if e["type"] == "subscription.started"}
    ended = {e["data"]["subscription_id"] for e in plan_events if e["type"] in ENDED}
    assert {s["id"] for s in subscriptions} <= started
    assert {s["id"] for s in subscriptions if s["status"] != "active"} == {s["id"] for s in subscriptions} & ended
    assert summary["plans"] == {
        "active": sum(1 for s in subscriptions if s["status"] == "active"),
        "started": len(started),
        "lapsed": len(ended),
    }

    # And the what-if of the program in force earns the orders again as they were earned (tier,
    # plan and campaign shares, challenge rewards, the daily cap): what they earned, under both
    same = {"points_per_currency_unit": "1", "rounding": "floor"}
    what_if = api.call("POST", "/v1/insights/what-if", key=admin_key, body={"program": same, "days": 1})
    assert what_if.status == 200, what_if
    earned = sum(e["points"] for e in orders)
    assert what_if.body["orders"] == len(orders)
    assert what_if.body["points_issued"] == {"current": earned, "draft": earned, "difference": 0}
    assert what_if.body["tier_mix"] == {
        "current": summary["tiers"]["mix"],
        "draft": summary["tiers"]["mix"],
        "moved": 0,
    }

    # And the liability, summed over expiry months and what never expires, is the members' balances,
    # each month holding what the members' lots say
    months = liability["available"]["by_expiry_month"]
    assert liability["available"]["points"] == available
    assert sum(m["points"] for m in months) + liability["available"]["without_expiry"]["points"] == available
    assert liability["pending"]["points"] == pending
    expiring, maturing = lots_by_month(members)
    assert {m["month"]: m["points"] for m in months} == expiring
    assert {m["month"]: m["points"] for m in liability["pending"]["by_maturity_month"]} == maturing
    assert all(m["value"] == f"{Decimal(m['points']) / 100:.2f}" for m in months)

    # And breakage is what expired over what was earned to expire by the period's end
    soon = (datetime.now(UTC).astimezone(TZ).date() + timedelta(days=3)).isoformat()
    breakage = get(api, admin_key, f"/v1/insights/summary?from=2026-01-01&to={soon}")["breakage"]
    due = sum(
        e["points"]
        for e in entries
        if e["type"] == "earn"
        and e["expires_at"]
        and datetime.fromisoformat(e["expires_at"]).astimezone(TZ).date().isoformat() <= soon
    )
    assert breakage == {"rate": rate(-by_type["expire"], due), "expired": -by_type["expire"], "issued_matured": due}

    # And the day's point of the time series is the period's figure; the CSV says the same
    series = get(api, admin_key, f"/v1/insights/timeseries?metric=points_issued&interval=day&from={today}&to={today}")
    assert series["points"] == [{"period": today, "value": by_type["earn"]}]
    as_csv = get(api, admin_key, f"/v1/insights/timeseries?metric=points_issued&from={today}&to={today}&format=csv")
    assert as_csv.splitlines() == ["period,value", f"{today},{by_type['earn']}"]
    accepted = get(api, admin_key, f"/v1/insights/timeseries?from={today}&to={today}", Accept="text/csv")
    assert accepted == as_csv
    liability_series = get(api, admin_key, f"/v1/insights/timeseries?metric=liability&from={today}&to={today}")
    assert liability_series["points"][0]["value"] == available + pending

    # And this month's cohort is every member, active as the ledger says
    month = today[:7]
    cohorts = get(api, admin_key, f"/v1/insights/cohorts?from={month}&to={month}")
    assert cohorts["cohorts"] == [
        {
            "month": month,
            "size": len(members),
            "active": [{"month": month, "members": len(active), "share": rate(len(active), len(members))}],
        }
    ]

    # When the fold runs again, nothing is counted twice
    again = fold()
    assert again["events"] == 0
    assert get(api, admin_key, f"/v1/insights/summary?from=2026-01-01&to={today}") == summary


def test_the_tier_mix_counts_the_tier_members_hold_and_no_erased_member(api: Api, admin_key: str) -> None:
    # Given tiers (silver from 60 points), a plan granting gold, and a plan multiplying points
    program = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    assert api.call("PUT", "/v1/program/tiers", key=admin_key, body=RECONCILE_TIERS).status == 200
    assert api.call("PUT", "/v1/program/plans", key=admin_key, body={"plans": RECONCILE_PLANS}).status == 200
    ada, bea, cy = api.enrol(admin_key), api.enrol(admin_key), api.enrol(admin_key)
    now = datetime.now(UTC)

    def subscribe(member: str, plan_id: str) -> None:
        body = {
            "plan_id": plan_id,
            "period_start": (now - timedelta(minutes=1)).isoformat(),
            "period_end": (now + timedelta(days=30)).isoformat(),
            "reference": f"inv-{member}",
        }
        reply = api.call(
            "POST", f"/v1/members/{member}/subscriptions", key=admin_key, body=body, idempotency_key=member
        )
        assert reply.status == 201, reply

    # And ada and bea earn silver, bea subscribes to boost, cy to the plan granting gold
    assert api.earn(admin_key, ada, "e-ada", points=100).status == 201
    assert api.earn(admin_key, bea, "e-bea", points=100).status == 201
    subscribe(bea, "boost")
    subscribe(cy, "premium")
    fold()
    # When bea is erased
    assert api.call("POST", f"/v1/members/{bea}/erase", key=admin_key, idempotency_key="x").status in (200, 201)
    fold()

    # Then the mix is the tiers the members hold as their balances show them (cy's plan's gold),
    # without bea, whose plan no longer counts as active either
    summary = get(api, admin_key, "/v1/insights/summary")
    assert [api.balance(admin_key, m)["tier"] for m in (ada, cy)] == ["silver", "gold"]
    assert summary["tiers"] == {"mix": {"gold": 1, "silver": 1}, "upgrades": 3, "downgrades": 0}
    assert summary["plans"] == {"active": 1, "started": 2, "lapsed": 0}


def test_a_commit_from_a_stale_checkpoint_counts_nothing(api: Api, admin_key: str) -> None:
    # Given a folded enrolment
    api.enrol(admin_key)
    assert fold()["events"] == 1
    services = platform().for_registered_tenant("acme", clock=later)
    store = services._insight_store
    before = store.now()

    # When an overlapping run, which read the feed from the start, commits its batch
    from chalicelib.domain.insights import Batch

    batch = Batch()
    batch.add(("now", ""), "members", 1)
    committed = store.commit(batch, owner="someone", previous=None, cursor="x", now=later())

    # Then it is refused and the figures are unchanged
    assert committed is False
    assert store.now() == before


def test_point_value_is_a_program_setting_kept_with_it(api: Api, admin_key: str) -> None:
    program = {"points_per_currency_unit": "1", "rounding": "floor", "point_value": "0.005"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).body["point_value"] == "0.005"
    assert get(api, admin_key, "/v1/program")["point_value"] == "0.005"
    default = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=default).body["point_value"] == "0"


def test_a_page_too_large_for_one_transaction_is_committed_in_parts(api: Api, admin_key: str) -> None:
    # Given 45 members enrolled and earning (90 events: more rows than one transaction holds)
    members = [api.enrol(admin_key) for _ in range(45)]
    for n, member in enumerate(members):
        assert api.earn(admin_key, member, f"e-{n}", points=n + 1).status == 201

    # When the fold runs
    run = fold()

    # Then it took several commits, and every event counts once
    assert run["events"] == 90 and run["commits"] > 1
    summary = get(api, admin_key, "/v1/insights/summary")
    assert summary["members"]["total"] == 45 and summary["members"]["active_30d"] == 45
    assert summary["points"]["issued"] == sum(range(1, 46))
    assert summary["liability"]["available"]["points"] == sum(range(1, 46))
    weekly = get(api, admin_key, "/v1/insights/timeseries?metric=active_members&interval=month")
    assert weekly["points"][-1]["value"] == 45


def test_what_if_earns_the_recent_orders_again_under_a_draft_program(api: Api, admin_key: str) -> None:
    # Given a program of 1 point per euro, a coffee rule, and three orders (lines, discount, shipping)
    program = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    rule = {"name": "Coffee x2", "kind": "line_multiplier", "factor": "2", "categories": ["coffee"]}
    assert api.call("POST", "/v1/program/rules", key=admin_key, body=rule).status == 201
    member = api.enrol(admin_key)
    orders = [
        {"id": "o-1", "total": "30.00", "currency": "EUR"},
        {
            "id": "o-2",
            "total": "25.00",
            "currency": "EUR",
            "shipping": "5.00",
            "lines": [
                {"sku": "beans", "category": "coffee", "quantity": 2, "unit_price": "8.00"},
                {"sku": "mug", "quantity": 1, "unit_price": "6.00"},
            ],
        },
        {
            "id": "o-3",
            "total": "12.50",
            "currency": "EUR",
            "discount": "0.50",
            "lines": [{"sku": "beans", "category": "coffee", "quantity": 1, "unit_price": "13.00"}],
        },
    ]
    issued = 0
    for order in orders:
        reply = api.call(
            "POST", f"/v1/members/{member}/earn", key=admin_key, idempotency_key=order["id"], body={"order": order}
        )
        assert reply.status == 201, reply
        issued += reply.body["transaction"]["points"]
    fold()

    # When the brand asks what 3 points per euro, shipping earning too, would have issued
    draft = {"points_per_currency_unit": "3", "rounding": "floor", "earn_on_shipping": True}
    reply = api.call("POST", "/v1/insights/what-if", key=admin_key, body={"program": draft, "days": 7})

    # Then the orders are earned again under both, from what each entry recorded of its order: the
    # draft's points are what the preview says once the draft is the program
    assert reply.status == 200, reply
    assert api.call("GET", "/v1/program", key=admin_key).body["points_per_currency_unit"] == "1"  # nothing stored
    assert api.call("PUT", "/v1/program", key=admin_key, body=draft).status == 200
    previews = [api.call("POST", "/v1/program/preview", key=admin_key, body={"order": o}) for o in orders]
    draft_points = sum(p.body["points"] for p in previews)
    assert reply.body["orders"] == 3
    assert reply.body["points_issued"] == {
        "current": issued,
        "draft": draft_points,
        "difference": draft_points - issued,
    }
    assert draft_points > 3 * issued
    assert reply.body["liability"] == {"current": issued, "draft": draft_points, "difference": draft_points - issued}


WHAT_IF_TIERS = {
    "metric": "points",
    "window": {"kind": "rolling_months", "months": 12},
    "grace_periods": 1,
    "tiers": [
        {"name": "silver", "threshold": "100", "multiplier": "1.5"},
        {"name": "gold", "threshold": "1000", "multiplier": "2"},
    ],
}


def test_what_if_earns_each_order_as_its_earn_did_tiers_plans_segments_milestones_and_caps(
    api: Api, admin_key: str
) -> None:
    # Given 1 point per euro, tiers (silver from 100 points, x1.5), a daily cap of 600 points, a
    # milestone on the 3rd order, a x3 campaign for the vip segment and a x2 paid plan
    program = {"points_per_currency_unit": "1", "rounding": "floor"}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    assert api.call("PUT", "/v1/program/tiers", key=admin_key, body=WHAT_IF_TIERS).status == 200
    rules = [
        {"name": "Daily cap", "kind": "earning_cap", "cap": 600, "per": "day"},
        {"name": "Third order", "kind": "milestone", "at": 3, "points": 25},
        {"name": "VIP x3", "kind": "order_multiplier", "factor": "3", "segments": ["vip"]},
    ]
    for rule in rules:
        assert api.call("POST", "/v1/program/rules", key=admin_key, body=rule).status == 201
    boost = {"plan_id": "boost", "name": "Boost", "multiplier": "2"}
    assert api.call("PUT", "/v1/program/plans", key=admin_key, body={"plans": [boost]}).status == 200
    ada, bea, cy = api.enrol(admin_key), api.enrol(admin_key), api.enrol(admin_key, segments=["vip"])
    now = datetime.now(UTC)
    subscription = {
        "plan_id": "boost",
        "period_start": (now - timedelta(minutes=1)).isoformat(),
        "period_end": (now + timedelta(days=30)).isoformat(),
        "reference": "inv-1",
    }
    reply = api.call("POST", f"/v1/members/{bea}/subscriptions", key=admin_key, body=subscription, idempotency_key="s")
    assert reply.status == 201, reply

    # And orders: ada's second upgrades her to silver (it earned before the upgrade), her third
    # reaches the milestone, her fourth is cut by the cap; bea's earns the plan's share and
    # upgrades her; cy's earns the vip campaign
    def order(member: str, order_id: str, total: str) -> dict[str, Any]:
        body = {"order": {"id": order_id, "total": total, "currency": "EUR"}}
        reply = api.earn(admin_key, member, order_id, **body)
        assert reply.status == 201, reply
        return dict(reply.body["transaction"])

    earned = [
        order(ada, "a-1", "80.00"),
        order(ada, "a-2", "40.00"),
        order(ada, "a-3", "100.00"),
        order(ada, "a-4", "250.00"),
        order(bea, "b-1", "50.00"),
        order(cy, "c-1", "30.00"),
    ]
    assert [t["points"] for t in earned] == [80, 40, 175, 305, 100, 90]
    assert {s["source"] for s in earned[3]["breakdown"]} >= {"tier", "cap"}
    assert api.balance(admin_key, ada)["tier"] == "silver" and api.balance(admin_key, bea)["tier"] == "silver"
    fold()

    # When the brand asks what 2 points per euro would have issued
    draft = {"points_per_currency_unit": "2", "rounding": "floor"}
    reply = api.call("POST", "/v1/insights/what-if", key=admin_key, body={"program": draft, "days": 1})

    # Then the current figure is what the orders earned; under the draft ada still reaches the
    # daily cap (160 + 80 + 325 cut to 600 in all), bea earns 100 + 100, cy 60 + 120
    assert reply.status == 200, reply
    body = reply.body
    assert body["orders"] == 6
    assert body["points_issued"] == {"current": 790, "draft": 980, "difference": 190}
    # And cy's qualifying points (90 -> 180) cross silver's threshold; ada's and bea's stay silver
    assert body["tier_mix"] == {"current": {"silver": 2}, "draft": {"silver": 3}, "moved": 1}
