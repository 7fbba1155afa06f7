"""Who may call what, generated from the declared operations so that no route can escape it.

The matrix is built from ``chalicelib.api.routing.OPERATIONS`` (filled as ``app`` imports its
blueprints). Every refused request carries a *valid* request (path, body, Idempotency-Key),
so that if authentication or authorisation let it through it would really write; comparing
what the tenants hold before and after then proves the refusal wrote nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ulid import ULID

import app as application  # registers every blueprint, hence every operation
from chalicelib.api.routing import OPERATIONS, Operation
from chalicelib.domain.scopes import MemberScope
from chalicelib.jobs.imports import run_import
from chalicelib.jobs.provisioning import FUNCTION, PROVISIONING_QUEUE
from chalicelib.jobs.webhooks import dispatch_tenant
from chalicelib.persistence.factory import tenant_models
from chalicelib.services import platform, reset_platform
from tests.support.checks import assert_error, operator_state, tenant_state
from tests.support.http import OPERATOR_KEY, Api, Reply
from tests.support.receiver import webhook_environment

SCOPES = ("read", "write", "admin", "partner")
MEMBER_SCOPES = ("member:read", "member:redeem", "member:consents")
_PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass
class World:
    """Tenant A ("acme") with a funded member and keys of every scope; tenant B is separate."""

    api: Api
    admin: str
    keys: dict[str, str]  # label -> secret, e.g. "read", "write", "read+write"
    member_id: str
    external_id: str
    spare_key_id: str  # the key of tenant A that DELETE /v1/api-keys/{key_id} targets
    spare_key: str
    rule_id: str  # an earning rule of tenant A
    reward_id: str = ""  # a pool reward of tenant A, with codes left
    coupons: tuple[str, ...] = ()  # coupons of tenant A (use and cancel each consume one)
    webhook_id: str = ""  # a webhook of tenant A, with one delivery
    delivery_id: str = ""
    shopify_integration_id: str = ""  # a Shopify integration of tenant A
    subscription_id: str = ""  # the victim's paid subscription (SAMPLE_BODIES["record_subscription"])
    import_id: str = ""  # a bulk import of tenant A (landed)
    challenge_id: str = ""  # a challenge of tenant A
    transfer_id: str = ""  # a transfer of the victim's, reversed
    erasable_member_id: str = ""  # a member of tenant A that the erase route may erase (PATH_SAMPLES_OF)
    household_id: str = ""  # a household of tenant A: its owner, the victim (a member) and leavers
    household_owner: str = ""
    householders: tuple[str, ...] = ()  # members in no household, for the routes that add one
    # coalition partners: "coffee" (PATH_SAMPLES) and "books", whose key is keys["partner"]

    def usable_coupon(self) -> str:
        """The first sample coupon still issued (read directly: the tenant may be suspended)."""
        rewards = platform().for_tenant_id("acme").rewards
        for code in self.coupons:
            if rewards.coupon(code).status == "issued":
                return code
        raise AssertionError("every sample coupon is used up: issue more in the world fixture")

    def free_member(self) -> str:
        """The first sample member in no household (read directly: the tenant may be suspended)."""
        households = platform().for_tenant_id("acme").households
        for member in self.householders:
            if households.household_of(member) is None:
                return member
        raise AssertionError("every sample householder is in a household: enrol more in the world fixture")

    def household_leaver(self) -> str:
        """A member of the sample household who may leave it (neither its owner nor the victim)."""
        household = platform().for_tenant_id("acme").households.get(self.household_id)
        for membership in household.members:
            if membership.member_id not in (self.household_owner, self.member_id):
                return membership.member_id
        raise AssertionError("nobody left to leave the sample household: add more in the world fixture")


#: A sample value for every path parameter name, pointing at tenant A's objects.
PATH_SAMPLES: dict[str, Callable[[World], str]] = {
    "member_id": lambda world: world.member_id,
    "key_id": lambda world: world.spare_key_id,
    "tenant_id": lambda world: "acme",
    "job": lambda world: "expire-points",
    "rule_id": lambda world: world.rule_id,
    "reward_id": lambda world: world.reward_id,
    "code": lambda world: world.usable_coupon(),
    "webhook_id": lambda world: world.webhook_id,
    "delivery_id": lambda world: world.delivery_id,
    # commerce integrations
    "integration_id": lambda world: world.shopify_integration_id,
    # coalition partners: not the partner of world.keys["partner"] (that key may read only its own)
    "partner_id": lambda world: "coffee",
    # paid membership
    "subscription_id": lambda world: world.subscription_id,
    # bulk imports
    "import_id": lambda world: world.import_id,
    # challenges and badges
    "challenge_id": lambda world: world.challenge_id,
    # transfers
    "transfer_id": lambda world: world.transfer_id,
    # households
    "household_id": lambda world: world.household_id,
}

#: Sample values for one operation's path parameters, where the shared sample would not do.
PATH_SAMPLES_OF: dict[str, dict[str, Callable[[World], str]]] = {
    # privacy: the erasure erases its member, whom every later route would then answer 410
    "erase_member": {"member_id": lambda world: world.erasable_member_id},
    # households: a member leaves the sample household (the victim stays, for the role change)
    "remove_household_member": {"member_id": lambda world: world.household_leaver()},
}

#: Path parameters naming an object a tenant owns (another tenant addressing it must get 404).
OWNED_PATH_PARAMS = {"webhook_id", "delivery_id", "member_id", "key_id", "rule_id", "reward_id", "code"}
OWNED_PATH_PARAMS |= {"integration_id"}  # commerce integrations
OWNED_PATH_PARAMS |= {"partner_id"}  # coalition partners
OWNED_PATH_PARAMS |= {"subscription_id"}  # paid membership
OWNED_PATH_PARAMS |= {"import_id"}  # bulk imports
OWNED_PATH_PARAMS |= {"challenge_id"}  # challenges and badges
OWNED_PATH_PARAMS |= {"transfer_id"}  # transfers
OWNED_PATH_PARAMS |= {"household_id"}  # households

#: A valid body for every operation that takes one: the write it would do if let through (a
#: function of the world for a body naming objects that each call uses up).
SAMPLE_BODIES: dict[str, dict[str, Any] | Callable[[World], dict[str, Any]]] = {
    "create_api_key": {"name": "intruder", "scopes": ["admin"]},
    "create_member": {"name": "Intruder", "email": "intruder@example.com"},
    "update_member": {"name": "Renamed by an intruder", "marketing_consent": True},
    "earn_points": {"points": 1000, "reference": "intrusion"},
    "redeem_points": {"points": 1},
    "adjust_points": {"points": 5, "reason": "intrusion"},
    "put_program": {
        "points_per_currency_unit": "9",
        "rounding": "ceil",
        "transfers": {"enabled": True},
        "households": {"enabled": True, "max_members": 10},
    },
    "create_tenant": {"tenant_id": "intruder", "name": "Intruder", "currency": "EUR", "timezone": "UTC"},
    "run_job": {"as_of": "2030-01-01T00:00:00Z"},
    "reverse_points": {"reference": "funding-order", "points": 1},
    "add_rule": {"name": "Intruder x9", "kind": "order_multiplier", "factor": "9"},
    "preview": {"order": {"id": "o-1", "total": "10.00", "currency": "EUR"}},
    "create_reward": {"name": "Intruder gift", "type": "gift_card", "amount": "500", "points_cost": 1},
    "update_reward": {"name": "Renamed by an intruder", "points_cost": 1},
    "upload_reward_codes": {"codes": ["INTRUDER-CODE"]},
    "use_coupon": {"reference": "intrusion"},
    "create_webhook": {"url": "https://1.1.1.1/intruder", "events": ["*"]},
    "update_webhook": {"url": "https://1.1.1.1/intruder", "description": "intruder"},
    "record_activity": {"type": "review", "reference": "intrusion"},
    # tiers
    "put_tiers": {
        "metric": "points",
        "window": {"kind": "calendar_year"},
        "tiers": [{"name": "intruder", "threshold": "1", "multiplier": "10"}],
    },
    # commerce integrations
    "take_order_event": {
        "type": "paid",
        "event_id": "intrusion",
        "order": {"id": "intrusion", "total": "10.00", "currency": "EUR"},
        "customer": {"external_id": "victim-1"},
    },
    "create_shopify_integration": {"description": "intruder"},
    "rotate_shopify_secret": {},
    # coalition partners
    "create_partner": {"partner_id": "intruder", "name": "Intruder", "earn_rate": "9", "redeem_rate": "9"},
    "partner_earn": {"member": {"external_id": "victim-1"}, "points": 1000, "reference": "order-1"},
    "partner_redeem": {"member": {"external_id": "victim-1"}, "points": 1},
    "partner_reverse": {"member": {"external_id": "victim-1"}, "reference": "order-1", "points": 1},
    # referrals
    "put_referral_program": {"referrer_points": 100_000, "referee_points": 100_000},
    # paid membership: the world records this very period, so a repeat is "already_recorded" (201)
    "put_plans": {"plans": [{"plan_id": "intruder", "name": "Intruder", "multiplier": "10", "join_bonus": 1000}]},
    "record_subscription": {
        "plan_id": "club",
        "period_start": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "period_end": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "reference": "world-invoice",
    },
    # bulk imports: members with opening balances (one of them the victim's external id)
    "create_import": {"csv": "external_id,points,tier\nintruder-1,100000,\nvictim-1,100000,\n"},
    # a sandbox brand's test clock (tenant A's, a moment it has passed: allowed, it changes nothing)
    "advance_test_clock": {"to": "2020-01-01T00:00:00Z"},
    # challenges and badges
    "create_challenge": {
        "name": "Intruder",
        "kind": "orders",
        "goal": 1,
        "starts_at": "2020-01-01T00:00:00Z",
        "reward_points": 100_000,
    },
    "update_challenge": {"reward_points": 100_000},
    # transfers: the victim's points to the imported member
    "create_transfer": {"to": {"external_id": "imported-1"}, "points": 1},
    "reverse_transfer": {"reason": "intrusion"},
    "insights_what_if": {"program": {"points_per_currency_unit": "2", "rounding": "floor"}, "days": 7},
    # member access: a token that could spend the victim's points; origins of an intruder; consents
    "create_member_token": {"scopes": ["member:read", "member:redeem", "member:consents"], "lifetime_minutes": 60},
    "put_member_access": {"allowed_origins": ["https://intruder.example"]},
    "put_my_consents": {"marketing": True},
    # households: a household created for a member in none, a member added to the sample household,
    # the victim made a redeemer, a point of the owner's redeemed from the pool
    "create_household": lambda world: {"owner_member_id": world.free_member(), "name": "Intruders"},
    "add_household_member": lambda world: {"member_id": world.free_member(), "role": "member"},
    "change_household_role": {"role": "redeemer"},
    "redeem_from_household": lambda world: {"member_id": world.household_owner, "points": 1},
}

#: The access policy, pinned here so that a route declared with a weaker guard fails the suite:
#: the scope a tenant key needs, or "operator", or "public".
ACCESS: dict[str, str] = {
    "get_me": "read",
    "create_api_key": "admin",
    "list_api_keys": "admin",
    "revoke_api_key": "admin",
    "get_program": "read",
    "put_program": "admin",
    "create_member": "write",
    "list_members": "read",
    "get_member": "read",
    "update_member": "write",
    "earn_points": "write",
    "redeem_points": "write",
    "adjust_points": "admin",
    "get_balance": "read",
    "list_transactions": "read",
    "create_tenant": "operator",
    "list_tenants": "operator",
    "get_tenant": "operator",
    "suspend_tenant": "operator",
    "resume_tenant": "operator",
    "health": "public",
    "list_job_runs": "admin",
    "reverse_points": "write",
    "list_events": "read",
    "run_job": "admin",
    "add_rule": "admin",
    "list_rules": "read",
    "get_rule": "read",
    "end_rule": "admin",
    "preview": "read",
    "create_reward": "admin",
    "list_rewards": "read",
    "get_reward": "read",
    "update_reward": "admin",
    "upload_reward_codes": "admin",
    "redeem_reward": "write",
    "list_member_rewards": "read",
    "list_member_coupons": "read",
    "get_coupon": "read",
    "use_coupon": "write",
    "cancel_coupon": "write",
    "archive_reward": "admin",
    "create_webhook": "admin",
    "list_webhooks": "admin",
    "get_webhook": "admin",
    "update_webhook": "admin",
    "rotate_webhook_secret": "admin",
    "list_webhook_deliveries": "admin",
    "get_webhook_delivery": "admin",
    "redeliver_webhook_delivery": "admin",
    "delete_webhook": "admin",
    "record_activity": "write",
    # tiers
    "put_tiers": "admin",
    "list_tiers": "read",
    # commerce integrations ("signature": no key; the route verifies an HMAC of the raw body itself)
    "take_order_event": "write",
    "create_shopify_integration": "admin",
    "get_shopify_integration": "admin",
    "rotate_shopify_secret": "admin",
    "receive_shopify_webhook": "signature",
    # coalition partners ("partner": only a partner key, never admin)
    "create_partner": "admin",
    "list_partners": "admin",
    "get_partner": "admin",
    "get_partner_settlement": "admin",
    "partner_earn": "partner",
    "partner_redeem": "partner",
    "partner_reverse": "partner",
    # referrals
    "put_referral_program": "admin",
    "list_referral_programs": "read",
    "list_member_referrals": "read",
    "assign_referral_code": "write",
    # paid membership
    "put_plans": "admin",
    "list_plans": "read",
    "record_subscription": "write",
    "list_subscriptions": "read",
    "cancel_subscription": "write",
    # bulk imports and exports: admin only (bulk enrolment with balances and tiers; every
    # member's personal data and the whole ledger)
    "create_import": "admin",
    "list_imports": "admin",
    "get_import": "admin",
    "list_import_errors": "admin",
    "export_members": "admin",
    "export_ledger": "admin",
    "get_test_clock": "read",
    "advance_test_clock": "admin",
    # challenges and badges
    "create_challenge": "admin",
    "list_challenges": "read",
    "get_challenge": "read",
    "update_challenge": "admin",
    "list_member_challenges": "read",
    "list_member_badges": "read",
    "archive_challenge": "admin",
    # transfers
    "create_transfer": "write",
    "reverse_transfer": "admin",
    # the audit trail (every admin change of the tenant; the operator's changes of tenants) and consents
    "list_audit": "admin",
    "list_operator_audit": "operator",
    "list_member_consents": "read",
    # privacy: a member's whole data, and its erasure
    "export_member": "admin",
    "erase_member": "admin",
    # program insights: aggregate figures, no personal data
    "insights_summary": "read",
    "insights_timeseries": "read",
    "insights_liability": "read",
    "insights_cohorts": "read",
    "insights_what_if": "admin",
    # member access: minting a token lets it spend the member's points (write); the signing key and
    # the origins are the brand's settings (admin). The member API takes member tokens only.
    "create_member_token": "write",
    "revoke_member_tokens": "write",
    "get_member_access": "admin",
    "put_member_access": "admin",
    "rotate_member_token_key": "admin",
    "get_my_balance": "member:read",
    "list_my_expiring_points": "member:read",
    "list_my_transactions": "member:read",
    "list_my_rewards": "member:read",
    "redeem_my_reward": "member:redeem",
    "get_my_referral_code": "member:read",
    "get_my_consents": "member:read",
    "put_my_consents": "member:consents",
    # the member's own challenges and badges
    "list_my_challenges": "member:read",
    "list_my_badges": "member:read",
    # households: changes by the brand's backend (write), reads (read)
    "create_household": "write",
    "get_household": "read",
    "add_household_member": "write",
    "change_household_role": "write",
    "remove_household_member": "write",
    "redeem_from_household": "write",
}
#: Routes a partner key may also call, for its own partner only (the sample path names another).
PARTNER_READABLE = {"get_partner_settlement"}
#: POSTs that compute without writing (declared ``read_only``), pinned so a write cannot hide as one.
READ_ONLY_POSTS = {"preview", "insights_what_if"}
#: Chalice routes that are deliberately not declared operations (the document describing them,
#: the interactive reference page over it with its assets, and the brand console's static files):
#: public, like the document.
UNDECLARED_ROUTES = {
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/docs"),
    ("GET", "/v1/docs/{asset}"),
    ("GET", "/console"),
    ("GET", "/console/{asset}"),
}

#: Judged by the declaration *and* the pinned policy, so a route wrongly declared public is still tested.
TENANT_OPERATIONS = [op for op in OPERATIONS if op.auth == "tenant" or ACCESS.get(op.operation_id) in SCOPES]
OPERATOR_OPERATIONS = [op for op in OPERATIONS if op.auth == "operator" or ACCESS.get(op.operation_id) == "operator"]
#: Member routes (a member token, for the tenant of the path), judged by the declaration and the policy.
MEMBER_OPERATIONS = [op for op in OPERATIONS if op.auth == "member" or ACCESS.get(op.operation_id) in MEMBER_SCOPES]
#: Tenant routes that address one of the tenant's objects by id.
ADDRESSING_OPERATIONS = [op for op in TENANT_OPERATIONS if OWNED_PATH_PARAMS & set(_PATH_PARAM.findall(op.path))]


def route(op: Operation) -> str:
    return f"{op.method} /v1{op.path}"


def path_of(op: Operation, world: World) -> str:
    def sample(match: re.Match[str]) -> str:
        name = match.group(1)
        samples = {**PATH_SAMPLES, **PATH_SAMPLES_OF.get(op.operation_id, {})}
        if name not in samples:
            raise AssertionError(f"{route(op)}: no sample value for path parameter {{{name}}}; add it to PATH_SAMPLES")
        return samples[name](world)

    return "/v1" + _PATH_PARAM.sub(sample, op.path)


def send(world: World, op: Operation, *, key: str | None = None, authorization: str | None = None) -> Reply:
    """The operation's valid sample request, with the given credentials."""
    if op.body is not None and op.operation_id not in SAMPLE_BODIES:
        raise AssertionError(f"{route(op)}: no sample body; add one to SAMPLE_BODIES")
    headers = {"Authorization": authorization} if authorization is not None else None
    body = SAMPLE_BODIES.get(op.operation_id)
    return world.api.call(
        op.method,
        path_of(op, world),
        key=key,
        headers=headers,
        body=body(world) if callable(body) else body,
        idempotency_key=f"sec-{uuid.uuid4().hex}" if op.idempotency_key or op.optional_idempotency_key else None,
    )


