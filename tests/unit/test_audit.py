"""Audit entries (what they keep of an object) and the consent in force at a moment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from chalicelib.domain.api_keys import issue_api_key
from chalicelib.domain.audit import Actor, AuditAction, Auditor, Channel, snapshot
from chalicelib.domain.consents import Consent, ConsentChange, ConsentService, new_consent_change
from chalicelib.domain.members import Member
from chalicelib.domain.ports import Page
from chalicelib.domain.program import Program
from chalicelib.domain.scopes import Scope

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "audit.md"
T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_an_entry_keeps_no_secret_and_renders_values_as_json() -> None:
    # Given an API key record (its digest is a secret) and a program (with internal summaries)
    issued = issue_api_key("acme", name="till", scopes=frozenset({Scope.WRITE}), now=T0)
    auditor = Auditor(Actor("key_01JD0000000000000000000000"), clock=lambda: T0)

    # When entries are made of them
    key_entry = auditor.entry(AuditAction.API_KEY_CREATED, "api_key", issued.record.key_id, after=issued.record)
    program_entry = auditor.entry(
        AuditAction.PROGRAM_UPDATED, "program", "program", after=Program(points_per_currency_unit=Decimal("2.5"))
    )

    # Then the digest is left out, and values are JSON: sets sorted, decimals and times as text
    assert key_entry.after is not None
    assert "secret_sha256" not in key_entry.after and issued.secret not in repr(key_entry)
    assert key_entry.after["scopes"] == ["write"] and key_entry.after["created_at"] == "2026-03-01T10:00:00.000Z"
    assert program_entry.after is not None
    assert program_entry.after["points_per_currency_unit"] == "2.5" and program_entry.after["rounding"] == "floor"
    assert "capped_rules" not in program_entry.after  # a store's summary, not part of the program's value
    assert key_entry.entry_id.startswith("aud_") and key_entry.at == T0
    assert key_entry.actor == Actor("key_01JD0000000000000000000000", Channel.API)


def test_snapshot_drops_secret_named_fields_at_any_depth() -> None:
    @dataclass(frozen=True)
    class Hook:
        url: str
        secrets: tuple[str, ...]
        nested: dict[str, object] = field(default_factory=dict)

    rendered = snapshot(Hook("https://example.com", ("sealed",), {"signing_secret": "x", "ok": {1, 2}}))
    assert rendered == {"url": "https://example.com", "nested": {"ok": [1, 2]}}


def test_the_guide_lists_every_action() -> None:
    text = GUIDE.read_text()
    missing = [str(action) for action in AuditAction if f"`{action}`" not in text]
    assert not missing, f"docs/guides/audit.md does not list {missing}"


class _History:
    def __init__(self, changes: list[ConsentChange]) -> None:
        self.changes = changes

    def history(self, member_id: str, *, limit: int, cursor: str | None) -> Page[ConsentChange]:
        return Page(items=self.changes[:limit], next_cursor=None)

    def in_force(self, member_id: str, consent: str, at: datetime) -> ConsentChange | None:
        return next((c for c in reversed(self.changes) if c.at <= at), None)

    def first_after(self, member_id: str, consent: str, at: datetime) -> ConsentChange | None:
        return next((c for c in self.changes if c.at > at), None)


def _member(consent: bool, updated_at: datetime) -> Member:
    return Member("mem_1", None, None, None, None, consent, created_at=T0, updated_at=updated_at)


def test_the_consent_in_force_at_a_moment_is_read_from_the_history() -> None:
    source = Actor("key_1")
    # Given a member who consented at enrolment (T0), withdrew at T0+2d and consented again at T0+4d
    changes = [
        new_consent_change("mem_1", Consent.MARKETING, True, None, T0, source),
        new_consent_change("mem_1", Consent.MARKETING, False, True, T0 + timedelta(days=2), source),
        new_consent_change("mem_1", Consent.MARKETING, True, False, T0 + timedelta(days=4), source),
    ]
    service = ConsentService(_History(changes))
    member = _member(True, T0 + timedelta(days=4))

    def at(days: float) -> bool:
        return service.in_force(member, Consent.MARKETING, T0 + timedelta(days=days))

    # Then each moment follows the change then in force (and before the first, nothing was given)
    assert [at(-1), at(0), at(1), at(2), at(3), at(4), at(9)] == [False, True, True, False, False, True, True]


def test_without_a_change_since_the_moment_the_profile_is_in_force() -> None:
    # A member whose history holds nothing (consent given before it was kept) keeps the profile's flag
    service = ConsentService(_History([]))
    member = _member(True, T0 + timedelta(days=1))
    assert service.in_force(member, Consent.MARKETING, T0) is True
    assert service.in_force(_member(False, T0), Consent.MARKETING, T0 + timedelta(days=1)) is False
