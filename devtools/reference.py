"""The reference pages of the docs site, generated from the code at build time.

``mkdocs build`` calls :func:`pages` through ``devtools/docs_hooks.py``; nothing here is kept
by hand. Each page reads its source of truth:

* errors: every ``LoyaltyError`` subclass in ``chalicelib`` (its ``code`` and docstring), and
  its HTTP status from ``chalicelib.api.errors.status_of``;
* events: ``chalicelib.domain.events.EventType``; the payloads of ledger and member events are
  built by ``chalicelib.domain.event_payloads``, the ``data`` keys of the others are read from
  the code that builds them;
* jobs: ``chalicelib.domain.jobs.JobName``, the job objects ``chalicelib/services.py`` wires to
  each name, the keys they count, and the schedules and queue handlers of ``chalicelib/jobs``;
* configuration: ``chalicelib.settings.Settings`` and the variables the developer tools read;
* the API: the OpenAPI document ``chalicelib.api.openapi`` builds.

``python -m devtools.reference OUT_DIR`` writes the same pages as files.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHALICELIB = ROOT / "chalicelib"


# --- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    name: str
    module: str
    doc: str


def _import_all(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
        importlib.import_module(info.name)


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def _first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _own_doc(cls: type) -> str:
    """The class's own docstring, not one inherited from its base."""
    return _first_paragraph(cls) if "__doc__" in vars(cls) and cls.__doc__ else ""


def error_codes() -> list[ErrorCode]:
    """Every code the API can answer with, by status: each error class of ``chalicelib`` that a
    caller can see, and the 500 of a bug."""
    _import_all("chalicelib")  # every module, so every error class is defined
    from chalicelib.api.errors import status_of
    from chalicelib.domain.errors import LoyaltyError

    codes: dict[str, ErrorCode] = {}
    for cls in [LoyaltyError, *_subclasses(LoyaltyError)]:
        if cls.__name__.startswith("_"):  # private: caught before it reaches a caller
            continue
        code = vars(cls).get("code")
        if not isinstance(code, str) or code in codes:
            continue
        instance = cls.__new__(cls)
        codes[code] = ErrorCode(code, status_of(instance), cls.__name__, cls.__module__, _own_doc(cls))
    codes["internal_error"] = ErrorCode(
        "internal_error",
        500,
        "internal_error_response",
        "chalicelib.api.errors",
        "A bug: the request failed unexpectedly; it is logged.",
    )
    return sorted(codes.values(), key=lambda e: (e.status, e.code))


def errors_page() -> str:
    from chalicelib.api.errors import STATUS_BY_ERROR

    lines = [
        "# Error codes",
        "",
        "Generated from the code (`chalicelib/domain/errors.py`, the error classes of each feature, and the",
        "status table `chalicelib/api/errors.py`). Every error has one shape:",
        "",
        "```json",
        '{"error": {"code": "insufficient_points", "message": "...", "details": {}}}',
        "```",
        "",
        "A refused request changes nothing. A `503 retry_later` carries `Retry-After: 1`: retry shortly, with the",
        "same `Idempotency-Key` on routes that take one. `409 tenant_not_ready` carries `Retry-After: 5`.",
        "",
        "## Status of each error class",
        "",
        "The first class that matches gives the status:",
        "",
        "| class | status |",
        "| --- | --- |",
    ]
    lines += [f"| `{cls.__name__}` | {status} |" for cls, status in STATUS_BY_ERROR]
    lines += ["", "## Codes", "", "| status | code | class | meaning |", "| --- | --- | --- | --- |"]
    for error in error_codes():
        lines.append(f"| {error.status} | `{error.code}` | `{error.module}.{error.name}` | {_cell(error.doc)} |")
    lines += [
        "",
        "The API Gateway in front of a deployed stage answers some requests itself, in the same shape: see",
        "[Quotas and limits](../operations/quotas.md#api-gateways-own-answers) (`throttled` among them).",
        "",
    ]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- events ----------------------------------------------------------------------------------