def required_scope(op: Operation) -> str:
    """The scope the pinned policy requires (falls back to the declaration for a missing entry,
    which test_every_operation_has_a_security_case reports)."""
    return ACCESS.get(op.operation_id, str(op.scope))


def grants(scopes: set[str], required: str) -> bool:
    """The documented rule, restated independently: admin grants all but the partner routes; read,
    write and partner only themselves."""
    if required == "partner":
        return "partner" in scopes
    return "admin" in scopes or required in scopes


@pytest.fixture
def admin_key(api: Api) -> str:
    """Tenant A is a sandbox brand (its test clock at real time), so that its admin key may call
    every route, the test clock's too."""
    return api.create_tenant("acme", sandbox=True)


@pytest.fixture
def world(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, api: Api, admin_key: str) -> World:
    member = api.enrol(admin_key, external_id="victim-1", name="Victim", email="victim@example.com")
    funded = api.earn(admin_key, member, "funding", points=500, reference="funding-order")
    assert funded.status == 201, funded
    keys = {
        "read": api.create_key(admin_key, "read"),
        "write": api.create_key(admin_key, "write"),
        "read+write": api.create_key(admin_key, "read", "write"),
        "admin": admin_key,
    }
    spare = api.call("POST", "/v1/api-keys", key=admin_key, body={"name": "spare", "scopes": ["admin"]})
    assert spare.status == 201, spare
    rule = api.call(
        "POST", "/v1/program/rules", key=admin_key, body={"name": "x2", "kind": "order_multiplier", "factor": "2"}
    )
    assert rule.status == 201, rule
    review = {"name": "Review", "kind": "activity", "activity": "review", "points": 5}
    assert api.call("POST", "/v1/program/rules", key=admin_key, body=review).status == 201
    webhook_id, delivery_id = _webhook_with_a_delivery(request, monkeypatch, api, admin_key)
    shopify = api.call("POST", "/v1/integrations/shopify", key=admin_key, body={"description": "world"})
    assert shopify.status == 201, shopify
    reward_id, coupons = _reward_with_coupons(api, admin_key)
    for partner in ("coffee", "books"):
        body = {"partner_id": partner, "name": partner, "earn_rate": "1", "redeem_rate": "0.01"}
        assert api.call("POST", "/v1/partners", key=admin_key, body=body).status == 201
    bound = {"name": "books till", "scopes": ["partner"], "partner_id": "books"}
    partner_key = api.call("POST", "/v1/api-keys", key=admin_key, body=bound)
    assert partner_key.status == 201, partner_key
    keys["partner"] = partner_key.body["secret"]
    club = {"plans": [{"plan_id": "club", "name": "Club", "multiplier": "2"}]}
    assert api.call("PUT", "/v1/program/plans", key=admin_key, body=club).status == 200
    subscribed = api.call(
        "POST",
        f"/v1/members/{member}/subscriptions",
        key=admin_key,
        body=SAMPLE_BODIES["record_subscription"],
        idempotency_key="world-subscription",
    )
    assert subscribed.status == 201 and subscribed.body["outcome"] == "started", subscribed
    imported = api.call("POST", "/v1/imports", key=admin_key, body={"csv": "external_id,points\nimported-1,10\n"})
    assert imported.status == 202, imported
    run_import("acme", imported.body["id"], budget_seconds=None)
    challenge = api.call("POST", "/v1/challenges", key=admin_key, body=SAMPLE_BODIES["create_challenge"])
    assert challenge.status == 201, challenge
    transfer_id = _a_reversed_transfer(api, admin_key, member)
    erasable = api.enrol(admin_key, external_id="erasable-1", name="Erasable")
    household_id, household_owner, householders = _a_household(api, admin_key, member)
    return World(
        api=api,
        admin=admin_key,
        keys=keys,
        member_id=member,
        external_id="victim-1",
        spare_key_id=spare.body["id"],
        spare_key=spare.body["secret"],
        rule_id=rule.body["id"],
        reward_id=reward_id,
        coupons=coupons,
        webhook_id=webhook_id,
        delivery_id=delivery_id,
        shopify_integration_id=shopify.body["id"],
        subscription_id=subscribed.body["subscription"]["id"],
        import_id=imported.body["id"],
        challenge_id=challenge.body["id"],
        transfer_id=transfer_id,
        erasable_member_id=erasable,
        household_id=household_id,
        household_owner=household_owner,
        householders=householders,
    )


