"""Program as code: one YAML file holds a tenant's whole program; this module compares it with
what the API holds and plans the requests that make them agree (``loyalty program apply``).

Plain Python over plain data (no HTTP): the command fetches the current state into
:class:`Current`, calls :func:`plan`, shows the steps and sends them. Applying the same file
twice plans nothing the second time; :func:`export` writes the current state back as a file
that plans nothing.

Sections (each optional; a section left out of the file is left as it is):

* ``settings``: the program's settings (``PUT /v1/program``), replaced as a whole.
* ``tiers``: the tier program; a new version (``PUT /v1/program/tiers``) when it differs from
  the newest one.
* ``rules``: earning rules, known by name. Rules are never edited: a changed rule is ended and
  added again; a rule in force or scheduled that the file does not name is ended.
* ``rewards``: the catalog, known by name. A changed reward is updated in place (``PATCH``);
  one whose ``type`` or ``codes`` changed is archived and created again; one the file does not
  name is archived.
* ``plans``: the paid plans, replaced as a whole (``PUT /v1/program/plans``).
* ``referrals``: the referral program; a new version when it differs from the newest one.

A field left out means the API's default (the tables below hold them), so that a file says
only what differs from the defaults and still compares equal to the API's full answer. A
field the tables do not know is sent as written and compared with the field of that name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

SECTIONS = ("settings", "tiers", "rules", "rewards", "plans", "referrals")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ProgramFileError(ValueError):
    """The file cannot be planned: not YAML, an unknown section, a missing field..."""


# --- values ----------------------------------------------------------------------------------------


def _decimal(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return value  # the API says what is wrong with it
    if not number.is_finite():
        return value
    return format(number.normalize(), "f")


def _instant(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        return value
    if moment.tzinfo is None:
        return moment.isoformat()  # the API refuses it with its reason
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _text_set(value: Any) -> Any:
    return sorted(str(v) for v in value) if isinstance(value, list | tuple | set) else value


def _weekdays(value: Any) -> Any:
    if not isinstance(value, list | tuple):
        return value
    return sorted((str(v) for v in value), key=lambda day: WEEKDAYS.index(day) if day in WEEKDAYS else 7)


def _text_list(value: Any) -> Any:
    return [str(v) for v in value] if isinstance(value, list | tuple) else value


def _same(value: Any) -> Any:
    return value


REQUIRED = object()


@dataclass(frozen=True)
class Field:
    default: Any = None
    canonical: Callable[[Any], Any] = _same


def _fields(**fields: Field) -> dict[str, Field]:
    return fields


def _dec(default: Any = None) -> Field:
    return Field(default, _decimal)


def _at() -> Field:
    return Field(None, _instant)


def _req(canonical: Callable[[Any], Any] = _same) -> Field:
    return Field(REQUIRED, canonical)


def _nested(fields: dict[str, Field], default: Any = None) -> Field:
    return Field(default, lambda value: canonical(fields, value) if isinstance(value, Mapping) else value)


def _each(fields: dict[str, Field]) -> Field:
    return Field(
        REQUIRED,
        lambda value: (
            [canonical(fields, v) if isinstance(v, Mapping) else v for v in value] if isinstance(value, list) else value
        ),
    )


EXPIRY = _fields(kind=Field("none"), days=Field(None), months=Field(None), period=Field(None), periods_after=Field(0))
SETTINGS = _fields(
    points_per_currency_unit=_req(_decimal),
    rounding=_req(),
    expiry=_nested(EXPIRY, {"kind": "none"}),
    pending_days=Field(0),
    reversal_clawback=Field(False),
    expiry_warning_days=Field(14),
    birthday_bonus=Field(0),
    earn_on_shipping=Field(False),
    earn_on_tax=Field(False),
    transfers=_nested(
        _fields(enabled=Field(False), minimum=Field(1), daily_maximum=Field(None)),
        {"enabled": False},
    ),
    signup_bonus=Field(0),
    welcome_imported=Field(False),
    point_value=_dec("0"),
    erase_inactive_after_years=Field(None),
    personal_metadata_keys=Field([], _text_list),
    personal_descriptions=Field(False),
    households=_nested(_fields(enabled=Field(False), max_members=Field(6)), {"enabled": False}),
)
TIER = _fields(name=_req(), threshold=_req(_decimal), multiplier=_dec("1"), perks=Field([], _text_list))
TIERS = _fields(
    metric=_req(),
    window=_nested(_fields(kind=_req(), months=Field(None)), REQUIRED),
    grace_periods=Field(1),
    tiers=_each(TIER),
    effective_from=_at(),
)
RULE = _fields(
    name=_req(str),
    kind=_req(),
    factor=_dec(),
    points=Field(None),
    skus=Field([], _text_set),
    categories=Field([], _text_set),
    weekdays=Field([], _weekdays),
    min_order_total=_dec(),
    starts_at=_at(),
    ends_at=_at(),
    every=Field(None),
    at=Field(None),
    activity=Field(None),
    limit=Field(None),
    per=Field(None),
    tiers=Field([], _text_set),
    cap=Field(None),
    segments=Field([], _text_set),
)
REWARD = _fields(
    name=_req(str),
    type=_req(),
    points_cost=_req(),
    description=Field(None),
    amount=_dec(),
    percent=Field(None),
    sku=Field(None),
    cause=Field(None),
    starts_at=_at(),
    ends_at=_at(),
    stock=Field(None),
    per_member_limit=Field(None),
    limit_period=Field("ever"),
    tiers=Field([], _text_set),
    valid_days=Field(None),
    codes=Field("generated"),
)
#: A reward keeps these for life: changing one archives the reward and creates another.
REWARD_FIXED = ("type", "codes")
PLAN = _fields(
    plan_id=_req(str),
    name=_req(),
    tier=Field(None),
    multiplier=_dec("1"),
    perks=Field([], _text_list),
    join_bonus=Field(0),
)
REFERRALS = _fields(
    enabled=Field(True),
    referrer_points=_req(),
    referee_points=Field(0),
    min_order_total=_dec(),
    cap=_nested(_fields(limit=_req(), per=_req())),
    referee_rewarded_when_capped=Field(True),
    effective_from=_at(),
)
#: The fields of each section's objects, with their defaults (the API's, see the OpenAPI document).
SCHEMAS: dict[str, dict[str, Field]] = {
    "settings": SETTINGS,
    "tiers": TIERS,
    "rules": RULE,
    "rewards": REWARD,
    "plans": PLAN,
    "referrals": REFERRALS,
}


def canonical(fields: Mapping[str, Field], value: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
    """``value`` with every known field present (defaults filled in) in one spelling: decimals
    as plain strings, instants in UTC, sets sorted. Unknown fields are kept as they are."""
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        if name in value and value[name] is not None:
            out[name] = spec.canonical(value[name])
        elif spec.default is REQUIRED:
            if where:
                raise ProgramFileError(f"{where}: {name} is required")
            out[name] = None
        else:
            out[name] = spec.canonical(spec.default) if spec.default is not None else None
    for name, item in value.items():
        if name not in fields:
            out[name] = _instant(item) if isinstance(item, dt.datetime) else item
    return out


def _compared(fields: Mapping[str, Field], desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` as the API answers it, reduced to what ``desired`` can say: its known fields
    and the unknown fields ``desired`` names."""
    known = {name: current.get(name) for name in fields}
    extra = {name: current.get(name) for name in desired if name not in fields}
    return canonical(fields, {**known, **extra})