def _enum_comments(path: Path, class_name: str, *, blocks: bool = True) -> dict[str, str]:
    """``#:`` comments above each member of an enum (or fields of a class), by member name.
    ``blocks``: a comment above consecutive lines covers each of them."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    comments: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            previous: tuple[str, int] | None = None
            for stmt in node.body:
                target = None
                if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                    target = stmt.targets[0].id
                elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    target = stmt.target.id
                if target is None:
                    continue
                text: list[str] = []
                row = stmt.lineno - 2
                while row >= 0 and lines[row].strip().startswith("#:"):
                    text.insert(0, lines[row].strip().removeprefix("#:").strip())
                    row -= 1
                if blocks and not text and previous is not None and stmt.lineno == previous[1] + 1:
                    text = [comments[previous[0]]]  # a comment above a block of lines covers the block
                comments[target] = " ".join(text)
                previous = (target, stmt.end_lineno or stmt.lineno)
    return comments


@cache
def _tree(path: Path) -> ast.Module:
    """A source file's syntax tree, parsed once per process."""
    return ast.parse(path.read_text(), filename=str(path))


def _python_files(base: Path) -> list[Path]:
    return sorted(path for path in base.rglob("*.py") if "__pycache__" not in path.parts)


#: Event objects whose type is given by their class, not by an argument.
EVENT_CLASSES = {"TierEvent": "tier.changed"}


def _event_constants(types: set[str]) -> dict[str, str]:
    """Module-level names bound to an event type's string (``SUBSCRIPTION_STARTED = "..."``)."""
    names: dict[str, str] = {}
    for path in _python_files(CHALICELIB):
        for node in _tree(path).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and node.value.value in types
                and isinstance(node.targets[0], ast.Name)
            ):
                names[node.targets[0].id] = node.value.value
    return names


def _event_type_of(node: ast.expr, constants: dict[str, str], types: set[str]) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "EventType":
        from chalicelib.domain.events import EventType

        return str(EventType[node.attr])
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.Constant) and node.value in types:
        return str(node.value)
    return None


def _dict_keys(node: ast.expr) -> list[str]:
    if not isinstance(node, ast.Dict):
        return []
    return [key.value for key in node.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)]


def event_data_keys() -> dict[str, list[str]]:
    """The keys of ``data`` for the events built from a literal dict: a call that names the
    event's type (or an event class of one type) and passes a dict literal; a function taking
    the type as an argument and building its dict (its call sites' keyword arguments add keys)."""
    from chalicelib.domain.events import EventType

    types = {str(t) for t in EventType}
    constants = _event_constants(types)
    keys: dict[str, list[str]] = {}

    def add(event_type: str, names: list[str]) -> None:
        known = keys.setdefault(event_type, [])
        known += [name for name in names if name not in known]

    builders: dict[str, list[str]] = {}  # function name -> its dict's keys (when it has **extra)
    trees = [_tree(path) for path in _python_files(CHALICELIB)]
    for tree in trees:
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef) and func.args.kwarg is not None:
                for node in ast.walk(func):
                    if isinstance(node, ast.Dict) and None in node.keys and _dict_keys(node):
                        builders[func.name] = _dict_keys(node)
    for tree in trees:
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
            arguments = list(call.args) + [keyword.value for keyword in call.keywords]
            event_type = EVENT_CLASSES.get(name)
            for argument in arguments:
                event_type = event_type or _event_type_of(argument, constants, types)
            if event_type is None:
                continue
            if name in builders:
                add(event_type, builders[name] + [k.arg for k in call.keywords if k.arg])
                continue
            for argument in arguments:
                add(event_type, _dict_keys(argument))
    # A type chosen in an assignment (``kind = SUBSCRIPTION_CANCELLED``) of a module that calls a
    # builder reaches the builder through a variable: the builder's own keys.
    for tree in trees:
        called = {
            call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
            for call in ast.walk(tree)
            if isinstance(call, ast.Call)
        } & builders.keys()
        for assign in ast.walk(tree):
            if isinstance(assign, ast.Assign) and not isinstance(assign.value, ast.Constant):
                for node in ast.walk(assign.value):
                    event_type = _event_type_of(node, constants, types) if isinstance(node, ast.expr) else None
                    for builder in sorted(called) if event_type else ():
                        add(event_type, builders[builder])
    return keys