def _webhook_with_a_delivery(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, api: Api, admin_key: str
) -> tuple[str, str]:
    """A webhook of tenant A and one recorded delivery (dispatched, never sent: no drain)."""
    webhook_environment(request, monkeypatch)
    hook = api.call("POST", "/v1/webhooks", key=admin_key, body={"url": "https://1.1.1.1/hooks", "events": ["*"]})
    assert hook.status == 201, hook
    api.enrol(admin_key, name="Webhook subject")  # an event, without touching the victim's balance
    dispatch_tenant("acme", clock=lambda: datetime.now(UTC) + timedelta(seconds=6), drain=False)
    logged = api.call("GET", f"/v1/webhooks/{hook.body['id']}/deliveries", key=admin_key)
    assert logged.status == 200 and len(logged.body["data"]) == 1, logged
    return hook.body["id"], logged.body["data"][0]["id"]


def _reward_with_coupons(api: Api, admin_key: str) -> tuple[str, tuple[str, ...]]:
    """A pool reward of tenant A with codes left, and coupons of it held by another member."""
    body = {"name": "Cinema", "type": "experience", "points_cost": 10, "codes": "pool"}
    reward = api.call("POST", "/v1/rewards", key=admin_key, body=body)
    assert reward.status == 201, reward
    codes = {"codes": [f"WORLD-{i:04d}" for i in range(14)]}
    assert api.call("POST", f"/v1/rewards/{reward.body['id']}/codes", key=admin_key, body=codes).status == 201
    holder = api.enrol(admin_key, name="Coupon holder")
    assert api.earn(admin_key, holder, "holder-funding", points=1000).status == 201
    coupons = []
    for i in range(8):
        path = f"/v1/members/{holder}/rewards/{reward.body['id']}/redeem"
        redeemed = api.call("POST", path, key=admin_key, idempotency_key=f"holder-{i}")
        assert redeemed.status == 201, redeemed
        coupons.append(redeemed.body["coupon"]["code"])
    return reward.body["id"], tuple(coupons)