def differences(desired: Mapping[str, Any], current: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> list[str]:
    """``field: current -> desired`` for every field that differs (both canonical)."""
    skipped = set(ignore)
    return [
        f"{name}: {_show(current.get(name))} -> {_show(value)}"
        for name, value in desired.items()
        if name not in skipped and current.get(name) != value
    ]


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items() if v not in (None, [], {})) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


# --- the file --------------------------------------------------------------------------------------


def load(text: str) -> dict[str, Any]:
    """The file's sections, each in canonical form (ProgramFileError if it cannot be planned)."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ProgramFileError(f"not valid YAML{where}: {getattr(error, 'problem', None) or error}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ProgramFileError("the file must be a mapping of sections: " + ", ".join(SECTIONS))
    if unknown := sorted(str(k) for k in document if k not in SECTIONS):
        raise ProgramFileError(f"unknown section {', '.join(unknown)}; the sections are {', '.join(SECTIONS)}")
    program: dict[str, Any] = {}
    for section in ("settings", "tiers", "referrals"):
        if section in document:
            program[section] = _one(section, document[section])
    for section in ("rules", "rewards", "plans"):
        if section in document:
            program[section] = _many(section, document[section])
    return program


def _one(section: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProgramFileError(f"{section} must be a mapping of fields")
    if section == "tiers":
        for index, tier in enumerate(value.get("tiers") or []):
            if not isinstance(tier, dict):
                raise ProgramFileError(f"tiers.tiers[{index}] must be a mapping of fields")
            canonical(TIER, tier, where=f"tiers.tiers[{index}]")
    return canonical(SCHEMAS[section], value, where=section)


def _many(section: str, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProgramFileError(f"{section} must be a list")
    key = "plan_id" if section == "plans" else "name"
    items, seen = [], set()
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ProgramFileError(f"{section}[{index}] must be a mapping of fields")
        entry = canonical(SCHEMAS[section], item, where=f"{section}[{index}]")
        if entry[key] in seen:
            raise ProgramFileError(f"{section}[{index}]: two entries have the {key} {entry[key]!r}")
        seen.add(entry[key])
        items.append(entry)
    return items


# --- the API's state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Current:
    """What the API holds, as it answers it (``GET`` of each section)."""

    settings: dict[str, Any] | None = None
    tier_versions: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    rewards: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    referral_versions: list[dict[str, Any]] = field(default_factory=list)

    def newest_tiers(self) -> dict[str, Any] | None:
        return _newest(self.tier_versions)

    def newest_referrals(self) -> dict[str, Any] | None:
        return _newest(self.referral_versions)

    def live_rules(self) -> list[dict[str, Any]]:
        """Rules in force or scheduled (ended ones stay, never counted)."""
        return [r for r in self.rules if r.get("status") != "ended"]

    def listed_rewards(self) -> list[dict[str, Any]]:
        return [r for r in self.rewards if r.get("status") != "archived"]


def _newest(versions: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(versions, key=lambda v: (str(v.get("created_at")), str(v.get("id")))) if versions else None


# --- the plan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One request of the plan, and what it changes (for ``--diff``)."""

    section: str
    action: str  # set, add, update, end, archive
    label: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    changes: tuple[str, ...] = ()

    def describe(self) -> str:
        sign = {"add": "+", "end": "-", "archive": "-"}.get(self.action, "~")
        head = f"{sign} {self.label}"
        return head + (": " + "; ".join(self.changes) if self.changes else "")