def _sample_payloads() -> dict[str, dict[str, Any]]:
    """Examples built by the code that publishes events, from sample ledger entries and a member."""
    from chalicelib.domain.entries import Balance, LedgerEntry
    from chalicelib.domain.event_payloads import event_payload
    from chalicelib.domain.events import EVENT_OF_MOVEMENT, Event
    from chalicelib.domain.members import Member
    from chalicelib.domain.movement_requests import MovementType
    from chalicelib.domain.rules import Share

    at = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    member_id = "mem_01JNB3Z1QK8W2Y6V4T0R9S7P5M"
    balance = Balance(
        member_id=member_id,
        available=1370,
        lifetime_earned=1500,
        lifetime_redeemed=130,
        lifetime_adjusted=0,
        version=7,
        updated_at=at,
    )
    samples: dict[MovementType, dict[str, Any]] = {
        MovementType.EARN: {
            "points": 125,
            "amount": "12.50",
            "currency": "EUR",
            "reference": "order-1042",
            "expires_at": at + timedelta(days=365),
            "breakdown": (Share(source="base", name="Base rate", points=125, rule_id=None),),
        },
        MovementType.REDEEM: {"points": -130, "reference": "rwd_01JNB40000000000000000000"},
        MovementType.ADJUST: {"points": 50, "reason": "goodwill"},
        MovementType.EXPIRE: {"points": -20, "metadata": {"lot_id": "txn_01JKZ00000000000000000000"}},
        MovementType.MATURE: {"points": 0, "pending_change": -40},
        MovementType.REVERSE: {"points": -25, "reference": "order-1042", "amount": "2.50", "currency": "EUR"},
        MovementType.TRANSFER: {
            "points": -300,
            "reference": "trf_01JNB3Z2140000000000000000",
            "metadata": {
                "transfer_id": "trf_01JNB3Z2140000000000000000",
                "to_member_id": "mem_01JNB41000000000000000000",
            },
        },
    }
    payloads: dict[str, dict[str, Any]] = {}
    for sequence, (movement, fields) in enumerate(samples.items(), start=8):
        entry = LedgerEntry(
            transaction_id=f"txn_01JNB3Z2{sequence:02d}0000000000000000",
            member_id=member_id,
            movement=movement,
            sequence=sequence,
            idempotency_key=f"{movement}-{sequence}",
            request_fingerprint="-",
            occurred_at=at,
            created_at=at,
            balance_after=balance,
            **fields,
        )
        payloads[str(EVENT_OF_MOVEMENT[movement])] = event_payload(Event.of_entry(entry))
    member = Member(
        member_id=member_id,
        external_id="crm-8812",
        email=None,
        name=None,
        birthday=None,
        marketing_consent=False,
        created_at=at,
        updated_at=at,
    )
    payloads["member.created"] = event_payload(Event.of_member(member))
    return payloads


#: Illustrative values for the keys of notice events' data, by the key's name or ending.
_SAMPLE_BY_NAME: dict[str, Any] = {
    "from_tier": "silver",
    "to_tier": "gold",
    "tier": "gold",
    "direction": "upgrade",
    "multiplier": "1.5",
    "metric": "points",
    "qualifying": "2140",
    "status": "completed",
    "resumed": False,
    "birthday": "1990-03-01",
    "expiry_date": "2026-03-31",
    "reason": "qualified",
    "plan_id": "premium",
    "bonus_transaction_id": "txn_01JNB3Z2080000000000000000",
    "reference": "invoice-1042",
    "code": "CJ3V-32F4-CQQE",
}


def _sample_value(key: str) -> Any:
    if key in _SAMPLE_BY_NAME:
        return _SAMPLE_BY_NAME[key]
    if key.endswith(("_at", "_start", "_end")):
        return "2026-03-01T12:00:00Z"
    if key.endswith("_id"):
        prefix = {"member": "mem", "referrer": "mem", "referee": "mem", "subscription": "sub"}.get(
            key.removesuffix("_id"), key.removesuffix("_id")
        )
        return f"{prefix}_01JNB3Z1QK8W2Y6V4T0R9S7P5M" if prefix in {"mem", "sub"} else f"{prefix}-1042"
    if key == "points" or key.endswith(("_points", "_bonus")):
        return 100
    return "..."