def _a_reversed_transfer(api: Api, admin_key: str, victim: str) -> str:
    """Transfers allowed by the program, and one of the victim's, reversed (so its balance is unchanged
    and every reversal call answers that reversal)."""
    program = {"points_per_currency_unit": "1", "rounding": "floor", "transfers": {"enabled": True}}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    taker = api.enrol(admin_key, name="Taker")
    body = {"to": {"member_id": taker}, "points": 50}
    sent = api.call("POST", f"/v1/members/{victim}/transfers", key=admin_key, body=body, idempotency_key="world-gift")
    assert sent.status == 201, sent
    reverse = f"/v1/members/{victim}/transfers/{sent.body['id']}/reverse"
    assert api.call("POST", reverse, key=admin_key, body={}).status == 201
    return str(sent.body["id"])


def _a_household(api: Api, admin_key: str, victim: str) -> tuple[str, str, tuple[str, ...]]:
    """Households allowed (as the program sample keeps them); a household whose funded owner has the
    victim (a member) and three members who may leave; and eight members in no household."""
    program = {
        "points_per_currency_unit": "1",
        "rounding": "floor",
        "transfers": {"enabled": True},
        "households": {"enabled": True, "max_members": 10},
    }
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    owner = api.enrol(admin_key, name="Household owner")
    assert api.earn(admin_key, owner, "household-funding", points=100).status == 201
    created = api.call("POST", "/v1/households", key=admin_key, body={"owner_member_id": owner})
    assert created.status == 201, created
    household = created.body["id"]
    for member in (victim, *(api.enrol(admin_key, name=f"Leaver {i}") for i in range(3))):
        body = {"member_id": member, "role": "member"}
        assert api.call("POST", f"/v1/households/{household}/members", key=admin_key, body=body).status == 201
    return household, owner, tuple(api.enrol(admin_key, name=f"Householder {i}") for i in range(8))


