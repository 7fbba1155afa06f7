"""Model-based test of the ledger: random sequences of operations on the REAL services and
repositories (``PlatformServices.for_tenant_id`` on DynamoDB Local, and on moto), each
outcome compared with a small reference model (tests/model/reference.py), and the
ledger's invariants checked after every step.

Operations: enrol a member (with a new, reused or no external id), earn (points or an
amount converted by the program), redeem, adjust up or down, replay an earlier request
with its key (same body: the same entry, replayed; changed body: idempotency_key_reused;
a request that was refused: evaluated afresh), the same key in the other tenant, an
unknown member, a program change, and (optionally) a movement under an injected DynamoDB
fault (transaction conflicts, throttling, timeouts before and after the commit, a crash
after the commit) followed by the client's retry with the same key.

Invariants after every step, read from storage for every member of both tenants: balance
= sum of the ledger; never negative (nor any running balance); available = earned -
redeemed + adjusted, each lifetime total = the sum of its entries; sequences 1..n with n
the balance version; every idempotency key applied at most once and exactly the keys the
model applied; the tenant's totals conserved (sum earned - redeemed + adjusted = sum of
balances = what the model moved). Through the services' read path (balance, and every
page of transactions) for each member the step touched, and for all members every few
steps: the same figures, and every entry exactly as its first response showed it.

Extending it (reverse, pending points, expiry jobs): add a rule that builds the request
and calls ``self._send`` (or the job), teach ``TenantModel.expect``/``record`` the new
movement, and add its figures to ``_check_storage``'s per-member identities.

Scale: CI runs a fixed number of examples (below); ``LOYALTY_SOAK_STEPS=N`` (``make soak``)
runs batches until at least N steps have run on each backend.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chalicelib.api import presenters
from chalicelib.domain.errors import LoyaltyError, MemberExists, TransientStoreError
from chalicelib.domain.ledger import LedgerEntry, MovementRequest, MovementResult, MovementType
from chalicelib.domain.members import NewMember
from chalicelib.domain.program import Rounding
from chalicelib.domain.tenants import NewTenant
from chalicelib.persistence.factory import shared_client
from chalicelib.services import TenantServices, platform, reset_platform
from tests.model.reference import BUSY, SUCCESS, Expected, TenantModel, body_of, expected_entry_fields
from tests.model.stats import STATS, report
from tests.support.faults import Crash, FaultPlan, crash, read_timeout, throttled, transaction_conflict

# --- what the machine draws -------------------------------------------------------------------

TENANT_IDS = ("alpha", "beta")
CURRENCIES = ("EUR", "JPY", "KWD")
PER_UNIT = ("1", "2.5", "0.1", "0.0001", "10", "999999.9999")
ROUNDINGS = tuple(str(r) for r in Rounding)
VISIBLE_ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
#: Past moments at millisecond precision (the fingerprint's), in UTC and with an offset.
MOMENTS = (
    datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),
    datetime(2025, 1, 1, 8, 30, tzinfo=timezone(timedelta(hours=2))),
    datetime(2000, 1, 1, tzinfo=UTC),
)
ACTORS = (None, "key_01JD0000000000000000000001", "key_01JD0000000000000000000002")

small_points = st.integers(1, 400)
points = st.one_of(small_points, small_points, st.sampled_from([1, 5_000, 99_999_999, 100_000_000]))
amounts = st.builds(
    lambda whole, fraction: f"{whole}{fraction}",
    st.one_of(st.integers(0, 300), st.sampled_from([999_999, 10**11, 999_999_999_999])),
    st.sampled_from(["", "", ".0", ".5", ".05", ".49", ".005", ".125", ".99"]),
)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
extras = st.fixed_dictionaries(
    {},
    optional={
        "reference": texts,
        "description": texts,
        "occurred_at": st.sampled_from(MOMENTS),
        "metadata": st.dictionaries(
            st.text(st.sampled_from("abcXYZ09_.:-"), min_size=1, max_size=6), texts, min_size=1, max_size=3
        ),
        "actor_key_id": st.sampled_from(ACTORS),
    },
)
key_suffixes = st.one_of(st.text(VISIBLE_ASCII, max_size=8), st.just("#ENTRY"), st.just("~" * 240))
#: How a debit is sized: as drawn, exactly the member's balance, or one more than it.
debit_sizes = st.sampled_from(["drawn", "drawn", "all", "all+1"])
#: What a replay with a changed body changes.
CHANGES = ("points", "reference", "movement", "member", "metadata", "amount")


@dataclass(frozen=True)
class Fault:
    name: str
    operation: str
    make: Callable[[str], BaseException]
    after: bool = False
    #: None: on every call (outlasts the service's retries).
    times: int | None = 1

    def install(self, plan: FaultPlan, times: int) -> None:
        plan.fail(self.operation, self.make, times=None if self.times is None else times, after=self.after)

    @property
    def exhausts(self) -> bool:
        return self.times is None


FAULTS = (
    Fault("transaction conflicts", "TransactWriteItems", transaction_conflict, times=1),
    Fault("conflicts outlasting the retries", "TransactWriteItems", transaction_conflict, times=None),
    Fault("throttled write", "TransactWriteItems", throttled, times=1),
    Fault("throttled reads", "GetItem", throttled, times=1),
    Fault("timeout before the write reached the table", "TransactWriteItems", read_timeout),
    Fault("timeout after the write committed", "TransactWriteItems", read_timeout, after=True),
    Fault("crash after the write committed", "TransactWriteItems", crash, after=True),
)


# --- the machine ------------------------------------------------------------------------------


@dataclass
class Tenant:
    index: int
    tenant_id: str
    table: str
    services: TenantServices
    model: TenantModel


@dataclass(frozen=True)
class Sent:
    """A movement as sent, kept for replays."""

    tenant: int
    request: MovementRequest


@dataclass(frozen=True)
class Outcome:
    code: str
    result: MovementResult | None = None
    error: BaseException | None = None


@dataclass
class _Context:
    backend: str = "?"
    #: Failures are reported with the model's view of the tenants.
    notes: list[str] = field(default_factory=list)


CONTEXT = _Context()


class LedgerMachine(RuleBasedStateMachine):
    members = Bundle("members")  # (tenant index, member id)
    sent = Bundle("sent")  # Sent

    def __init__(self) -> None:
        super().__init__()
        self.backend = CONTEXT.backend
        self.tenants: list[Tenant] = []
        self.touched: set[tuple[int, str]] = set()
        self.keys_made = 0
        self.ghosts = 0
        self.program_changes = 0
        self.steps = 0
        self.page_size = 3
        self.transaction_ids: set[str] = set()
        self._tables: list[str] = []
        self._client: Any = None
        STATS.examples[self.backend] += 1
        # A fresh stage for every example: its own control table and tenant tables.
        os.environ["LOYALTY_TABLE_PREFIX"] = f"m{uuid.uuid4().hex[:12]}"
        reset_platform()
        services = platform()
        services.provisioner.ensure_control_table()
        self._platform = services
        self._client = shared_client(services.connection)
        self._tables.append(services.settings.control_table_name)

    # --- set-up --------------------------------------------------------------------------------

    @initialize(
        target=members,
        currencies=st.lists(st.sampled_from(CURRENCIES), min_size=2, max_size=2),
        programs=st.lists(st.tuples(st.sampled_from(PER_UNIT), st.sampled_from(ROUNDINGS)), min_size=2, max_size=2),
        page_size=st.integers(1, 9),
    )
    def create_tenants(self, currencies: list[str], programs: list[tuple[str, str]], page_size: int) -> Any:
        """Two brands, each with its currency, program and a first member."""
        self.page_size = page_size
        first_members = []
        for index, tenant_id in enumerate(TENANT_IDS):
            created = self._platform.tenants.create(
                NewTenant(tenant_id=tenant_id, name=tenant_id, currency=currencies[index], timezone="UTC")
            )
            table = self._platform.settings.tenant_table_name(tenant_id)
            self._tables.append(table)
            services = self._platform.for_tenant_id(tenant_id)
            model = TenantModel(tenant_id, created.tenant.currency)
            per_unit, rounding = programs[index]
            if (Decimal(per_unit), rounding) != (model.per_unit, model.rounding):
                services.program.replace(Decimal(per_unit), Rounding(rounding))
                model.per_unit, model.rounding = Decimal(per_unit), rounding
            self.tenants.append(Tenant(index, tenant_id, table, services, model))
            member = services.members.enrol(NewMember())
            model.enrol(member.member_id, None)
            first_members.append((index, member.member_id))
        return multiple(*first_members)

    def teardown(self) -> None:
        for table in self._tables:
            try:
                self._client.delete_table(TableName=table)
            except Exception:  # noqa: S110  best effort: the emulator dies with the session anyway
                pass

    # --- members -------------------------------------------------------------------------------

    @rule(target=members, tenant=st.sampled_from([0, 1]), external=st.sampled_from(["none", "new", "taken"]))
    def enrol(self, tenant: int, external: str) -> Any:
        self._step("enrol")
        t = self.tenants[tenant]
        taken = sorted(t.model.external_ids)
        if external == "taken" and taken:
            external_id = taken[self.steps % len(taken)]
        elif external == "none":
            external_id = None
        else:
            external_id = f"ext-{self._fresh()}"
        try:
            member = t.services.members.enrol(NewMember(external_id=external_id))
        except MemberExists as exists:
            assert external_id in t.model.external_ids, f"member_exists for a free external id {external_id!r}"
            assert exists.details["member_id"] == t.model.external_ids[external_id], exists.details
            self._outcome(exists.code)
            return multiple()
        assert external_id not in t.model.external_ids, f"external id {external_id!r} enrolled twice"
        assert member.member_id not in t.model.members
        t.model.enrol(member.member_id, external_id)
        self._outcome(SUCCESS)
        self.touched.add((tenant, member.member_id))
        return (tenant, member.member_id)

    # --- movements -----------------------------------------------------------------------------

    @rule(target=sent, member=members, size=points, more=extras, suffix=key_suffixes)
    def earn_points(self, member: tuple[int, str], size: int, more: dict[str, Any], suffix: str) -> Sent:
        self._step("earn_points")
        return self._send_new(member, MovementType.EARN, suffix, more, points=size)

    @rule(target=sent, member=members, amount=amounts, more=extras, suffix=key_suffixes)
    def earn_amount(self, member: tuple[int, str], amount: str, more: dict[str, Any], suffix: str) -> Sent:
        self._step("earn_amount")
        return self._send_new(member, MovementType.EARN, suffix, more, amount=amount)

    @rule(target=sent, member=members, size=points, how=debit_sizes, more=extras, suffix=key_suffixes)
    def redeem(self, member: tuple[int, str], size: int, how: str, more: dict[str, Any], suffix: str) -> Sent:
        self._step("redeem")
        return self._send_new(member, MovementType.REDEEM, suffix, more, points=self._debit(member, size, how))

    @rule(
        target=sent,
        member=members,
        size=points,
        how=st.sampled_from(["up", "drawn", "all", "all+1"]),
        reason=texts,
        more=extras,
        suffix=key_suffixes,
    )
    def adjust(
        self, member: tuple[int, str], size: int, how: str, reason: str, more: dict[str, Any], suffix: str
    ) -> Sent:
        self._step("adjust")
        signed = size if how == "up" else -self._debit(member, size, how)
        return self._send_new(member, MovementType.ADJUST, suffix, {**more, "reason": reason}, points=signed)

    @precondition(lambda self: self.ghosts < 2)
    @rule(target=sent, tenant=st.sampled_from([0, 1]), size=small_points, suffix=key_suffixes)
    def earn_for_unknown_member(self, tenant: int, size: int, suffix: str) -> Sent:
        """A well-formed member id that was never enrolled: not_found, nothing written."""
        self._step("earn_for_unknown_member")
        self.ghosts += 1
        ghost = f"mem_01JD{self.ghosts:022d}"
        return self._send_new((tenant, ghost), MovementType.EARN, suffix, {}, points=size)

    # --- replays -------------------------------------------------------------------------------

    @rule(earlier=sent, actor=st.sampled_from(ACTORS))
    def replay(self, earlier: Sent, actor: str | None) -> None:
        """The same key and body again, possibly through another API key of the tenant: an
        applied key answers with its first entry; a refused one is evaluated afresh."""
        self._step("replay")
        request = _with(earlier.request, actor_key_id=actor)
        self._send(self.tenants[earlier.tenant], request)

    @rule(earlier=sent, change=st.sampled_from(CHANGES), other=members)
    def replay_with_changed_body(self, earlier: Sent, change: str, other: tuple[int, str]) -> None:
        self._step("replay_with_changed_body")
        request = _changed(earlier.request, change, other_member=other[1])
        assert body_of(request) != body_of(earlier.request)
        self._send(self.tenants[earlier.tenant], request)

    @rule(earlier=sent)
    def same_key_in_the_other_tenant(self, earlier: Sent) -> None:
        """Keys are per tenant, and a member id of one tenant is unknown to the other."""
        self._step("same_key_in_the_other_tenant")
        self._send(self.tenants[1 - earlier.tenant], earlier.request)

    # --- program -------------------------------------------------------------------------------

    @precondition(lambda self: self.program_changes < 2)
    @rule(tenant=st.sampled_from([0, 1]), per_unit=st.sampled_from(PER_UNIT), rounding=st.sampled_from(ROUNDINGS))
    def change_program(self, tenant: int, per_unit: str, rounding: str) -> None:
        """Later amounts convert at the new rate; replays of earlier ones still answer as first."""
        self._step("change_program")
        self.program_changes += 1
        t = self.tenants[tenant]
        t.services.program.replace(Decimal(per_unit), Rounding(rounding))
        t.model.per_unit, t.model.rounding = Decimal(per_unit), rounding
        got = t.services.program.get()
        assert (got.points_per_currency_unit, str(got.rounding)) == (Decimal(per_unit), rounding)

    # --- isolation ----------------------------------------------------------------------------

    @rule(member=members)
    def the_other_tenant_cannot_see_the_member(self, member: tuple[int, str]) -> None:
        self._step("the_other_tenant_cannot_see_the_member")
        other = self.tenants[1 - member[0]].services
        for read in (
            lambda: other.points.balance(member[1]),
            lambda: other.points.transactions(member[1], limit=5, cursor=None),
            lambda: other.members.get(member[1]),
        ):
            try:
                read()
            except LoyaltyError as error:
                assert error.code == "not_found", error
            else:
                raise AssertionError(f"tenant {self.tenants[1 - member[0]].tenant_id} sees member {member[1]}")

    # --- faults -------------------------------------------------------------------------------

    @rule(
        target=sent,
        member=members,
        movement=st.sampled_from([MovementType.EARN, MovementType.REDEEM, MovementType.ADJUST]),
        size=small_points,
        fault=st.sampled_from(FAULTS),
        times=st.integers(1, 4),
        suffix=key_suffixes,
    )
    def move_under_fault(
        self, member: tuple[int, str], movement: MovementType, size: int, fault: Fault, times: int, suffix: str
    ) -> Sent:
        """A fresh movement while DynamoDB misbehaves, then (if it did not succeed) the client's
        retry with the same key and no fault. Nothing is lost or doubled: a success is the
        model's, a failure changed nothing, and the retry answers what was committed."""
        self._step("move_under_fault")
        STATS.faulted_steps[self.backend] += 1
        t = self.tenants[member[0]]
        signed = -size if movement is MovementType.ADJUST and size % 2 else size
        extra = {"reason": "fault drill"} if movement is MovementType.ADJUST else {}
        request = self._request(member, movement, suffix, extra, points=signed)
        expected = t.model.expect(request)
        plan = FaultPlan()
        fault.install(plan, times)
        with pytest.MonkeyPatch.context() as patch:
            plan.install(patch)
            outcome = self._call(t, request)
        STATS.injected[self.backend] += sum(plan.injected.values())
        committed = expected.succeeds and fault.after and plan.injected[fault.operation] > 0
        if not expected.succeeds:
            # No commit is attempted: the refusal stands, unless reads are throttled past the
            # point where the service retries them (a refusal decided before its retry loop).
            allowed = {expected.code} | ({BUSY} if fault.operation == "GetItem" else set())
        elif fault.exhausts:
            allowed = {BUSY}
        elif fault.make is crash:
            allowed = {"crash"}
        else:
            allowed = {SUCCESS}  # every bounded fault is absorbed by the service's retries
        assert outcome.code in allowed, (
            f"under {fault.name} x{times}: got {outcome.code} ({outcome.error!r}), expected one of {sorted(allowed)}"
        )
        if outcome.code == SUCCESS:
            assert outcome.result is not None
            # A timeout after the commit is answered from the ledger: the service's own retry
            # finds its entry, so the first answer is already a replay of it.
            self._check_fresh(t, request, expected, outcome.result, replayed=committed)
            t.model.record(request, expected, outcome.result.entry)
        elif outcome.code in {BUSY, "crash"}:
            retry = self._call(t, request)
            assert retry.code == expected.code, f"client retry after {fault.name}: {retry.code}, {retry.error!r}"
            if expected.succeeds:
                assert retry.result is not None
                self._check_fresh(t, request, expected, retry.result, replayed=committed)
                t.model.record(request, expected, retry.result.entry)
            self._outcome(retry.code)
        self._outcome(outcome.code)
        self.touched.add((member[0], member[1]))
        return Sent(member[0], request)

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    @precondition(lambda self: bool(self.tenants))
    def the_ledger_is_consistent(self) -> None:
        """Storage: every member of each tenant the step touched (of both, every 5 steps).
        Read path: every member the step touched (all of them, every 10 steps)."""
        touched_tenants = {index for index, _ in self.touched}
        for tenant in self.tenants:
            if tenant.index in touched_tenants or self.steps % 5 == 0:
                self._check_storage(tenant)
        for tenant in self.tenants:
            for member_id in tenant.model.members:
                if self.steps % 10 == 0 or (tenant.index, member_id) in self.touched:
                    self._check_read_path(tenant, member_id)
        self.touched.clear()

    def _check_storage(self, tenant: Tenant) -> None:
        """Every member of the tenant, from a strongly consistent scan of its table."""
        model = tenant.model
        balances, entries = _scan(self._client, tenant.table)
        assert set(balances) == set(model.members), (
            f"{tenant.tenant_id}: balances stored for {sorted(balances)}, model has {sorted(model.members)}"
        )
        assert set(entries) <= set(model.members), f"{tenant.tenant_id}: ledger entries of unknown members"
        keys: dict[str, str] = {}
        available_total = 0
        for member_id, state in model.members.items():
            stored = balances[member_id]
            rows = sorted(entries.get(member_id, []), key=lambda row: row["sequence"])
            where = f"{tenant.tenant_id}/{member_id}"
            assert [row["sequence"] for row in rows] == list(range(1, len(rows) + 1)), (
                f"{where}: sequences {[row['sequence'] for row in rows]} are not 1..n"
            )
            assert stored["version"] == len(rows), f"{where}: version {stored['version']} for {len(rows)} entries"
            running = 0
            by_type: defaultdict[str, int] = defaultdict(int)
            for row in rows:
                running += row["points"]
                by_type[row["movement"]] += row["points"]
                assert row["after_available"] == running, f"{where}: entry {row['sequence']} says {row}"
                assert running >= 0, f"{where}: the running balance went negative at {row['sequence']}"
                assert row["key"] not in keys, f"idempotency key {row['key']!r} applied twice"
                keys[row["key"]] = row["transaction_id"]
            assert stored["available"] == running, f"{where}: available {stored['available']} != ledger sum {running}"
            assert stored["available"] >= 0, f"{where}: negative balance {stored}"
            assert stored["available"] == (
                stored["lifetime_earned"] - stored["lifetime_redeemed"] + stored["lifetime_adjusted"]
            ), f"{where}: lifetime identity broken: {stored}"
            assert stored["lifetime_earned"] == by_type["earn"], f"{where}: {stored} vs entries {dict(by_type)}"
            assert stored["lifetime_redeemed"] == -by_type["redeem"], f"{where}: {stored} vs entries {dict(by_type)}"
            assert stored["lifetime_adjusted"] == by_type["adjust"], f"{where}: {stored} vs entries {dict(by_type)}"
            assert (
                stored["available"],
                stored["lifetime_earned"],
                stored["lifetime_redeemed"],
                stored["lifetime_adjusted"],
                stored["version"],
            ) == (state.available, state.earned, state.redeemed, state.adjusted, state.version), (
                f"{where}: stored {stored}, model {state}"
            )
            assert [row["transaction_id"] for row in rows] == state.transactions, f"{where}: entries differ"
            available_total += stored["available"]
        assert keys == {key: applied.entry.transaction_id for key, applied in model.applied.items()}, (
            f"{tenant.tenant_id}: stored keys {sorted(keys)} != applied keys {sorted(model.applied)}"
        )
        lifetime = sum(
            b["lifetime_earned"] - b["lifetime_redeemed"] + b["lifetime_adjusted"] for b in balances.values()
        )
        assert lifetime == available_total == model.totals(), (
            f"{tenant.tenant_id}: totals not conserved: lifetime {lifetime}, balances {available_total}, "
            f"moved {model.totals()}"
        )

    def _check_read_path(self, tenant: Tenant, member_id: str) -> None:
        """What a client reads: the balance, and the ledger page by page (newest first)."""
        state = tenant.model.members[member_id]
        balance = tenant.services.points.balance(member_id)
        assert (
            balance.available,
            balance.lifetime_earned,
            balance.lifetime_redeemed,
            balance.lifetime_adjusted,
            balance.version,
        ) == (state.available, state.earned, state.redeemed, state.adjusted, state.version), (
            f"{tenant.tenant_id}/{member_id}: balance read {balance}, model {state}"
        )
        listed: list[LedgerEntry] = []
        cursor: str | None = None
        for _ in range(10_000):
            page = tenant.services.points.transactions(member_id, limit=self.page_size, cursor=cursor)
            assert len(page.items) <= self.page_size
            listed.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        assert [e.sequence for e in listed] == list(range(state.version, 0, -1)), (
            f"{tenant.tenant_id}/{member_id}: listed sequences {[e.sequence for e in listed]}"
        )
        assert [e.transaction_id for e in reversed(listed)] == state.transactions
        assert sum(e.points for e in listed) == balance.available
        for entry in listed:
            first = tenant.model.applied[entry.idempotency_key].entry
            assert _shown(entry) == _shown(first), f"listed entry differs from its first response: {entry}"

    # --- helpers -------------------------------------------------------------------------------

    def _step(self, rule_name: str) -> None:
        self.steps += 1
        STATS.steps[self.backend] += 1
        STATS.rules[self.backend][rule_name] += 1

    def _outcome(self, code: str) -> None:
        STATS.outcomes[self.backend][code] += 1

    def _fresh(self) -> str:
        self.keys_made += 1
        return f"{self.keys_made:04d}"

    def _debit(self, member: tuple[int, str], size: int, how: str) -> int:
        state = self.tenants[member[0]].model.members.get(member[1])
        available = state.available if state else 0
        if how == "all" and available > 0:
            return available
        if how == "all+1":
            return available + 1
        return size

    def _request(
        self, member: tuple[int, str], movement: MovementType, suffix: str, more: dict[str, Any], **how: Any
    ) -> MovementRequest:
        return MovementRequest(
            member_id=member[1],
            movement=movement,
            idempotency_key=f"{self._fresh()}{suffix}",
            currency=self.tenants[member[0]].model.currency,
            **how,
            **more,
        )

    def _send_new(
        self, member: tuple[int, str], movement: MovementType, suffix: str, more: dict[str, Any], **how: Any
    ) -> Sent:
        request = self._request(member, movement, suffix, more, **how)
        self._send(self.tenants[member[0]], request)
        return Sent(member[0], request)

    def _send(self, tenant: Tenant, request: MovementRequest) -> None:
        """Send one request, compare its outcome with the model's, and record a success."""
        request = _with(request, currency=tenant.model.currency)
        self.touched.add((tenant.index, request.member_id))  # a refusal must change nothing: check it too
        expected = tenant.model.expect(request)
        outcome = self._call(tenant, request)
        self._outcome(outcome.code)
        assert outcome.code == expected.code, (
            f"{tenant.tenant_id}: {_describe(request)} -> {outcome.code} ({outcome.error!r}); "
            f"the model expected {expected.code}; model: {tenant.model.describe()}"
        )
        if outcome.code == "idempotency_key_reused":
            assert isinstance(outcome.error, LoyaltyError)
            applied = tenant.model.applied[request.idempotency_key]
            assert outcome.error.details["transaction_id"] == applied.entry.transaction_id
        if not expected.succeeds:
            return
        assert outcome.result is not None
        if expected.replay_of is not None:
            assert outcome.result.replayed, "a replay of an applied key was not marked replayed"
            assert _shown(outcome.result.entry) == _shown(expected.replay_of.entry), (
                "a replay did not answer exactly as the first response"
            )
            return
        self._check_fresh(tenant, request, expected, outcome.result, replayed=False)
        tenant.model.record(request, expected, outcome.result.entry)

    def _check_fresh(
        self, tenant: Tenant, request: MovementRequest, expected: Expected, result: MovementResult, *, replayed: bool
    ) -> None:
        assert result.replayed is replayed, f"replayed={result.replayed}, expected {replayed}"
        entry = result.entry
        wanted = expected_entry_fields(request, expected, tenant.model.currency)
        got = {name: _field(entry, name) for name in wanted}
        assert got == wanted, f"entry differs from the model: {got} != {wanted}"
        if request.occurred_at is not None:
            assert entry.occurred_at == request.occurred_at
        assert entry.transaction_id not in self.transaction_ids, "a transaction id was reused"
        self.transaction_ids.add(entry.transaction_id)

    def _call(self, tenant: Tenant, request: MovementRequest) -> Outcome:
        try:
            return Outcome(SUCCESS, result=tenant.services.points.move(request))
        except LoyaltyError as error:
            return Outcome(error.code, error=error)
        except TransientStoreError as error:  # the API answers it as 503 retry_later
            return Outcome(BUSY, error=error)
        except Crash as error:
            return Outcome("crash", error=error)


