"""Consent history: every change of a member's consent, with its time, source and value, and
marketing events that follow the consent in force at the moment they are about."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import events as events_module
from chalicelib.jobs.imports import run_import
from tests.support.checks import all_pages, assert_error
from tests.support.http import Api


def key_id(api: Api, key: str) -> str:
    """The public id of a key (``lk_<ULID>_<secret>`` -> ``key_<ULID>``)."""
    return f"key_{key.split('_')[1]}"


def consents(api: Api, key: str, member_id: str) -> dict[str, object]:
    reply = api.call("GET", f"/v1/members/{member_id}/consents", key=key)
    assert reply.status == 200, reply
    return dict(reply.body)


def patch(api: Api, key: str, member_id: str, **fields: object) -> None:
    reply = api.call("PATCH", f"/v1/members/{member_id}", key=key, body=fields)
    assert reply.status == 200, reply


def test_every_change_is_recorded_with_its_time_source_and_value(api: Api, admin_key: str) -> None:
    # Given a member enrolled with marketing consent by a write key
    writer = api.create_key(admin_key, "read", "write")
    writer_id = key_id(api, writer)
    member = api.enrol(writer, name="Ada", marketing_consent=True)

    # When another key withdraws it, a repeat changes nothing, a name change touches no consent,
    # and it is granted again
    other = api.create_key(admin_key, "write")
    other_id = key_id(api, other)
    patch(api, other, member, marketing_consent=False)
    patch(api, other, member, marketing_consent=False)
    patch(api, writer, member, name="Ada L.")
    patch(api, writer, member, marketing_consent=True, name="Ada Lovelace")

    # Then the history holds exactly the three changes, oldest first, each with its source
    body = consents(api, writer, member)
    assert body["member_id"] == member and body["consents"] == {"marketing": True}
    history = body["data"]
    assert isinstance(history, list)
    assert [(c["value"], c["previous"], c["source"]["key_id"], c["source"]["channel"]) for c in history] == [
        (True, None, writer_id, "api"),
        (False, True, other_id, "api"),
        (True, False, writer_id, "api"),
    ]
    assert [c["at"] for c in history] == sorted(c["at"] for c in history)
    assert all(c["consent"] == "marketing" and c["id"].startswith("cns_") for c in history)
    # And it pages like the other lists
    paged = all_pages(api, writer, f"/v1/members/{member}/consents", limit=1)
    assert [c["id"] for c in paged] == [c["id"] for c in history]


def test_a_member_enrolled_without_consent_has_no_history_and_others_are_not_found(
    api: Api, admin_key: str, other_admin_key: str
) -> None:
    member = api.enrol(admin_key, name="Grace")
    assert consents(api, admin_key, member) == {
        "member_id": member,
        "consents": {"marketing": False},
        "data": [],
        "next_cursor": None,
    }
    assert_error(api.call("GET", f"/v1/members/{member}/consents", key=other_admin_key), 404, "not_found")


def test_an_imported_consent_is_recorded_with_the_import_channel(api: Api, admin_key: str) -> None:
    admin_id = key_id(api, admin_key)
    csv = "external_id,marketing_consent\nimp-1,true\nimp-2,false\n"
    imported = api.call("POST", "/v1/imports", key=admin_key, body={"csv": csv})
    assert imported.status == 202, imported
    run_import("acme", imported.body["id"], budget_seconds=None)

    found = {
        ext: api.call("GET", f"/v1/members?external_id={ext}", key=admin_key).body["data"][0]["id"]
        for ext in ("imp-1", "imp-2")
    }
    (given,) = consents(api, admin_key, found["imp-1"])["data"]
    assert (given["value"], given["previous"]) == (True, None)
    assert given["source"] == {"key_id": admin_id, "channel": "import"}
    assert consents(api, admin_key, found["imp-2"])["data"] == []


def _notify_run(api: Api, key: str, as_of: datetime) -> dict[str, int]:
    run = api.call("POST", "/v1/jobs/notify/run", key=key, body={"as_of": as_of.isoformat()})
    assert run.status == 201, run
    return dict(run.body["counts"])


def test_marketing_events_follow_the_consent_in_force_at_their_moment(api: Api, admin_key: str) -> None:
    today = datetime.now(UTC).date()
    # Given a member with a birthday today who consented, then withdrew, and one who did not
    # consent, then granted it
    withdrew = api.enrol(admin_key, name="Withdrew", birthday=today.isoformat(), marketing_consent=True)
    granted = api.enrol(admin_key, name="Granted", birthday=today.isoformat())
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    patch(api, admin_key, withdrew, marketing_consent=False)
    patch(api, admin_key, granted, marketing_consent=True)

    # When the notify job runs as of the moment between the changes
    earlier = _notify_run(api, admin_key, between)
    # Then the birthday is announced to the member who had consented then, not to the other
    assert (earlier["birthdays"], earlier["skipped_no_consent"]) == (1, 1), earlier

    # And as of now, the consents in force are the new ones: the other member is announced
    # (the first one's notice of this year exists already; it is never announced twice)
    later = _notify_run(api, admin_key, datetime.now(UTC))
    assert (later["birthdays"], later["skipped_no_consent"]) == (1, 1), later


def test_expiring_points_are_announced_only_under_the_consent_in_force(
    api: Api, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "SETTLE_WINDOW", timedelta(0))
    program = {
        "points_per_currency_unit": "1",
        "rounding": "floor",
        "expiry": {"kind": "fixed_period", "days": 5},
        "expiry_warning_days": 7,
    }
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    # Given three members with points expiring within the warning: one who consented then
    # withdrew, one who had not consented then gave it, and one who never consented
    withdrew = api.enrol(admin_key, name="Withdrew", marketing_consent=True)
    granted = api.enrol(admin_key, name="Granted")
    never = api.enrol(admin_key, name="Never")
    for member in (withdrew, granted, never):
        earned = api.earn(admin_key, member, f"exp-{member}", points=50)
        assert earned.status == 201, earned
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    patch(api, admin_key, withdrew, marketing_consent=False)
    patch(api, admin_key, granted, marketing_consent=True)

    def expiring_soon() -> dict[str, dict[str, object]]:
        reply = api.call("GET", "/v1/events?type=points.expiring_soon", key=admin_key)
        assert reply.status == 200, reply
        return {event["member_id"]: event["data"] for event in reply.body["data"]}

    # When the notify job runs now
    now = _notify_run(api, admin_key, datetime.now(UTC))
    # Then only the member whose consent is in force now is told; the two others are skipped
    assert (now["expiring_soon"], now["skipped_no_consent"]) == (1, 2), now
    told = expiring_soon()
    assert list(told) == [granted] and told[granted]["points"] == 50

    # And a run as of the moment between the changes follows the consent in force then: the
    # member who consented then is told (once), the one who never consented never is
    earlier = _notify_run(api, admin_key, between)
    assert (earlier["expiring_soon"], earlier["skipped_no_consent"]) == (1, 2), earlier
    assert sorted(expiring_soon()) == sorted([granted, withdrew])
    assert never not in expiring_soon()