@pytest.fixture
def unchanged(world: World) -> Iterator[Callable[[str], None]]:
    """``unchanged(why)`` asserts tenant A and the registry hold exactly what they held at the start."""
    before = (tenant_state(world.api, world.admin), operator_state(world.api))

    def check(why: str) -> None:
        after = (tenant_state(world.api, world.admin), operator_state(world.api))
        assert after[0] == before[0], f"{why}: tenant A's data changed"
        assert after[1] == before[1], f"{why}: the tenant registry changed"

    yield check


# --- the matrix covers every operation --------------------------------------------------------


def test_every_operation_has_a_security_case() -> None:
    assert len(TENANT_OPERATIONS) >= 15 and len(OPERATOR_OPERATIONS) >= 5, "OPERATIONS looks unpopulated"
    declared = [(op.method, "/v1" + op.path) for op in OPERATIONS]
    assert len(declared) == len(set(declared)), f"an operation is declared twice: {declared}"

    problems = []
    for op in OPERATIONS:
        for name in _PATH_PARAM.findall(op.path):
            if name not in PATH_SAMPLES:
                problems.append(f"{route(op)}: path parameter {{{name}}} has no entry in PATH_SAMPLES")
        if op.body is not None and op.operation_id not in SAMPLE_BODIES:
            problems.append(f"{route(op)}: takes a body but has no entry in SAMPLE_BODIES")
        declared_access = {"none": "public", "operator": "operator", "signature": "signature"}.get(
            op.auth, str(op.scope)
        )
        if op.operation_id not in ACCESS:
            problems.append(f"{route(op)}: no entry in ACCESS (declared {declared_access!r})")
        elif ACCESS[op.operation_id] != declared_access:
            problems.append(f"{route(op)}: declared {declared_access!r}, policy says {ACCESS[op.operation_id]!r}")
        if op.auth not in {"none", "tenant", "operator", "signature", "member"}:
            problems.append(f"{route(op)}: unknown auth {op.auth!r}")
        if (op.auth == "member") != (str(op.scope) in MEMBER_SCOPES):
            problems.append(f"{route(op)}: a member route names a member scope, and only a member route does")
        if op.auth == "tenant" and str(op.scope) not in SCOPES:
            problems.append(f"{route(op)}: unknown scope {op.scope!r}")
        if op.auth == "tenant" and op.writes and str(op.scope) == "read":
            problems.append(f"{route(op)}: a write guarded only by the read scope")
        if op.partner_access != (op.operation_id in PARTNER_READABLE):
            problems.append(f"{route(op)}: partner_access must be declared exactly for PARTNER_READABLE")
        if (op.method != "GET" and not op.writes) != (op.operation_id in READ_ONLY_POSTS):
            problems.append(f"{route(op)}: read_only must be declared exactly for READ_ONLY_POSTS")
    bodies = {op.operation_id for op in OPERATIONS if op.body is not None}
    problems += [f"SAMPLE_BODIES has a stale entry {name!r}" for name in set(SAMPLE_BODIES) - bodies]
    problems += [f"ACCESS has a stale entry {name!r}" for name in set(ACCESS) - {op.operation_id for op in OPERATIONS}]

    # Every route Chalice serves is a declared operation (or acknowledged as undeclared).
    served = {(method, path) for path, methods in application.app.routes.items() for method in methods}
    # Member routes answer their browser preflight (OPTIONS), and only they do.
    preflights = {("OPTIONS", "/v1" + op.path) for op in MEMBER_OPERATIONS}
    problems += [
        f"{m} {p}: served by Chalice but not in OPERATIONS"
        for m, p in served - set(declared)
        if (m, p) not in UNDECLARED_ROUTES and (m, p) not in preflights
    ]
    problems += [f"{m} {p}: a member route without its preflight" for m, p in preflights - served]
    problems += [f"{m} {p}: declared but not served" for m, p in set(declared) - served]
    assert not problems, "\n".join(problems)


def test_an_unknown_path_parameter_fails_loudly() -> None:
    ghost = Operation(
        method="GET",
        path="/widgets/{widget_id}",
        operation_id="get_widget",
        summary="",
        tag="",
        auth="tenant",
        scope=None,
        status=200,
        body=None,
        query=None,
        response=None,
        idempotency_key=False,
        writes=False,
    )
    with pytest.raises(AssertionError, match="widget_id"):
        path_of(
            ghost,
            World(
                api=None,
                admin="",
                keys={},
                member_id="",
                external_id="",  # type: ignore[arg-type]
                spare_key_id="",
                spare_key="",
                rule_id="",
            ),
        )


# --- authentication ------------------------------------------------------------------------------


