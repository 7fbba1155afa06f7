"""The expiry job: lots expired per second and request units per expired lot.

Two tenants, one of ``small`` members and one of ``large`` (10 000 and 100 000 at full
scale), each with exactly ``due`` lots (10 000 at full scale) due at ``AS_OF``: one lot on
each of ``due`` members. Every other member has a balance and one lot expiring a year after
``AS_OF``, so it sits in the due-lot index without being due. The claim checked: the job's
cost follows the due work, not the size of the tenant, so the two run times are close.

Seeding writes the items directly (BatchWriteItem) rather than through the API: exactly
the items the app writes, made by its own mapping functions (``_to_balance_item``,
``_to_lot_item``, ``_to_member_item``; see :class:`ItemMaker`).

Request units come from a separate *probe*: ``probe`` extra members per tenant whose lots
expired 30 days before ``AS_OF`` are expired first by the same job (``jobs.run`` at the
earlier ``PROBE_AS_OF``) while bench.capture records every DynamoDB call with full item
images; bench.units bills them. The timed run at ``AS_OF`` is never recorded (the recorder
reads item images around every write, which would distort the time), so it expires exactly
``due`` lots; a light counter checks that it makes the same calls per lot as the probe.
Before the timed runs an untimed run in a throwaway tenant warms DynamoDB Local up (without
it the first timed run, whichever tenant, was ~15% slower: the order decided the ratio).

Scale: full scale does not fit ``make bench``'s ~5 minutes on the 2-core development
machine: seeding 100 000 members (300 000 items) takes ~130 s at ~2 300 items/s, and each
timed run of 10 000 lots ~95-115 s (~7 minutes for the section in all). ``make bench``
runs ``DEFAULT_EXPIRY_SCALE`` of it; ``python -m bench.run --expiry-only --expiry-scale 1``
runs the full scale: 10 000 due lots in tenants of 10 000 and 100 000 members.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.report import Report, verdict

#: Full scale: 10 000 due lots in a tenant of 10 000 and one of 100 000 members.
FULL_DUE = 10_000
FULL_SMALL = 10_000
FULL_LARGE = 100_000
PROBE_MEMBERS = 100

POINTS = 100
EARNED_AT = datetime(2026, 1, 1, tzinfo=UTC)
AS_OF = datetime(2027, 1, 1, tzinfo=UTC)
DUE_AT = AS_OF - timedelta(days=1)  # due at AS_OF
LATER_AT = AS_OF + timedelta(days=365)  # in the index, never due in this bench
PROBE_AS_OF = AS_OF - timedelta(days=30)
PROBE_DUE_AT = PROBE_AS_OF - timedelta(days=1)  # due at PROBE_AS_OF (and so also at AS_OF)
#: The job's clock: it runs an hour after the as_of it is given (as the hourly schedule would).
RUN_DELAY = timedelta(hours=1)

#: The default of ``--expiry-scale``: about the largest that keeps ``make bench`` under 5
#: minutes on the 2-core development machine (see the module docstring).
DEFAULT_EXPIRY_SCALE = 0.4
#: The claim holds if the large tenant's time is within this factor of the small one's.
RATIO_TARGET = 1.25

SEED_THREADS = 4
#: Lots expired in a throwaway tenant before the timed runs (see measure).
WARMUP_LOTS = 3000
SCAN_SEGMENTS = 8
BATCH = 25


@dataclass(frozen=True)
class Scale:
    due: int
    small: int
    large: int
    probe: int = PROBE_MEMBERS

    @classmethod
    def of(cls, factor: float) -> Scale:
        """``factor`` of the full scale (1.0 = 10 000 due lots, tenants of 10 000 and 100 000)."""
        if not 0 < factor <= 1:
            raise ValueError("the expiry scale is a fraction in (0, 1]")
        due = max(1, round(FULL_DUE * factor))
        return cls(
            due=due,
            small=max(due, round(FULL_SMALL * factor)),
            large=max(due, round(FULL_LARGE * factor)),
            probe=min(PROBE_MEMBERS, due),
        )

    @property
    def full(self) -> bool:
        return (self.due, self.small, self.large) == (FULL_DUE, FULL_SMALL, FULL_LARGE)


# --- the items the app would write ------------------------------------------------------------

DUE, PROBE, LATER = "due", "probe", "later"
EXPIRES_AT = {DUE: DUE_AT, PROBE: PROBE_DUE_AT, LATER: LATER_AT}


class ItemMaker:
    """Serialized items exactly as the app's mapping functions build them, fast.

    The app's functions (``_to_balance_item``, ``_to_lot_item``, ``_to_member_item``) build
    one template member per (kind of lot, due-index shard); every seeded member's items are
    the template's with the template's member and lot ULIDs replaced by its own (ids are
    prefixed ULIDs, and the shard depends only on the member id, via ``due_shard``).
    That is ~8x faster than a PynamoDB model instance per item; ``check`` compares a
    sample against the app's functions called directly, and the bench stops on a mismatch.
    """

    def __init__(self, models: Any, *, profiles: bool) -> None:
        from chalicelib.domain.ids import new_member_id, new_transaction_id
        from chalicelib.persistence.index_keys import DUE_SHARDS, due_shard

        self._models = models
        self._profiles = profiles
        self._due_shard = due_shard
        self._templates: dict[tuple[str, int], tuple[str, str, list[dict[str, Any]]]] = {}
        template_members: dict[int, str] = {}
        while len(template_members) < DUE_SHARDS:  # one template member per shard
            member_id = new_member_id()
            template_members.setdefault(due_shard(member_id), member_id)
        for shard, member_id in template_members.items():
            lot_id = new_transaction_id()
            for kind in (DUE, PROBE, LATER):
                self._templates[(kind, shard)] = (member_id, lot_id, self.exact(kind, member_id, lot_id))

    def exact(self, kind: str, member_id: str, lot_id: str) -> list[dict[str, Any]]:
        """The member's items, serialized, straight from the app's mapping functions."""
        from chalicelib.domain.expiry import Lot
        from chalicelib.domain.ledger import Balance
        from chalicelib.domain.members import Member
        from chalicelib.persistence.tenant_data import _to_balance_item, _to_lot_item, _to_member_item

        lot = Lot(
            lot_id=lot_id,
            member_id=member_id,
            remaining=POINTS,
            original=POINTS,
            earned_at=EARNED_AT,
            expires_at=EXPIRES_AT[kind],
        )
        opening = Balance.opening(member_id, EARNED_AT)
        # What one earn of POINTS under an expiry policy leaves: version 1, one lot.
        balance = opening.apply(_earn(), POINTS, EARNED_AT).with_lots((lot,))
        items = [_to_balance_item(self._models, balance).serialize(), _to_lot_item(self._models, lot).serialize()]
        if self._profiles:
            member = Member(
                member_id=member_id,
                external_id=None,
                email=None,
                name="Bench Member",
                birthday=None,
                marketing_consent=False,
                created_at=EARNED_AT,
                updated_at=EARNED_AT,
            )
            items.append(_to_member_item(self._models, member).serialize())
        return items

    def fast(self, kind: str, member_id: str, lot_id: str) -> list[dict[str, Any]]:
        template_member, template_lot, items = self._templates[(kind, self._due_shard(member_id))]
        return [_substitute(item, template_member, member_id, template_lot, lot_id) for item in items]

    def check(self, members: list[tuple[str, str, str]], every: int = 997) -> None:
        for kind, member_id, lot_id in members[::every]:
            if self.fast(kind, member_id, lot_id) != self.exact(kind, member_id, lot_id):
                raise RuntimeError(f"seeded items differ from the app's mapping for {member_id}")


def _earn() -> Any:
    from chalicelib.domain.ledger import MovementType

    return MovementType.EARN


def _substitute(item: dict[str, Any], old_member: str, member: str, old_lot: str, lot: str) -> dict[str, Any]:
    """``item`` with the ids' ULIDs replaced wherever they appear, with or without their
    ``mem_``/``txn_`` prefix (a key may hold either)."""
    pairs = [(_ulid(old_member), _ulid(member)), (_ulid(old_lot), _ulid(lot))]
    out = {}
    for name, value in item.items():
        text = value.get("S")
        if text is not None and any(old in text for old, _ in pairs):
            for old, new in pairs:
                text = text.replace(old, new)
            value = {"S": text}
        out[name] = value
    return out


def _ulid(identifier: str) -> str:
    return identifier.rpartition("_")[2]


# --- seeding -----------------------------------------------------------------------------------


@dataclass
class Seeded:
    tenant_id: str
    table: str
    size: int  # members, without the probe
    #: (kind, member id, lot id) of every member seeded.
    members: list[tuple[str, str, str]]
    items: int = 0
    seconds: float = 0.0

    def of_kind(self, kind: str) -> list[tuple[str, str, str]]:
        return [m for m in self.members if m[0] == kind]


def _plan(size: int, due: int, probe: int, seed: int) -> list[tuple[str, str, str]]:
    from chalicelib.domain.ids import new_member_id, new_transaction_id

    kinds = [DUE] * due + [LATER] * (size - due) + [PROBE] * probe
    random.Random(seed).shuffle(kinds)  # due members spread over the id range
    return [(kind, new_member_id(), new_transaction_id()) for kind in kinds]


def batch_write(client: Any, table: str, items: Iterable[dict[str, Any]], *, threads: int = SEED_THREADS) -> int:
    """BatchWriteItem in batches of 25 from a few threads, retrying unprocessed items."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for item in items:
        current.append(item)
        if len(current) == BATCH:
            batches.append(current)
            current = []
    if current:
        batches.append(current)

    def write(batch: list[dict[str, Any]]) -> None:
        request = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        delay = 0.01
        while request:
            reply = client.batch_write_item(RequestItems=request)
            request = reply.get("UnprocessedItems") or {}
            if request:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(write, batches):
            pass
    return sum(len(b) for b in batches)