def _with(request: MovementRequest, **changes: Any) -> MovementRequest:
    from dataclasses import replace

    return replace(request, **changes)


def _changed(request: MovementRequest, change: str, *, other_member: str) -> MovementRequest:
    """The same key with a body that differs in one respect."""
    if change == "points" or (change == "amount" and request.amount is None):
        if request.amount is not None:
            return _with(request, amount=None, points=7)
        return _with(request, points=(request.points or 0) + (1 if (request.points or 0) >= 0 else -1))
    if change == "amount":
        return _with(request, amount=f"{request.amount}1" if "." in (request.amount or "") else "1.5")
    if change == "reference":
        return _with(request, reference=(request.reference or "") + "*")
    if change == "metadata":
        return _with(request, metadata={**request.metadata, "changed": "yes"})
    if change == "member" and other_member != request.member_id:
        return _with(request, member_id=other_member)
    following = {
        MovementType.EARN: MovementType.REDEEM,
        MovementType.REDEEM: MovementType.ADJUST,
        MovementType.ADJUST: MovementType.EARN,
    }
    moved = following[request.movement]
    points = request.points if request.points is not None else 3
    if moved is not MovementType.ADJUST:
        points = abs(points)
    return _with(
        request,
        movement=moved,
        amount=None,
        points=points,
        reason="changed" if moved is MovementType.ADJUST else None,
    )