def test_tenant_routes_refuse_missing_malformed_and_unknown_credentials(
    world: World, unchanged: Callable[[str], None], subtests: pytest.Subtests
) -> None:
    # Given credentials that are absent, malformed, or well-formed but not a live tenant key
    real = world.admin
    forged_secret = real[:-43] + ("B" * 43 if real.endswith("A" * 43) else "A" * 43)
    variants: dict[str, str | None] = {
        "no Authorization header": None,
        "Basic scheme": "Basic dXNlcjpwYXNzd29yZA==",
        "Bearer without a token": "Bearer",
        "Bearer with a garbage token": "Bearer not-a-key",
        "a real key under another scheme": f"Token {real}",
        "a real key without a scheme": real,
        "a well-formed unknown key": f"Bearer lk_{ULID()}_{'x' * 43}",
        "a real key id with a wrong secret": f"Bearer {forged_secret}",
        "the operator key": f"Bearer {OPERATOR_KEY}",
    }

    # When every tenant route is called with each of them
    for op in TENANT_OPERATIONS:
        for label, authorization in variants.items():
            with subtests.test(msg=f"{route(op)} with {label}"):
                reply = send(world, op, authorization=authorization)
                # Then it is 401 unauthorized, with a Bearer challenge
                assert_error(reply, 401, "unauthorized", f"{route(op)} with {label}")
                assert reply.headers.get("www-authenticate", "").startswith("Bearer"), route(op)

    # And nothing was written
    unchanged("after unauthenticated calls")


def test_a_revoked_key_is_refused_on_every_tenant_route(world: World, subtests: pytest.Subtests) -> None:
    # Given an admin key that worked, then was revoked
    doomed = world.api.create_key(world.admin, "admin")
    doomed_id = world.api.call("GET", "/v1/me", key=doomed).body["api_key"]["id"]
    revoked = world.api.call("DELETE", f"/v1/api-keys/{doomed_id}", key=world.admin)
    assert revoked.status == 200 and revoked.body["revoked_at"] is not None, revoked
    unchanged_after_revocation = tenant_state(world.api, world.admin)

    # When it calls every tenant route, Then each answers 401
    for op in TENANT_OPERATIONS:
        with subtests.test(msg=route(op)):
            assert_error(send(world, op, key=doomed), 401, "unauthorized", f"{route(op)} with a revoked key")

    # And nothing was written, while the tenant's other keys still work
    assert tenant_state(world.api, world.admin) == unchanged_after_revocation, "a revoked key wrote something"
    assert world.api.call("GET", "/v1/me", key=world.keys["read"]).status == 200


def test_a_suspended_tenant_is_refused_everywhere_until_resumed(world: World, subtests: pytest.Subtests) -> None:
    api = world.api
    before = tenant_state(api, world.admin)

    # Given tenant A suspended by the operator
    suspended = api.call("POST", "/v1/tenants/acme/suspend", key=OPERATOR_KEY)
    assert suspended.status == 200 and suspended.body["status"] == "suspended", suspended

    # When any of its keys calls any tenant route, Then it is 403 tenant_suspended
    for op in TENANT_OPERATIONS:
        for label, key in world.keys.items():
            with subtests.test(msg=f"{route(op)} with the {label} key of a suspended tenant"):
                assert_error(send(world, op, key=key), 403, "tenant_suspended", f"{route(op)} ({label} key)")

    # And after the operator resumes it, nothing had been written and every route works again
    resumed = api.call("POST", "/v1/tenants/acme/resume", key=OPERATOR_KEY)
    assert resumed.status == 200 and resumed.body["status"] == "active", resumed
    assert tenant_state(api, world.admin) == before, "a suspended tenant's call wrote something"
    for op in TENANT_OPERATIONS:
        with subtests.test(msg=f"{route(op)} after resume"):
            reply = send(world, op, key=world.keys["partner"] if required_scope(op) == "partner" else world.admin)
            assert reply.status == op.status, f"{route(op)} after resume: {reply.status} {reply.body}"


def test_a_provisioning_tenant_is_refused_everywhere_and_nothing_is_written(
    world: World, monkeypatch: pytest.MonkeyPatch, subtests: pytest.Subtests
) -> None:
    api = world.api
    tenant_a = tenant_state(api, world.admin)
    # Given the asynchronous provisioning path, and a new tenant whose table is not provisioned yet
    monkeypatch.setenv("LOYALTY_PROVISIONING_ASYNC", "true")
    reset_platform()
    platform()  # settings read now, outside a request
    created = api.call(
        "POST",
        "/v1/tenants",
        key=OPERATOR_KEY,
        body={"tenant_id": "pending", "name": "Pending", "currency": "EUR", "timezone": "UTC"},
    )
    assert created.status == 201 and created.body["tenant"]["status"] == "provisioning", created
    key = created.body["api_key"]["secret"]
    registry = operator_state(api)
    keys = platform().api_key_store.list_for_tenant("pending")
    assert [k.name for k in keys] == ["admin"]

    # When its admin key calls every tenant route (each with a valid request that would write)
    for op in TENANT_OPERATIONS:
        with subtests.test(msg=f"{route(op)} with the key of a provisioning tenant"):
            # Then it is 409 tenant_not_ready, telling when to retry
            details = assert_error(send(world, op, key=key), 409, "tenant_not_ready", route(op))
            assert details == {"tenant_id": "pending", "status": "provisioning"}, f"{route(op)}: {details}"

    # And nothing was written: no table, the same registry and keys, tenant A untouched
    assert not tenant_models(
        "pending", platform().settings.tenant_table_name("pending"), platform().connection
    ).schema.exists()
    assert operator_state(api) == registry
    assert platform().api_key_store.list_for_tenant("pending") == keys
    assert tenant_state(api, world.admin) == tenant_a, "a provisioning tenant's call changed tenant A"

    # When its table is provisioned, Then it is active and holds nothing but its admin key
    (message,) = platform().provisioning_queue.drain()  # type: ignore[union-attr]
    event = api.client.events.generate_sqs_event(message_bodies=[message], queue_name=PROVISIONING_QUEUE)
    api.client.lambda_.invoke(FUNCTION, event)
    state = tenant_state(api, key)
    assert (state["members"], state["job_runs"]) == ([], [])
    assert [k["name"] for k in state["api_keys"]] == ["admin"]


# --- authorisation -------------------------------------------------------------------------------