def seed_tenant(
    platform: Any, client: Any, tenant_id: str, size: int, scale: Scale, *, profiles: bool, seed: int
) -> Seeded:
    from chalicelib.domain.tenants import NewTenant
    from chalicelib.persistence.factory import tenant_models

    platform.tenants.create(NewTenant(tenant_id=tenant_id, name=tenant_id, currency="EUR", timezone="UTC"))
    started = time.perf_counter()
    table = platform.settings.tenant_table_name(tenant_id)
    models = tenant_models(tenant_id, table, platform.connection)
    maker = ItemMaker(models, profiles=profiles)
    members = _plan(size, scale.due, scale.probe, seed)
    maker.check(members)
    items = (item for kind, member_id, lot_id in members for item in maker.fast(kind, member_id, lot_id))
    written = batch_write(client, table, items)
    return Seeded(tenant_id, table, size, members, written, time.perf_counter() - started)


# --- running the job ---------------------------------------------------------------------------


class CallCounter:
    """Counts DynamoDB calls by operation on one client (a dict increment per call)."""

    def __init__(self, client: Any) -> None:
        self._events = client.meta.events
        self.counts: Counter[str] = Counter()
        #: Seconds spent in each operation's calls (round trip as the app's client sees it).
        self.seconds: Counter[str] = Counter()
        self.index_items = 0
        self._lock = threading.Lock()

    def __enter__(self) -> CallCounter:
        self._events.register("provide-client-params.dynamodb", self._before, unique_id="bench-expiry-index")
        self._events.register("after-call.dynamodb", self._after, unique_id="bench-expiry-count")
        return self

    def __exit__(self, *exc: object) -> None:
        self._events.unregister("provide-client-params.dynamodb", unique_id="bench-expiry-index")
        self._events.unregister("after-call.dynamodb", unique_id="bench-expiry-count")

    @staticmethod
    def _before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()
        if params.get("IndexName"):
            context["bench_index"] = params["IndexName"]

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        name = model.name
        index = context.get("bench_index")
        with self._lock:
            if index:
                name = f"{name} {index}"
                self.index_items += int(parsed.get("Count", 0))
            self.counts[name] += 1
            self.seconds[name] += time.perf_counter() - context.get("bench_started", time.perf_counter())