def _field(entry: LedgerEntry, name: str) -> Any:
    value: Any = entry
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _shown(entry: LedgerEntry) -> dict[str, Any]:
    """What a client sees of a movement's response, times compared as instants (a replay
    shows ``occurred_at`` in UTC where the first response echoed the client's offset:
    test_replays.py covers that representation)."""
    return presenters.movement(entry).model_dump()


def _describe(request: MovementRequest) -> str:
    amount = f"amount={request.amount}" if request.amount is not None else f"points={request.points}"
    return f"{request.movement} {amount} for {request.member_id} key={request.idempotency_key!r}"


def _number(item: dict[str, Any], name: str) -> int:
    return int(item[name]["N"])


_SCANNED = (
    *("pk", "sk", "member_id", "available", "lifetime_earned", "lifetime_redeemed", "lifetime_adjusted", "version"),
    *("gsi1pk", "gsi1sk", "points", "movement", "txn_id", "bal_available"),
)
_NAMES = {f"#a{i}": name for i, name in enumerate(_SCANNED)}
_PROJECTION = ", ".join(_NAMES)


def _scan(client: Any, table: str) -> tuple[dict[str, dict[str, int]], dict[str, list[dict[str, Any]]]]:
    """Balances and ledger entries of a tenant table, read with a strongly consistent scan."""
    balances: dict[str, dict[str, int]] = {}
    entries: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    start: dict[str, Any] | None = None
    while True:
        page = client.scan(
            TableName=table,
            ConsistentRead=True,
            ProjectionExpression=_PROJECTION,
            ExpressionAttributeNames=_NAMES,
            **({"ExclusiveStartKey": start} if start else {}),
        )
        for item in page["Items"]:
            sort_key = item["sk"]["S"]
            if sort_key == "#BALANCE":
                balances[item["member_id"]["S"]] = {
                    name: _number(item, name)
                    for name in ("available", "lifetime_earned", "lifetime_redeemed", "lifetime_adjusted", "version")
                }
            elif sort_key == "#ENTRY":
                member_id = item["gsi1pk"]["S"].removeprefix("MEMBER#").removesuffix("#LEDGER")
                entries[member_id].append(
                    {
                        "key": item["pk"]["S"].removeprefix("LEDGER#"),
                        "sequence": int(item["gsi1sk"]["S"]),
                        "points": _number(item, "points"),
                        "movement": item["movement"]["S"],
                        "transaction_id": item["txn_id"]["S"],
                        "after_available": _number(item, "bal_available"),
                    }
                )
        start = page.get("LastEvaluatedKey")
        if not start:
            return balances, dict(entries)