def test_each_key_reaches_exactly_the_routes_its_scopes_grant(world: World, subtests: pytest.Subtests) -> None:
    api = world.api
    scoped = {label: set(label.split("+")) for label in world.keys}
    before = tenant_state(api, world.admin)

    # When each key calls every route its scopes do not grant
    refused = 0
    for op in TENANT_OPERATIONS:
        for label, scopes in scoped.items():
            if grants(scopes, required_scope(op)):
                continue
            refused += 1
            with subtests.test(msg=f"{route(op)} with a {label} key"):
                details = assert_error(
                    send(world, op, key=world.keys[label]), 403, "forbidden", f"{route(op)} with a {label} key"
                )
                # Then it is 403 forbidden naming the missing scope
                assert details.get("required_scope") == required_scope(op), f"{route(op)}: {details}"
                assert sorted(details.get("key_scopes", [])) == sorted(scopes), f"{route(op)}: {details}"
    assert refused >= 15, "the matrix refused suspiciously few calls"
    # And none of those refusals wrote anything
    assert tenant_state(api, world.admin) == before, "a call without the scope wrote something"

    # While every route its scopes grant goes through (write does not imply read, admin implies all)
    for op in TENANT_OPERATIONS:
        for label, scopes in scoped.items():
            if not grants(scopes, required_scope(op)):
                continue
            with subtests.test(msg=f"{route(op)} with a {label} key is allowed"):
                reply = send(world, op, key=world.keys[label])
                assert reply.status == op.status, f"{route(op)} with a {label} key: {reply.status} {reply.body}"


def test_write_does_not_imply_read() -> None:
    assert not grants({"write"}, "read") and grants({"admin"}, "read") and not grants({"read"}, "write")
    assert not grants({"admin"}, "partner") and not grants({"partner"}, "read") and grants({"partner"}, "partner")
    assert {required_scope(op) for op in TENANT_OPERATIONS} == set(SCOPES), "the matrix should exercise every scope"


# --- tenant isolation ------------------------------------------------------------------------------


def test_another_tenants_admin_key_cannot_reach_tenant_a_objects(
    world: World, other_admin_key: str, subtests: pytest.Subtests
) -> None:
    api = world.api
    assert ADDRESSING_OPERATIONS, "no tenant route addresses an object by id"
    before_a = tenant_state(api, world.admin)
    before_b = tenant_state(api, other_admin_key)

    # When tenant B's admin key addresses tenant A's member and key by id on every such route
    for op in ADDRESSING_OPERATIONS:
        with subtests.test(msg=f"{route(op)} with another tenant's admin key"):
            # Then it is 404, exactly as for an id that does not exist
            assert_error(send(world, op, key=other_admin_key), 404, "not_found", f"{route(op)} from tenant B")

    # And tenant B cannot find A's members by listing or by external id either
    listed = api.call("GET", "/v1/members", key=other_admin_key)
    found = api.call("GET", f"/v1/members?external_id={world.external_id}", key=other_admin_key)
    assert listed.status == 200 and listed.body == {"data": [], "next_cursor": None}, listed
    assert found.status == 200 and found.body == {"data": [], "next_cursor": None}, found

    # And neither tenant's data changed: A's balance, ledger, profile, keys, program are intact
    after_a = tenant_state(api, world.admin)
    assert after_a == before_a, "tenant B's calls changed tenant A's data"
    assert after_a["balances"][world.member_id]["available"] == 500
    assert tenant_state(api, other_admin_key) == before_b, "tenant B's refused calls wrote into tenant B"
    # And A's key that B tried to revoke still works
    me = api.call("GET", "/v1/me", key=world.spare_key)
    assert me.status == 200 and me.body["api_key"]["id"] == world.spare_key_id, me
    assert me.body["tenant"]["tenant_id"] == "acme"


# --- operator routes ---------------------------------------------------------------------------------


def test_operator_routes_refuse_tenant_keys_and_missing_keys(
    world: World, unchanged: Callable[[str], None], subtests: pytest.Subtests
) -> None:
    variants: dict[str, str | None] = {
        "no Authorization header": None,
        "a tenant admin key": f"Bearer {world.admin}",
        "a tenant read key": f"Bearer {world.keys['read']}",
        "a wrong operator key": f"Bearer {OPERATOR_KEY}x",
        "the operator key under another scheme": f"Basic {OPERATOR_KEY}",
        "Bearer without a token": "Bearer",
    }
    # When every operator route is called with each of them (each body would create or suspend)
    for op in OPERATOR_OPERATIONS:
        for label, authorization in variants.items():
            with subtests.test(msg=f"{route(op)} with {label}"):
                reply = send(world, op, authorization=authorization)
                # Then it is 401, and nothing is written
                assert_error(reply, 401, "unauthorized", f"{route(op)} with {label}")
    unchanged("after refused operator calls")
    # While the operator key itself is accepted
    assert world.api.call("GET", "/v1/tenants/acme", key=OPERATOR_KEY).body["status"] == "active"
    me = world.api.call("GET", "/v1/me", key=world.admin)
    assert me.status == 200 and me.body["tenant"]["status"] == "active"


def test_public_routes_need_no_key(api: Api) -> None:
    for op in OPERATIONS:
        if op.auth == "none":
            reply = api.call(op.method, "/v1" + op.path)
            assert reply.status == op.status, f"{route(op)}: {reply}"
    document = api.call("GET", "/v1/openapi.json")
    assert document.status == 200 and document.body["openapi"].startswith("3.1")
    page = api.call("GET", "/v1/docs")
    assert page.status == 200 and "swagger-ui" in page.body, page
    starter = api.call("GET", "/v1/docs/start.js")
    assert starter.status == 200 and "openapi.json" in starter.body, starter


# --- commerce integrations: the signature route ----------------------------------------------------------


def test_the_shopify_webhook_route_takes_no_bearer_key_and_writes_nothing_unsigned(
    world: World, unchanged: Callable[[str], None], subtests: pytest.Subtests
) -> None:
    signature_ops = [op for op in OPERATIONS if op.auth == "signature"]
    assert [op.operation_id for op in signature_ops] == ["receive_shopify_webhook"]
    order = {
        "id": 1,
        "currency": "EUR",
        "total_price": "10.00",
        "customer": {"id": "victim-1"},
        "line_items": [{"sku": "X", "quantity": 1, "price": "10.00"}],
    }
    for label, key in {**world.keys, "no key": None}.items():
        with subtests.test(msg=f"unsigned with the {label} key"):
            reply = world.api.call(
                "POST",
                path_of(signature_ops[0], world),
                key=key,
                body=order,
                headers={"X-Shopify-Topic": "orders/paid"},
            )
            assert_error(reply, 401, "unauthorized", label)
    unchanged("after unsigned Shopify webhooks")