def _services(platform: Any, tenant_id: str, as_of: datetime) -> Any:
    run_at = as_of + RUN_DELAY
    return platform.for_tenant_id(tenant_id, clock=lambda: run_at)


def run_job(platform: Any, tenant_id: str, as_of: datetime) -> tuple[Any, float]:
    from chalicelib.domain.jobs import JobName

    services = _services(platform, tenant_id, as_of)
    started = time.perf_counter()
    run = services.jobs.run(JobName.EXPIRE_POINTS, as_of)
    return run, time.perf_counter() - started


def due_lots(platform: Any, tenant_id: str, as_of: datetime) -> list[tuple[str, str]]:
    """What the app's own ``LedgerRepository.due_lots`` returns."""
    from chalicelib.persistence.factory import tenant_models
    from chalicelib.persistence.tenant_data import LedgerRepository

    models = tenant_models(tenant_id, platform.settings.tenant_table_name(tenant_id), platform.connection)
    return list(LedgerRepository(models).due_lots(as_of))


def emulator_latency(client: Any, tenants: list[Seeded], rounds: int = 150) -> dict[str, dict[str, float]]:
    """Median round trips of DynamoDB Local itself on each tenant's table, interleaved (same
    moments, same machine load): a consistent GetItem of a balance, and a TransactWriteItems
    that only checks one (no change). Separates the emulator's own dependence on table size
    from what the job does."""
    from chalicelib.persistence.tenant_data import BALANCE, member_pk

    rng = random.Random(7)
    samples: dict[str, dict[str, list[float]]] = {
        t.tenant_id: {"GetItem": [], "TransactWriteItems": []} for t in tenants
    }
    for _ in range(rounds):
        for tenant in tenants:
            _, member_id, _ = tenant.members[rng.randrange(len(tenant.members))]
            key = {"pk": {"S": member_pk(member_id)}, "sk": {"S": BALANCE}}
            began = time.perf_counter()
            client.get_item(TableName=tenant.table, Key=key, ConsistentRead=True)
            middle = time.perf_counter()
            client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": tenant.table,
                            "Key": key,
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    }
                ]
            )
            ended = time.perf_counter()
            samples[tenant.tenant_id]["GetItem"].append(middle - began)
            samples[tenant.tenant_id]["TransactWriteItems"].append(ended - middle)
    return {
        tenant_id: {op: 1000 * statistics.median(values) for op, values in ops.items()}
        for tenant_id, ops in samples.items()
    }