def events_page() -> str:
    from chalicelib.domain.events import EventType

    comments = _enum_comments(CHALICELIB / "domain" / "events.py", "EventType")
    keys = event_data_keys()
    payloads = _sample_payloads()
    lines = [
        "# Event types",
        "",
        "Generated from `chalicelib/domain/events.py` (the types), `chalicelib/domain/event_payloads.py` (the",
        "shape) and the code that builds each event's data. Every event has the same envelope, whether it is read",
        "from `GET /v1/events`, sent as a webhook's `data` or put on EventBridge as `detail` (with `tenant_id`):",
        "",
        "```json",
        '{"id": "evt_...", "type": "points.earned", "member_id": "mem_...", "created_at": "...", "data": {}}',
        "```",
        "",
        "| type | what it says | `data` |",
        "| --- | --- | --- |",
    ]
    from chalicelib.domain.events import EVENT_OF_MOVEMENT

    movements = {str(event): str(movement) for movement, event in EVENT_OF_MOVEMENT.items()}
    comments.setdefault("MEMBER_CREATED", "")
    for event_type in EventType:
        name = str(event_type)
        if not comments.get(event_type.name) and name in movements:
            comments[event_type.name] = f"A ledger entry of type `{movements[name]}` was recorded."
        if name == "member.created" and not comments[event_type.name]:
            comments[event_type.name] = "A member was enrolled (through the API, an intake or an import)."
        if name in payloads:
            data = "the transaction (example below)" if name.startswith("points.") else "the member (example below)"
        else:
            data = ", ".join(f"`{key}`" for key in keys.get(name, [])) or "-"
        lines.append(f"| `{name}` | {_cell(comments.get(event_type.name, ''))} | {data} |")
    lines += [
        "",
        "Webhook endpoints may also subscribe to `webhook.disabled` by name (it is not part of `*`): it is",
        "sent to the brand's other endpoints when one is disabled, and is not in the feed.",
        "",
        "## Examples",
        "",
        "Built by `chalicelib.domain.event_payloads.event_payload` from sample entries:",
        "",
    ]
    for name, payload in payloads.items():
        lines += [f"### `{name}`", "", "```json", json.dumps(payload, indent=2), "```", ""]
    lines += [
        "The other events carry the keys the table lists (the union of what their builders write: a key that",
        "does not apply to one event is absent or null, e.g. a tier change not made by a paid plan has no",
        "`plan_id`). Their shape, with illustrative values:",
        "",
    ]
    for event_type in EventType:
        name = str(event_type)
        if name in payloads or not keys.get(name):
            continue
        example = {
            "id": "evt_01JNB3Z2080000000000000000",
            "type": name,
            "member_id": "mem_01JNB3Z1QK8W2Y6V4T0R9S7P5M",
            "created_at": "2026-03-01T12:00:00Z",
            "data": {key: _sample_value(key) for key in keys[name]},
        }
        lines += [f"### `{name}`", "", "```json", json.dumps(example, indent=2), "```", ""]
    return "\n".join(lines)


# --- jobs ------------------------------------------------------------------------------------


def _classes_with_run() -> dict[str, ast.ClassDef]:
    found: dict[str, ast.ClassDef] = {}
    for path in _python_files(CHALICELIB / "domain"):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(item, ast.FunctionDef) and item.name == "run" for item in node.body
            ):
                found[node.name] = node
    return found


def _functions() -> dict[str, ast.FunctionDef]:
    found: dict[str, ast.FunctionDef] = {}
    for path in [*_python_files(CHALICELIB / "domain"), CHALICELIB / "services.py"]:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.FunctionDef):
                found.setdefault(node.name, node)
    return found


def _count_keys(node: ast.AST, functions: dict[str, ast.FunctionDef], seen: set[str]) -> list[str]:
    """Keys of the dicts assigned to ``counts`` or returned by ``node``, and by the functions
    whose result it returns (followed once each)."""
    keys: list[str] = []
    for child in ast.walk(node):
        value = None
        if isinstance(child, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "counts" for t in child.targets):
            value = child.value
        elif isinstance(child, ast.Return):
            value = child.value
        if value is None:
            continue
        keys += [key for key in _dict_keys(value) if key not in keys]
        if isinstance(child, ast.Return) and isinstance(value, ast.Call):
            called = value.func.attr if isinstance(value.func, ast.Attribute) else getattr(value.func, "id", "")
            if called in functions and called not in seen and called != "run":
                seen.add(called)
                keys += [key for key in _count_keys(functions[called], functions, seen) if key not in keys]
    return keys