# --- the tests --------------------------------------------------------------------------------

#: CI: a fixed, small number of examples per backend (the module stays well under a minute).
CI_EXAMPLES = {"dynamodb-local": 12, "moto": 8}
CI_STEPS = 25
SOAK_STEPS_PER_EXAMPLE = 50


def _settings(max_examples: int, step_count: int) -> settings:
    return settings(
        max_examples=max_examples,
        stateful_step_count=step_count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


def test_the_ledger_agrees_with_its_model(model_backend: str) -> None:
    CONTEXT.backend = model_backend
    started = time.monotonic()
    target = int(os.environ.get("LOYALTY_SOAK_STEPS", "0"))
    try:
        if target <= 0:
            run_state_machine_as_test(LedgerMachine, settings=_settings(CI_EXAMPLES[model_backend], CI_STEPS))
        else:
            while STATS.steps[model_backend] < target:
                missing = target - STATS.steps[model_backend]
                batch = max(1, math.ceil(missing / (0.8 * SOAK_STEPS_PER_EXAMPLE)))
                run_state_machine_as_test(LedgerMachine, settings=_settings(batch, SOAK_STEPS_PER_EXAMPLE))
    finally:
        STATS.seconds[model_backend] += time.monotonic() - started
        report(STATS.line(model_backend))