def plan(program: Mapping[str, Any], current: Current) -> list[Step]:
    """The requests that make the API hold ``program`` (from :func:`load`), in the order to send
    them: settings, tiers (plans and rules name them), rules, rewards, plans, referrals."""
    steps: list[Step] = []
    if "settings" in program:
        steps += _settings(program["settings"], current.settings)
    if "tiers" in program:
        steps += _versioned("tiers", "tier program", "/v1/program/tiers", program["tiers"], current.newest_tiers())
    if "rules" in program:
        steps += _rules(program["rules"], current)
    if "rewards" in program:
        steps += _rewards(program["rewards"], current)
    if "plans" in program:
        steps += _plans(program["plans"], current.plans)
    if "referrals" in program:
        newest = current.newest_referrals()
        steps += _versioned("referrals", "referral program", "/v1/program/referrals", program["referrals"], newest)
    return steps


def _body(value: Mapping[str, Any]) -> dict[str, Any]:
    """A request body: fields left at null are left out (the API's default)."""
    out: dict[str, Any] = {}
    for name, item in value.items():
        if item is None:
            continue
        out[name] = _body(item) if isinstance(item, Mapping) else item
    return out


def _settings(desired: dict[str, Any], current: dict[str, Any] | None) -> list[Step]:
    now = _compared(SETTINGS, desired, current) if current else None
    changes = differences(desired, now) if now else [f"{k}: {_show(v)}" for k, v in desired.items()]
    if now is not None and not changes:
        return []
    return [Step("settings", "set", "settings", "PUT", "/v1/program", _body(desired), tuple(changes))]


def _versioned(
    section: str, label: str, path: str, desired: dict[str, Any], newest: dict[str, Any] | None
) -> list[Step]:
    """A new version unless the newest one says the same (its effective_from compared only
    when the file gives one)."""
    fields = SCHEMAS[section]
    ignore = () if desired.get("effective_from") else ("effective_from",)
    if newest is not None:
        changes = differences(desired, _compared(fields, desired, newest), ignore=ignore)
        if not changes:
            return []
    else:
        changes = [f"{k}: {_show(v)}" for k, v in desired.items() if v not in (None, []) and k not in ignore]
    return [Step(section, "set", f"{label}: new version", "PUT", path, _body(desired), tuple(changes))]


def _rules(desired: list[dict[str, Any]], current: Current) -> list[Step]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for rule in current.rules:
        by_name.setdefault(str(rule.get("name")), []).append(rule)
    kept: set[str] = set()
    adds: list[Step] = []
    for rule in desired:
        same = [r for r in by_name.get(rule["name"], []) if _compared(RULE, rule, r) == rule]
        if same:
            kept.add(str(same[0]["id"]))
            continue
        live = [r for r in by_name.get(rule["name"], []) if r.get("status") != "ended"]
        changes = differences(rule, _compared(RULE, rule, live[0]), ignore=("name",)) if live else []
        label = f'rule "{rule["name"]}"' + (" (replaced: rules are never edited)" if live else f" ({rule['kind']})")
        adds.append(Step("rules", "add", label, "POST", "/v1/program/rules", _body(rule), tuple(changes)))
    ends = [
        Step("rules", "end", f'rule "{r.get("name")}" ends', "POST", f"/v1/program/rules/{r['id']}/end")
        for r in current.live_rules()
        if str(r["id"]) not in kept
    ]
    return ends + adds  # ended first: a replaced rule never counts twice