def job_counts() -> dict[str, list[str]]:
    """What each job of ``JobName`` counts, from the job object ``services.py`` gives it."""
    classes = _classes_with_run()
    functions = _functions()
    wired: dict[str, str] = {}
    tree = _tree(CHALICELIB / "services.py")
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Attribute)
                    and isinstance(key.value, ast.Name)
                    and key.value.id == "JobName"
                    and isinstance(value, ast.Call | ast.Name)
                ):
                    target = value.func if isinstance(value, ast.Call) else value
                    wired[key.attr] = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
    # A local variable (``notify = NotificationJob(...)``) or a factory function: the class it builds.
    assigned = {
        node.targets[0].id: node.value.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
    }
    from chalicelib.domain.jobs import JobName

    counts: dict[str, list[str]] = {}
    for job in JobName:
        target = wired.get(job.name, "")
        target = assigned.get(target, target)
        if target not in classes and target in functions:
            built = [
                n.func.id
                for n in ast.walk(functions[target])
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in classes
            ]
            target = built[0] if built else target
        cls = classes.get(target)
        if cls is None:
            counts[str(job)] = []
            continue
        run = next(item for item in cls.body if isinstance(item, ast.FunctionDef) and item.name == "run")
        counts[str(job)] = _count_keys(run, functions, set())
    return counts


@dataclass(frozen=True)
class Handler:
    name: str
    trigger: str
    doc: str
    module: str