# --- request units of the probe run ------------------------------------------------------------


@dataclass
class CallKind:
    name: str
    calls: int = 0
    rru: float = 0.0
    wru: float = 0.0  # table writes (transactional already doubled)
    gsi_wru: float = 0.0
    notes: set[str] = field(default_factory=set)
    #: Item sizes in bytes by what was read or written.
    sizes: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class ProbeUnits:
    lots: int
    kinds: dict[str, CallKind]
    #: Per run, not per lot: the job-run record.
    run_record: CallKind
    local_total: float

    def per_lot(self, attr: str) -> float:
        return sum(getattr(k, attr) for k in self.kinds.values()) / self.lots if self.lots else 0.0

    @property
    def total_per_lot(self) -> float:
        return self.per_lot("rru") + self.per_lot("wru") + self.per_lot("gsi_wru")


def _kind(item_or_key: dict[str, Any]) -> str:
    from bench.units import item_kind

    if item_or_key.get("sk", {}).get("S", "").startswith("LOT#"):
        return "lot"
    return item_kind(item_or_key)


def _mode(params: dict[str, Any]) -> str:
    return "consistent" if params.get("ConsistentRead") else "eventual"


def bill_probe(recorder: Any, calls: list[Any], lots: int) -> ProbeUnits:
    from bench.units import _key_item, charge, item_size

    kinds: dict[str, CallKind] = {}
    run_record = CallKind("PutItem job run record")
    local = 0.0
    for call in calls:
        c = charge(recorder, call)
        local += c.local_total or 0.0
        params = call.params
        if call.operation == "PutItem" and params["Item"].get("pk", {}).get("S") == "JOBRUNS":
            target = run_record
        else:
            if call.operation == "Query" and params.get("IndexName"):
                name = f"Query {params['IndexName']} (due lots, keys only)"
            elif call.operation == "Query":
                name = f"Query lots of the member ({_mode(params)})"
            elif call.operation == "GetItem":
                name = f"GetItem {_kind(params['Key'])} ({_mode(params)})"
            elif call.operation == "TransactWriteItems":
                parts = []
                for action in params["TransactItems"]:
                    ((verb, body),) = action.items()
                    parts.append(f"{verb} {_kind(body.get('Item') or body.get('Key'))}")
                name = f"TransactWriteItems[{', '.join(parts)}]"
            else:
                name = c.label
            target = kinds.setdefault(name, CallKind(name))
        target.calls += 1
        target.rru += c.rru
        target.wru += c.wru
        target.gsi_wru += c.gsi_wru
        for key, w in zip(call.before, c.writes, strict=True):
            kind = _kind(dict(_key_item(key)))
            target.sizes.setdefault(kind, []).append(w.billed_size)
            if w.gsi_note:
                target.notes.add(f"{kind}: {w.gsi_note}")
        if call.operation == "Query":
            target.sizes.setdefault("read", []).extend(c.item_sizes)
        elif call.operation == "GetItem":
            target.sizes.setdefault("read", []).append(item_size((call.response or {}).get("Item")))
    return ProbeUnits(lots=lots, kinds=kinds, run_record=run_record, local_total=local)


# --- verification ------------------------------------------------------------------------------