def _rewards(desired: list[dict[str, Any]], current: Current) -> list[Step]:
    listed: dict[str, dict[str, Any]] = {}
    for reward in current.listed_rewards():
        listed.setdefault(str(reward.get("name")), reward)
    steps: list[Step] = []
    matched: set[str] = set()
    for reward in desired:
        found = listed.get(reward["name"])
        label = f'reward "{reward["name"]}"'
        if found is None:
            steps.append(Step("rewards", "add", f"{label} ({reward['type']})", "POST", "/v1/rewards", _body(reward)))
            continue
        matched.add(str(found["id"]))
        now = _compared(REWARD, reward, found)
        changes = differences(reward, now)
        if not changes:
            continue
        if any(now.get(name) != reward.get(name) for name in REWARD_FIXED):
            steps.append(Step("rewards", "archive", f"{label} archived", "POST", f"/v1/rewards/{found['id']}/archive"))
            steps.append(
                Step("rewards", "add", f"{label} (recreated)", "POST", "/v1/rewards", _body(reward), tuple(changes))
            )
            continue
        patch = {name: value for name, value in reward.items() if now.get(name) != value}
        steps.append(Step("rewards", "update", label, "PATCH", f"/v1/rewards/{found['id']}", patch, tuple(changes)))
    for reward in current.listed_rewards():
        if str(reward["id"]) not in matched:
            path = f"/v1/rewards/{reward['id']}/archive"
            steps.append(Step("rewards", "archive", f'reward "{reward.get("name")}" archived', "POST", path))
    return steps


def _plans(desired: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[Step]:
    now = [_compared(PLAN, plan, found) for plan, found in zip(desired, current, strict=False)]
    if len(current) == len(desired) and now == desired:
        return []
    before = {str(p.get("plan_id")): canonical(PLAN, p) for p in current}
    changes = []
    for plan in desired:
        old = before.pop(plan["plan_id"], None)
        if old is None:
            changes.append(f"+ {plan['plan_id']}")
        elif diff := differences(plan, old):
            changes.append(f"{plan['plan_id']} ({'; '.join(diff)})")
    changes += [f"- {plan_id}" for plan_id in before]
    if not changes:
        changes = ["order of the plans"]
    body = {"plans": [_body(p) for p in desired]}
    return [Step("plans", "set", "plans", "PUT", "/v1/program/plans", body, tuple(changes))]


# --- export ----------------------------------------------------------------------------------------


def export(current: Current) -> dict[str, Any]:
    """The current program as a file's sections: what :func:`load` reads back and :func:`plan`
    finds nothing to change in. Fields at their default are left out; decimals are spelled as
    the API spells them ("5.00")."""
    program: dict[str, Any] = {}
    if current.settings is not None:
        program["settings"] = _terse(SETTINGS, current.settings)
    if (tiers := current.newest_tiers()) is not None:
        value = _terse(TIERS, {**tiers, "effective_from": None})
        value["tiers"] = [_terse(TIER, t) for t in tiers.get("tiers", [])]
        program["tiers"] = value
    program["rules"] = [_terse(RULE, r) for r in current.live_rules()]
    program["rewards"] = [_terse(REWARD, r) for r in current.listed_rewards()]
    program["plans"] = [_terse(PLAN, p) for p in current.plans]
    if (referrals := current.newest_referrals()) is not None:
        program["referrals"] = _terse(REFERRALS, {**referrals, "effective_from": None})
    return program


def _terse(fields: Mapping[str, Field], answer: Mapping[str, Any]) -> dict[str, Any]:
    """The known fields of an API answer that differ from their default."""
    value = canonical(fields, answer)
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        item = value.get(name)
        default = spec.canonical(spec.default) if spec.default not in (None, REQUIRED) else None
        if spec.default is not REQUIRED and (item == default or item in (None, [])):
            continue
        if spec.canonical is _decimal and isinstance(answer.get(name), str):
            item = answer[name]
        elif isinstance(item, Mapping):
            item = _terse(EXPIRY, item) if name == "expiry" else {k: v for k, v in item.items() if v is not None}
        out[name] = item
    return out