def handlers() -> list[Handler]:
    """The scheduled and queue handlers of ``chalicelib/jobs``, read from their decorators."""
    found: list[Handler] = []
    for path in _python_files(CHALICELIB / "jobs"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tree = _tree(path)
        strings = {
            node.targets[0].id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
        }
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
                    continue
                kind = decorator.func.attr
                if kind not in {"schedule", "on_sqs_message"}:
                    continue
                options = {k.arg: k.value for k in decorator.keywords if k.arg}
                name_node = options.get("name")
                name = name_node.value if isinstance(name_node, ast.Constant) else node.name
                if kind == "schedule":
                    trigger = "schedule: " + _rate_text(decorator.args[0]) if decorator.args else "schedule"
                else:
                    queue = options.get("queue")
                    queue_name = strings.get(ast.unparse(queue), ast.unparse(queue)) if queue is not None else ""
                    trigger = f"SQS queue `{queue_name}`" if queue_name else "SQS queue"
                found.append(Handler(str(name), trigger, _first_paragraph_of(node), module))
    return found


def _rate_text(node: ast.expr) -> str:
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Rate" and node.args:
        amount = ast.unparse(node.args[0])
        unit = next((ast.unparse(k.value) for k in node.keywords if k.arg == "unit"), "")
        unit = unit.removeprefix("Rate.").lower()
        return f"every {unit.removesuffix('s')}" if amount == "1" else f"every {amount} {unit}"
    return ast.unparse(node)


def _first_paragraph_of(node: ast.FunctionDef) -> str:
    doc = ast.get_docstring(node) or ""
    return " ".join(doc.split("\n\n")[0].split())


def jobs_page() -> str:
    from chalicelib.domain.jobs import JobName

    comments = _enum_comments(CHALICELIB / "domain" / "jobs.py", "JobName")
    counts = job_counts()
    lines = [
        "# Jobs",
        "",
        "Generated from `chalicelib/domain/jobs.py` (the names), `chalicelib/services.py` (the object each name",
        "runs) and `chalicelib/jobs/` (the schedules and queue handlers).",
        "",
        "## Tenant jobs",
        "",
        "Each runs once per active tenant (one SQS message per tenant when deployed), is recorded as a run",
        "(`GET /v1/jobs/runs`) with the counts below, and can be run by hand with an admin key:",
        '`POST /v1/jobs/{job}/run` with an optional `{"as_of": "..."}`, or',
        "`.venv/bin/python -m devtools.cli jobs run <job> --as-of 2027-01-01T00:00:00Z`.",
        "",
        "| job | what it does | counts |",
        "| --- | --- | --- |",
    ]
    for job in JobName:
        what = comments.get(job.name) or _job_default_text(str(job))
        keys = ", ".join(f"`{key}`" for key in counts.get(str(job), [])) or "-"
        lines.append(f"| `{job}` | {_cell(what)} | {keys} |")
    lines += [
        "",
        "## Handlers",
        "",
        "The functions of `chalicelib/jobs/` beside the API. Each schedule named after a tenant job runs it for",
        "every active tenant (deployed: one message per tenant on the jobs queue, which `run-tenant-job` consumes).",
        "",
        "| handler | trigger | module | what it does |",
        "| --- | --- | --- | --- |",
    ]
    for handler in handlers():
        if not handler.doc and handler.name in {str(job) for job in JobName}:
            handler = replace(handler, doc=f"Runs `{handler.name}` for every active tenant.")
        lines.append(f"| `{handler.name}` | {handler.trigger} | `{handler.module}` | {_cell(handler.doc)} |")
    lines.append("")
    return "\n".join(lines)


def _job_default_text(job: str) -> str:
    """Words for the jobs whose enum member carries no comment."""
    from chalicelib.domain.jobs import SettlementJob

    if job in {"expire-points", "mature-pending"}:
        return _first_paragraph(SettlementJob)
    if job == "notify":
        from chalicelib.domain.notifications import NotificationJob

        return _first_paragraph(NotificationJob) or "Expiry warnings and birthdays (with the birthday bonus)."
    return ""


# --- configuration ---------------------------------------------------------------------------

#: Variables the settings read under another name than ``LOYALTY_<FIELD>``.
_OTHER_SOURCES = {
    "aws_region": "`AWS_DEFAULT_REGION`, else `AWS_REGION`",
    "tracing": "`POWERTOOLS_TRACE_DISABLED` (set: `false`)",
}


def configuration_page() -> str:
    from chalicelib.settings import ENV_PREFIX, Settings

    comments = _enum_comments(CHALICELIB / "settings.py", "Settings", blocks=False)
    lines = [
        "# Configuration",
        "",
        "Generated from `chalicelib/settings.py`, the only module that reads the environment. Every field is",
        f"read from `{ENV_PREFIX}<FIELD>` (upper case); deployed stages set them in `.chalice/config.json` and",
        "the CDK stack.",
        "",
        "| variable | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        variable = _OTHER_SOURCES.get(name, f"`{ENV_PREFIX}{name.upper()}`")
        annotation = field.annotation
        type_text = getattr(annotation, "__name__", None) or re.sub(r"\b[a-z_]+\.", "", str(annotation))
        default = "-" if field.default is None else f"`{field.default!r}`"
        lines.append(f"| {variable} | `{_cell(type_text)}` | {default} | {_cell(comments.get(name) or '-')} |")
    tools = sorted(
        {
            name
            for path in _python_files(ROOT / "devtools")
            for name in re.findall(r"\bLOYALTY_[A-Z_]+\b", path.read_text())
            if name.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields and name != ENV_PREFIX
        }
    )
    lines += [
        "",
        "## Developer tools",
        "",
        "Read by `devtools/` (`make run`, the CLI) only, never by the deployed code:",
        "",
        ", ".join(f"`{name}`" for name in tools) + ".",
        "",
        "See [Quick start](../quickstart.md) for what `make run` does with them.",
        "",
    ]
    return "\n".join(lines)


# --- the API ---------------------------------------------------------------------------------


def openapi() -> dict[str, Any]:
    importlib.import_module("app")  # registers every operation
    from chalicelib.api.openapi import openapi_document

    return openapi_document()


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return f"[`{name}`](#{name.lower()})"
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    if "oneOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["oneOf"])
    return f"`{schema.get('type', 'object')}`"


def api_page(document: dict[str, Any]) -> str:
    lines = [
        "# API operations",
        "",
        "Generated from the OpenAPI document the API serves at `GET /v1/openapi.json` (built by",
        "`chalicelib.api.openapi` from the declared operations and their pydantic models). The whole document is",
        "also here: [openapi.json](openapi.json). The API serves it as an interactive page too, at `GET /v1/docs`",
        "(no key needed).",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            tag = (operation.get("tags") or ["Other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    lines += ["| operation | | scope |", "| --- | --- | --- |"]
    for tag in sorted(by_tag):
        for method, path, operation in by_tag[tag]:
            anchor = operation["operationId"].replace("_", "-")
            scope = _access(operation)
            lines.append(f"| [`{method} {path}`](#{anchor}) | {_cell(operation.get('summary', ''))} | {scope} |")
    for tag in sorted(by_tag):
        lines += ["", f"## {tag}", ""]
        for method, path, operation in by_tag[tag]:
            lines += _operation(method, path, operation)
    lines += ["", "## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines) + "\n"


def _access(operation: dict[str, Any]) -> str:
    """Who may call: a key's scope, the operator key, a signature, or anyone."""
    if "x-required-scope" in operation:
        return f"`{operation['x-required-scope']}` scope"
    schemes = [name for requirement in operation.get("security", []) for name in requirement]
    return ", ".join(f"`{name}`" for name in schemes) or "no key"


def _operation(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    anchor = operation["operationId"].replace("_", "-")
    lines = [f"### {operation.get('summary', operation['operationId'])} {{#{anchor}}}", "", f"`{method} {path}`", ""]
    if operation.get("description"):
        lines += [operation["description"], ""]
    lines += [f"Access: {_access(operation)}.", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | required | schema | description |", "| --- | --- | --- | --- | --- |"]
        for parameter in parameters:
            schema = parameter.get("schema", {})
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {'yes' if parameter.get('required') else 'no'} "
                f"| {_schema_name(schema)} | {_cell(parameter.get('description', ''))} |"
            )
        lines.append("")
    body = operation.get("requestBody")
    if body:
        content = body.get("content", {})
        kinds = ", ".join(
            f"`{media}` {_schema_name(value.get('schema', {}))}" for media, value in sorted(content.items())
        )
        lines += [f"Body ({'required' if body.get('required') else 'optional'}): {kinds}.", ""]
        lines += _example("Example request", content.get("application/json", {}))
    lines += ["| status | answer |", "| --- | --- |"]
    for status, response in operation.get("responses", {}).items():
        schema = next(iter(response.get("content", {}).values()), {}).get("schema")
        shape = f" {_schema_name(schema)}" if schema else ""
        lines.append(f"| {status} | {_cell(response.get('description', ''))}{shape} |")
    lines.append("")
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2"):
            for media, content in response.get("content", {}).items():
                lines += _example(f"Example answer ({status}, `{media}`)", content)
    return lines


def _example(title: str, content: dict[str, Any]) -> list[str]:
    """A media type's example as a fenced block (JSON indented; text as it is)."""
    if "example" not in content:
        return []
    example = content["example"]
    if isinstance(example, str):
        return [f"{title}:", "", "```text", example.rstrip("\r\n").replace("\r\n", "\n"), "```", ""]
    return [f"{title}:", "", "```json", json.dumps(example, indent=2, ensure_ascii=False), "```", ""]


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    properties = schema.get("properties")
    if properties:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
        for field, spec in properties.items():
            lines.append(
                f"| `{field}` | {_schema_name(spec)} | {'yes' if field in required else 'no'} "
                f"| {_cell(spec.get('description', ''))} |"
            )
        lines.append("")
    elif "enum" in schema:
        lines += ["One of " + ", ".join(f"`{value}`" for value in schema["enum"]) + ".", ""]
    return lines


# --- all pages -------------------------------------------------------------------------------


def pages() -> dict[str, str]:
    """Every generated file of the site, by its path under ``docs/``."""
    document = openapi()
    return {
        "reference/api.md": api_page(document),
        "reference/openapi.json": json.dumps(document, indent=2) + "\n",
        "reference/errors.md": errors_page(),
        "reference/events.md": events_page(),
        "reference/jobs.md": jobs_page(),
        "reference/configuration.md": configuration_page(),
    }


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "docs"
    for name, text in pages().items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