def scan_table(client: Any, table: str, segments: int = SCAN_SEGMENTS) -> list[dict[str, Any]]:
    def segment(n: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start = None
        while True:
            kwargs: dict[str, Any] = {"TableName": table, "Segment": n, "TotalSegments": segments}
            if start:
                kwargs["ExclusiveStartKey"] = start
            reply = client.scan(**kwargs)
            items.extend(reply.get("Items", []))
            start = reply.get("LastEvaluatedKey")
            if not start:
                return items

    with ThreadPoolExecutor(segments) as pool:
        return [item for part in pool.map(segment, range(segments)) for item in part]


@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


def verify(
    platform: Any, client: Any, seeded: Seeded, maker_models: Any, *, profiles: bool, expired_kinds: tuple[str, ...]
) -> list[Check]:
    """After a run: the lots of ``expired_kinds`` members expired exactly once, every other
    member's balance and lot exactly as seeded, nothing left due."""
    from bench.units import item_kind
    from chalicelib.persistence.tenant_data import BALANCE, ledger_partition, ledger_pk, lot_sk, member_pk

    items = scan_table(client, seeded.table)
    by_key = {(i["pk"]["S"], i["sk"]["S"]): i for i in items}
    ledger = [i for i in items if i["pk"]["S"].startswith(ledger_pk(""))]
    maker = ItemMaker(maker_models, profiles=profiles)
    checks: list[Check] = []

    expired = [m for m in seeded.members if m[0] in expired_kinds]
    untouched = [m for m in seeded.members if m[0] not in expired_kinds]

    # Every expired member: balance down to 0 with lifetime_expired = POINTS, one expire entry, no lot.
    wrong: list[str] = []
    entries_by_key = Counter(i["pk"]["S"] for i in ledger)
    entries = {i["pk"]["S"]: i for i in ledger}
    for _, member_id, lot_id in expired:
        balance = by_key.get((member_pk(member_id), BALANCE))
        if balance is None:
            wrong.append(f"{member_id}: no balance")
            continue
        figures = {
            name: int(balance.get(name, {"N": "0"})["N"])
            for name in ("available", "lifetime_expired", "lot_count", "version")
        }
        if figures != {"available": 0, "lifetime_expired": POINTS, "lot_count": 0, "version": 2}:
            wrong.append(f"{member_id}: balance {figures}")
        if "next_expiry_at" in balance:
            wrong.append(f"{member_id}: next_expiry_at still set")
        if (member_pk(member_id), lot_sk(lot_id)) in by_key:
            wrong.append(f"{member_id}: lot {lot_id} still there")
        entry_pk = ledger_pk(f"expire:{lot_id}")  # the job's idempotency key for a lot
        if entries_by_key.get(entry_pk) != 1:
            wrong.append(f"{member_id}: {entries_by_key.get(entry_pk, 0)} expire entries for {lot_id}")
        else:
            entry = entries[entry_pk]
            if int(entry["points"]["N"]) != -POINTS or entry.get("gsi1pk", {}).get("S") != ledger_partition(member_id):
                wrong.append(f"{member_id}: expire entry {entry['points']} {entry.get('gsi1pk')}")
    checks.append(
        Check(
            f"{len(expired)} expired members: balance 0, lifetime_expired {POINTS}, version 2, lot gone, "
            "one expire entry each",
            not wrong,
            _first(wrong),
        )
    )
    balances = [i for i in items if i["sk"]["S"] == BALANCE]
    lifetime_expired = sum(int(i.get("lifetime_expired", {"N": "0"})["N"]) for i in balances)
    expected_points = len(expired) * POINTS
    checks.append(
        Check(
            f"sum of lifetime_expired over all {len(balances)} balances = {expected_points}",
            lifetime_expired == expected_points,
            f"found {lifetime_expired}",
        )
    )
    extra = len(ledger) - len(expired)
    checks.append(
        Check(
            f"ledger holds exactly {len(expired)} entries, all expire:<lot>",
            extra == 0 and all(i["pk"]["S"].startswith(ledger_pk("expire:")) for i in ledger),
            f"{len(ledger)} entries",
        )
    )

    # Every other member: balance and lot byte-for-byte as seeded.
    changed = []
    for kind, member_id, lot_id in untouched:
        for item in maker.fast(kind, member_id, lot_id):
            found = by_key.get((item["pk"]["S"], item["sk"]["S"]))
            if found != item:
                changed.append(f"{item_kind(item)} of {member_id}")
    checks.append(
        Check(
            f"{len(untouched)} members not due: balance and lot items unchanged",
            not changed,
            _first(changed),
        )
    )
    return checks


def _first(problems: list[str], shown: int = 3) -> str:
    more = len(problems) - shown
    return "; ".join(problems[:shown]) + (f" (+{more} more)" if more > 0 else "")


def check_due(platform: Any, seeded: Seeded, as_of: datetime, expected: set[tuple[str, str]], label: str) -> Check:
    found = due_lots(platform, seeded.tenant_id, as_of)
    ok = len(found) == len(expected) and set(found) == expected
    return Check(f"due_lots({label}) returns {len(expected)} lots", ok, f"returned {len(found)}")


# --- the section -------------------------------------------------------------------------------


@dataclass
class TenantResult:
    seeded: Seeded
    probe_run: Any = None
    probe_seconds: float = 0.0
    probe_units: ProbeUnits | None = None
    run: Any = None
    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    call_seconds: Counter[str] = field(default_factory=Counter)
    index_items: int = 0
    checks: list[Check] = field(default_factory=list)
    verify_seconds: float = 0.0
    #: 1-minute load average before and after the timed run.
    load: tuple[float, float] = (0.0, 0.0)
    #: Median ms of DynamoDB Local's own calls on this tenant's table (see emulator_latency).
    local_ms: dict[str, float] = field(default_factory=dict)
    local_ms_before: dict[str, float] = field(default_factory=dict)

    @property
    def lots_expired(self) -> int:
        return int((self.run.counts if self.run else {}).get("lots_expired", 0))

    @property
    def rate(self) -> float:
        return self.lots_expired / self.seconds if self.seconds else 0.0


@dataclass
class ExpiryResult:
    scale: Scale
    profiles: bool
    tenants: list[TenantResult]
    seed_seconds: float
    total_seconds: float
    #: 1-minute load averages at the start and the end (the machine is shared: a busy one slows Local).
    load: tuple[float, float] = (0.0, 0.0)
    #: (lots, seconds) of the untimed warm-up run in a throwaway tenant.
    warmup: tuple[int, float] = (0, 0.0)

    @property
    def ratio(self) -> float:
        small, large = self.tenants
        return large.seconds / small.seconds if small.seconds else float("inf")

    @property
    def verified(self) -> bool:
        return all(c.ok for t in self.tenants for c in t.checks)


def measure(
    scale: Scale,
    *,
    profiles: bool = True,
    warmup_lots: int = WARMUP_LOTS,
    progress: Callable[[str], None] | None = None,
) -> ExpiryResult:
    """Start DynamoDB Local, seed the two tenants, probe, time, verify."""
    import botocore.config
    import botocore.session

    from bench.appenv import REGION, configure_process
    from bench.capture import Recorder
    from tests.support.emulators import dynamodb_local

    say = progress or (lambda _text: None)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with dynamodb_local() as endpoint:
        configure_process(endpoint)
        session = botocore.session.get_session()
        session.set_credentials("bench", "bench")
        # The seeding and verification client: never recorded, never counted.
        client = session.create_client(
            "dynamodb",
            REGION,
            endpoint_url=endpoint,
            config=botocore.config.Config(
                max_pool_connections=max(SEED_THREADS, SCAN_SEGMENTS) * 2,
                retries={"mode": "standard", "max_attempts": 10},
                parameter_validation=False,  # ~30% more items/s; the items come from the app's own mapping
            ),
        )
        recorder = Recorder(endpoint=endpoint, region=REGION)
        recorder.install()  # before the app builds its client, so the probe runs can be recorded
        try:
            from chalicelib.persistence.factory import shared_client, tenant_models
            from chalicelib.services import platform as get_platform
            from chalicelib.services import reset_platform

            reset_platform()
            platform = get_platform()
            platform.provisioner.ensure_control_table()

            results: list[TenantResult] = []
            warmed = (0, 0.0)
            for index, size in enumerate((scale.small, scale.large)):
                tenant_id = f"expiry-{size}"
                say(f"seeding {tenant_id}: {size} members + {scale.probe} probe members")
                seeded = seed_tenant(platform, client, tenant_id, size, scale, profiles=profiles, seed=index)
                say(f"  {seeded.items} items in {seeded.seconds:.1f} s ({seeded.items / seeded.seconds:.0f} items/s)")
                results.append(TenantResult(seeded))
            seed_seconds = sum(r.seeded.seconds for r in results)

            # Probe runs, recorded: request units per expired lot.
            for result in results:
                seeded = result.seeded
                probes = {(m, lot) for _, m, lot in seeded.of_kind(PROBE)}
                dues = {(m, lot) for _, m, lot in seeded.of_kind(DUE)}
                result.checks.append(
                    check_due(platform, seeded, PROBE_AS_OF, probes, "PROBE_AS_OF, before the probe run")
                )
                say(f"probe run on {seeded.tenant_id} (recorded)")
                with recorder.record() as calls:
                    result.probe_run, result.probe_seconds = run_job(platform, seeded.tenant_id, PROBE_AS_OF)
                result.probe_units = bill_probe(recorder, calls, int(result.probe_run.counts.get("lots_expired", 0)))
                result.checks.append(check_due(platform, seeded, PROBE_AS_OF, set(), "PROBE_AS_OF, after it"))
                result.checks.append(check_due(platform, seeded, AS_OF, dues, "AS_OF, before the timed run"))
            recorder.uninstall()

            # Warm-up: whichever tenant's run came first was ~15% slower, in either order (DynamoDB
            # Local's JVM still compiling its transactional write path after a few hundred
            # transactions), so the order decided the ratio. A throwaway tenant's run first.
            if warmup_lots:
                warmup = Scale(due=warmup_lots, small=warmup_lots, large=warmup_lots, probe=0)
                say(f"warm-up: {warmup_lots} due lots in a throwaway tenant, expired by an untimed run")
                seed_tenant(platform, client, "expiry-warmup", warmup_lots, warmup, profiles=profiles, seed=99)
                warmup_run, warmup_seconds = run_job(platform, "expiry-warmup", AS_OF)
                warmed = (int(warmup_run.counts.get("lots_expired", 0)), warmup_seconds)
                say(f"  {warmed[0]} lots in {warmup_seconds:.1f} s")
            say("DynamoDB Local round trips on each table, interleaved (before the runs)")
            before = emulator_latency(client, [r.seeded for r in results])
            for result in results:
                result.local_ms_before = before[result.seeded.tenant_id]

            # Timed runs, not recorded; the larger tenant first (any warm-up favours the smaller).
            app_client = shared_client(platform.connection)
            for result in reversed(results):
                seeded = result.seeded
                say(f"timed run on {seeded.tenant_id}")
                load = os.getloadavg()[0]
                with CallCounter(app_client) as counter:
                    result.run, result.seconds = run_job(platform, seeded.tenant_id, AS_OF)
                result.load = (load, os.getloadavg()[0])
                result.calls, result.call_seconds = counter.counts, counter.seconds
                result.index_items = counter.index_items
                say(f"  {result.lots_expired} lots in {result.seconds:.1f} s")

            say("DynamoDB Local round trips on each table, interleaved (after the runs)")
            local_ms = emulator_latency(client, [r.seeded for r in results])
            for result in results:
                result.local_ms = local_ms[result.seeded.tenant_id]

            for result in results:
                seeded = result.seeded
                say(f"verifying {seeded.tenant_id}")
                began = time.perf_counter()
                result.checks.append(check_due(platform, seeded, AS_OF, set(), "AS_OF, after the timed run"))
                models = tenant_models(seeded.tenant_id, seeded.table, platform.connection)
                result.checks.extend(
                    verify(platform, client, seeded, models, profiles=profiles, expired_kinds=(DUE, PROBE))
                )
                result.checks.append(
                    Check(
                        f"probe run counted {scale.probe} lots, timed run {scale.due}",
                        result.probe_units is not None
                        and result.probe_units.lots == scale.probe
                        and result.lots_expired == scale.due,
                        f"{result.probe_units.lots if result.probe_units else '-'} / {result.lots_expired}",
                    )
                )
                result.verify_seconds = time.perf_counter() - began
        finally:
            recorder.uninstall()
            from chalicelib.services import reset_platform

            reset_platform()
    return ExpiryResult(
        scale,
        profiles,
        results,
        seed_seconds,
        time.perf_counter() - started,
        (load_before, os.getloadavg()[0]),
        warmed,
    )


# --- printing ----------------------------------------------------------------------------------


def print_expiry(report: Report, result: ExpiryResult) -> None:
    scale = result.scale
    small, large = result.tenants
    report.heading(
        f"4. Expiry job: {scale.due} due lots in a tenant of {scale.small} and of {scale.large} members"
        + ("" if scale.full else " (reduced scale; --expiry-scale 1 for the full 10 000 / 100 000)")
    )
    report.text(
        f"Each tenant: {scale.due} members with one lot due at {AS_OF:%Y-%m-%d} (expired {DUE_AT:%Y-%m-%d}), the other "
        f"members with one lot expiring {LATER_AT:%Y-%m-%d} (in the due-lot index, not due),\nplus {scale.probe} probe "
        f"members expired first by a recorded run at {PROBE_AS_OF:%Y-%m-%d}. "
        f"Seeded with BatchWriteItem ({'balance, lot and profile' if result.profiles else 'balance and lot'} "
        f"per member) in {result.seed_seconds:.1f} s."
        + (
            f"\nBefore the timed runs, an untimed warm-up run expired {result.warmup[0]} lots of a throwaway tenant "
            f"in {result.warmup[1]:.1f} s (without it the first timed run, either tenant, was ~15% slower)."
            if result.warmup[0]
            else ""
        )
    )
    rows = []
    for t in (small, large):
        units = t.probe_units
        rows.append(
            [
                f"{t.seeded.size} members",
                t.seeded.items,
                t.lots_expired,
                f"{t.seconds:.1f}",
                f"{t.rate:.0f}",
                f"{1000 * t.seconds / t.lots_expired:.1f}" if t.lots_expired else "-",
                _g(units.per_lot("rru")) if units else "-",
                _g(units.per_lot("wru")) if units else "-",
                _g(units.per_lot("gsi_wru")) if units else "-",
                _g(units.total_per_lot) if units else "-",
                f"{t.load[0]:.1f} -> {t.load[1]:.1f}",
                verdict(all(c.ok for c in t.checks)),
            ]
        )
    report.table(
        [
            "tenant",
            "items",
            "lots expired",
            "wall s",
            "lots/s",
            "ms/lot",
            "RRU/lot",
            "WRU/lot",
            "GSI WRU/lot",
            "units/lot",
            "load avg",
            "verified",
        ],
        rows,
        right=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
        title="Timed run: services.jobs.run(JobName.EXPIRE_POINTS, as_of), unrecorded. Units per expired lot: "
        "from the recorded probe run (WRU: transactional writes doubled; GSI WRU separate). The larger tenant "
        "runs first; load avg = the machine's 1-minute load before -> after (others' work slows Local too).",
    )
    ratio = result.ratio
    report.text(
        f"time ratio, {scale.large}-member tenant / {scale.small}-member tenant: {ratio:.2f}x "
        f"(target <= {RATIO_TARGET}x: {verdict(ratio <= RATIO_TARGET)}); "
        f"members ratio {scale.large / scale.small:.0f}x."
    )
    report.text()

    # Calls per lot in the timed runs (light counter) next to the probe's.
    ops = sorted({op for t in (small, large) for op in t.calls})
    rows = []
    for op in ops:
        row: list[object] = [op]
        for t in (small, large):
            count = t.calls.get(op, 0)
            row += [
                count,
                _g(count / t.lots_expired) if t.lots_expired else "-",
                f"{1000 * t.call_seconds.get(op, 0.0) / count:.2f}" if count else "-",
            ]
        rows.append(row)
    rows.append(
        [
            "in DynamoDB calls / elsewhere (s)",
            f"{sum(small.call_seconds.values()):.1f}",
            f"{small.seconds - sum(small.call_seconds.values()):.1f}",
            "",
            f"{sum(large.call_seconds.values()):.1f}",
            f"{large.seconds - sum(large.call_seconds.values()):.1f}",
            "",
        ]
    )
    rows.append(["due-lot index entries read", small.index_items, "", "", large.index_items, "", ""])
    report.table(
        [
            "timed run: DynamoDB calls",
            f"{scale.small}: calls",
            "per lot",
            "ms/call",
            f"{scale.large}: calls",
            "per lot",
            "ms/call",
        ],
        rows,
        right=(1, 2, 3, 4, 5, 6),
        title="Counted on the app's client during the timed runs (ms/call: as the client sees it, incl. serialization)",
    )
    for when, attr in (("before", "local_ms_before"), ("after", "local_ms")):
        mine, theirs = getattr(small, attr), getattr(large, attr)
        if mine and theirs:
            report.text(
                f"DynamoDB Local alone, {when} the runs (GetItem, 1-check TransactWriteItems on both tables, "
                "interleaved; median ms): "
                + "; ".join(
                    f"{op} {mine[op]:.2f} ({scale.small}) vs {theirs[op]:.2f} ({scale.large}) = "
                    f"{theirs[op] / mine[op]:.2f}x"
                    for op in mine
                )
            )
    report.text()

    for t in (small, large):
        units = t.probe_units
        if units is None:
            continue
        rows = []
        for kind in units.kinds.values():
            size_text = ", ".join(
                f"{what} {_span(sizes)}" if len(kind.sizes) > 1 else _span(sizes) for what, sizes in kind.sizes.items()
            )
            rows.append(
                [
                    kind.name,
                    kind.calls,
                    _g(kind.rru),
                    _g(kind.wru),
                    _g(kind.gsi_wru),
                    _g((kind.rru + kind.wru + kind.gsi_wru) / units.lots) if units.lots else "-",
                    size_text,
                    "; ".join(sorted(kind.notes)),
                ]
            )
        rec = units.run_record
        rows.append([f"{rec.name} (once per run)", rec.calls, _g(rec.rru), _g(rec.wru), _g(rec.gsi_wru), "", "", ""])
        report.table(
            ["probe call", "calls", "RRU", "WRU", "GSI WRU", "units/lot", "item B", "GSI writes"],
            rows,
            right=(1, 2, 3, 4, 5),
            title=f"Probe run on the {t.seeded.size}-member tenant: {units.lots} lots in {t.probe_seconds:.2f} s "
            f"(recorded, so slower); DynamoDB Local's own ConsumedCapacity total {_g(units.local_total)}",
        )

    for t in (small, large):
        report.text(f"checks, {t.seeded.size}-member tenant (verified in {t.verify_seconds:.1f} s):")
        for c in t.checks:
            report.text(f"  {verdict(c.ok)}  {c.what}" + (f"  [{c.detail}]" if c.detail and not c.ok else ""))
    report.text(
        f"expiry section total {result.total_seconds:.1f} s; 1-minute load average {result.load[0]:.1f} at the "
        f"start, {result.load[1]:.1f} at the end ({os.cpu_count()} CPUs)"
    )
    report.text()


def _span(sizes: list[int]) -> str:
    low, high = min(sizes), max(sizes)
    return str(low) if low == high else f"{low}-{high}"


def _g(value: float) -> str:
    return f"{value:.4g}"