# --- member tokens ----------------------------------------------------------------------------------


@dataclass
class MemberTokens:
    """Member tokens, by label: the victim's own (every scope, one per scope), and those that must
    reach nothing of the victim's: another member's, another tenant's, expired, revoked."""

    own: str
    by_scope: dict[str, str]
    other_member: str
    other_member_id: str
    other_tenant: str
    expired: str
    revoked: str

    def refused(self) -> dict[str, str]:
        return {"another tenant's": self.other_tenant, "an expired": self.expired, "a revoked": self.revoked}


def _mint(api: Api, key: str, member_id: str, scopes: tuple[str, ...] = MEMBER_SCOPES) -> str:
    reply = api.call("POST", f"/v1/members/{member_id}/tokens", key=key, body={"scopes": list(scopes)})
    assert reply.status == 201, reply
    return str(reply.body["token"])


@pytest.fixture
def member_tokens(world: World, other_admin_key: str) -> MemberTokens:
    api = world.api
    # revoked: minted, then every token of the victim's minted so far is revoked
    revoked = _mint(api, world.admin, world.member_id)
    assert api.call("DELETE", f"/v1/members/{world.member_id}/tokens", key=world.admin).status == 200
    # expired: minted by the same key two hours ago, for an hour
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = (
        platform()
        .for_tenant_id("acme", clock=lambda: past)
        .member_access.issue(world.member_id, frozenset(MemberScope), 60)
        .token
    )
    other_member = api.enrol(world.admin, name="Another member")
    assert api.earn(world.admin, other_member, "other-member-funding", points=50).status == 201
    stranger = api.enrol(other_admin_key, name="Another tenant's member", external_id="victim-1")
    return MemberTokens(
        own=_mint(api, world.admin, world.member_id),
        by_scope={scope: _mint(api, world.admin, world.member_id, (scope,)) for scope in MEMBER_SCOPES},
        other_member=_mint(api, world.admin, other_member),
        other_member_id=other_member,
        other_tenant=_mint(api, other_admin_key, stranger),
        expired=expired,
        revoked=revoked,
    )


def test_member_tokens_reach_only_their_own_members_routes(
    world: World, member_tokens: MemberTokens, subtests: pytest.Subtests
) -> None:
    api = world.api
    assert MEMBER_OPERATIONS, "no member route is declared"
    before = tenant_state(api, world.admin)

    # When every route (tenant, operator, member) is called with an expired, a revoked or another
    # tenant's member token
    for op in [*TENANT_OPERATIONS, *OPERATOR_OPERATIONS, *MEMBER_OPERATIONS]:
        for label, token in member_tokens.refused().items():
            with subtests.test(msg=f"{route(op)} with {label} member token"):
                reply = send(world, op, key=token)
                # Then it is 401 (token_invalid on member routes), with a Bearer challenge
                code = "token_invalid" if op in MEMBER_OPERATIONS else "unauthorized"
                assert_error(reply, 401, code, f"{route(op)} with {label} member token")
                assert reply.headers.get("www-authenticate", "").startswith("Bearer"), route(op)

    # And the victim's own live token, and another member's, reach no tenant or operator route
    for op in [*TENANT_OPERATIONS, *OPERATOR_OPERATIONS]:
        for label, token in {
            "the member's own": member_tokens.own,
            "another member's": member_tokens.other_member,
        }.items():
            with subtests.test(msg=f"{route(op)} with {label} member token"):
                assert_error(send(world, op, key=token), 401, "unauthorized", f"{route(op)} with {label} token")

    # And no key reaches a member route as a member: not the tenant's keys of any scope, nor the operator's
    for op in MEMBER_OPERATIONS:
        for label, key in {**world.keys, "operator": OPERATOR_KEY}.items():
            with subtests.test(msg=f"{route(op)} with the {label} key"):
                assert_error(send(world, op, key=key), 401, "token_invalid", f"{route(op)} with the {label} key")

    # And a token with the wrong scope is 403, naming the scope it lacks
    for op in MEMBER_OPERATIONS:
        for scope, token in member_tokens.by_scope.items():
            if scope == required_scope(op):
                continue
            with subtests.test(msg=f"{route(op)} with a {scope} token"):
                details = assert_error(send(world, op, key=token), 403, "forbidden", f"{route(op)} ({scope})")
                assert details == {"required_scope": required_scope(op), "token_scopes": [scope]}, details

    # And none of that wrote anything
    assert tenant_state(api, world.admin) == before, "a refused member-token call wrote something"

    # While the victim's token reaches every member route, and another member's token on the same
    # routes answers that member's own account only
    for op in MEMBER_OPERATIONS:
        for label, token, member_id in (
            ("the member's own", member_tokens.own, world.member_id),
            ("another member's", member_tokens.other_member, member_tokens.other_member_id),
        ):
            with subtests.test(msg=f"{route(op)} with {label} token"):
                reply = send(world, op, key=token)
                assert reply.status == op.status, f"{route(op)} with {label} token: {reply.status} {reply.body}"
                owner = reply.body.get("member_id") or reply.body.get("coupon", {}).get("member_id")
                if owner is not None:
                    assert owner == member_id, f"{route(op)} with {label} token answered {owner}"
    after = tenant_state(api, world.admin)
    assert after["balances"][world.member_id]["available"] <= before["balances"][world.member_id]["available"]
    assert after["api_keys"] == before["api_keys"] and after["program"] == before["program"]


def test_a_suspended_tenants_member_tokens_are_refused(
    world: World, member_tokens: MemberTokens, subtests: pytest.Subtests
) -> None:
    suspended = world.api.call("POST", "/v1/tenants/acme/suspend", key=OPERATOR_KEY)
    assert suspended.status == 200, suspended
    for op in MEMBER_OPERATIONS:
        with subtests.test(msg=route(op)):
            assert_error(send(world, op, key=member_tokens.own), 403, "tenant_suspended", route(op))
