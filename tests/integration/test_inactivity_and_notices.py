"""The inactivity policy and the notify job, through the real services and repositories on
both emulators, with a clock the tests move.

Inactivity: every available point lapses N days after the member's last earn or redeem;
past the deadline nothing is spendable, even before the job has run; the job then records
the lapse once. Notify: ``points.expiring_soon`` N days before points expire and
``member.birthday`` on the day (with the program's bonus), once each, and only for members
who consented to marketing.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain import events as events_module
from chalicelib.domain.errors import InsufficientPoints, InvalidRequest
from chalicelib.domain.events import SETTLE_WINDOW, EventType
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy
from chalicelib.domain.jobs import JobName, RunStatus
from chalicelib.domain.members import NewMember
from chalicelib.domain.movement_requests import MovementType
from chalicelib.domain.program import Rounding
from chalicelib.services import platform
from tests.integration.test_expiry import TZ, Brand
from tests.support.clocks import MovableClock
from tests.support.http import Api

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
INACTIVE_30 = ExpiryPolicy(kind=ExpiryKind.INACTIVITY, days=30)


def make_brand(api: Api, policy: ExpiryPolicy, **program: int) -> Brand:
    api.create_tenant("acme")  # in Europe/Helsinki (TZ)
    clock = MovableClock(T0)
    services = platform().for_tenant_id("acme", clock=clock, timezone=TZ, created_at=T0 - DAY)
    services.program.replace(Decimal(1), Rounding.FLOOR, policy, **program)  # type: ignore[arg-type]
    return Brand(services, clock, Counter())


def run(brand: Brand, job: JobName, as_of: datetime) -> dict[str, int]:
    result = brand.services.jobs.run(job, as_of)
    assert result.status is RunStatus.SUCCEEDED
    return result.counts


def events_of(brand: Brand, kind: EventType) -> list:
    brand.clock.now += SETTLE_WINDOW + timedelta(seconds=1)
    return brand.services.feed.read(after=None, types=frozenset({kind}), limit=100).events


# --- inactivity ---------------------------------------------------------------------------------


def test_points_lapse_after_n_days_without_an_earn_or_redeem(api: Api) -> None:
    brand = make_brand(api, INACTIVE_30)
    member, other = brand.enrol(), brand.enrol()
    brand.earn(member, 100)
    brand.earn(other, 40)

    brand.clock.now = T0 + 29 * DAY
    assert brand.redeem(member, 10) == 90  # activity: the deadline moves to day 59
    deadline = T0 + 59 * DAY

    brand.clock.now = deadline - timedelta(seconds=1)
    view = brand.services.points.view(member)
    assert (view.available, view.expiring_points, view.expiring_at) == (90, 90, deadline)

    brand.clock.now = deadline  # lapsed, and no job has run
    assert brand.available(member) == 0
    with pytest.raises(InsufficientPoints):
        brand.redeem(member, 1)

    # The job finds the two inactive members through the index and records each lapse once.
    assert run(brand, JobName.EXPIRE_POINTS, deadline) == {
        "members": 2,
        "lots_matured": 0,
        "points_matured": 0,
        "lots_expired": 0,
        "lapses": 2,
        "points_expired": 130,
    }
    assert run(brand, JobName.EXPIRE_POINTS, deadline + DAY)["points_expired"] == 0
    stored = brand.services.points.balance(member)
    assert (stored.available, stored.lifetime_expired) == (0, 90)
    lapse = [entry for entry in brand.ledger(member) if entry.movement is MovementType.EXPIRE]
    assert [(entry.points, entry.occurred_at, entry.metadata) for entry in lapse] == [
        (-90, deadline, {"reason": "inactivity"})
    ]
    brand.check_invariants(member)
    brand.check_invariants(other)


def test_an_earn_by_an_inactive_member_first_records_the_lapse(api: Api) -> None:
    brand = make_brand(api, INACTIVE_30)
    member = brand.enrol()
    brand.earn(member, 100)

    brand.clock.now = T0 + 31 * DAY
    assert brand.earn(member, 5) == 5  # the 100 lapsed at day 30; the new 5 start a new period

    view = brand.services.points.view(member)
    assert (view.available, view.expiring_at) == (5, T0 + 61 * DAY)
    assert [entry.points for entry in brand.ledger(member)] == [5, -100, 100]
    brand.check_invariants(member)


def test_points_credited_by_an_adjustment_after_a_lapse_get_a_full_period(api: Api) -> None:
    brand = make_brand(api, INACTIVE_30)
    member = brand.enrol()
    brand.earn(member, 10)

    brand.clock.now = T0 + 40 * DAY
    brand.move(member, MovementType.ADJUST, 25, reason="goodwill")  # not activity, but after the deadline

    view = brand.services.points.view(member)
    assert (view.available, view.expiring_at) == (25, T0 + 70 * DAY)
    assert brand.services.points.balance(member).last_activity_at == T0  # an adjustment is not activity
    brand.check_invariants(member)


def test_under_inactivity_older_lots_lapse_lot_by_lot_and_the_rest_at_once(api: Api) -> None:
    brand = make_brand(api, ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=365))
    member = brand.enrol()
    brand.earn(member, 70)  # a lot expiring in a year
    brand.services.program.replace(Decimal(1), Rounding.FLOOR, INACTIVE_30)
    brand.clock.now = T0 + DAY
    brand.earn(member, 30)  # never-expiring by itself; the deadline is day 31

    brand.clock.now = T0 + 31 * DAY
    assert run(brand, JobName.EXPIRE_POINTS, brand.clock.now)["points_expired"] == 100

    expired = [entry for entry in brand.ledger(member) if entry.movement is MovementType.EXPIRE]
    assert sorted((entry.idempotency_key.split(":")[0], entry.points) for entry in expired) == [
        ("expire", -70),
        ("lapse", -30),
    ]
    assert brand.services.points.balance(member).lot_count == 0
    brand.check_invariants(member)


def test_pending_points_mature_under_inactivity_and_the_period_must_outlast_the_return_window(api: Api) -> None:
    brand = make_brand(api, INACTIVE_30, pending_days=7)
    member = brand.enrol()
    brand.earn(member, 50)

    brand.clock.now = T0 + 8 * DAY
    assert run(brand, JobName.MATURE_PENDING, brand.clock.now)["points_matured"] == 50
    assert brand.available(member) == 50
    brand.clock.now = T0 + 30 * DAY
    assert brand.available(member) == 0
    brand.check_invariants(member)

    with pytest.raises(InvalidRequest) as refused:
        brand.services.program.replace(Decimal(1), Rounding.FLOOR, INACTIVE_30, pending_days=30)
    assert refused.value.details["fields"][0]["path"] == "expiry.days"


# --- notices ------------------------------------------------------------------------------------


def test_expiring_soon_is_announced_once_per_expiry_date_to_consenting_members(api: Api) -> None:
    brand = make_brand(api, ExpiryPolicy(kind=ExpiryKind.FIXED_PERIOD, days=30), expiry_warning_days=7)
    consenting = brand.services.members.enrol(NewMember(marketing_consent=True)).member_id
    silent = brand.services.members.enrol(NewMember(marketing_consent=False)).member_id
    for member in (consenting, silent):
        brand.earn(member, 60)
        brand.earn(member, 40)  # the same expiry date: one notice
    brand.redeem(consenting, 25)
    expires = T0 + 30 * DAY

    assert run(brand, JobName.NOTIFY, expires - 8 * DAY)["expiring_soon"] == 0  # not yet within 7 days
    counts = run(brand, JobName.NOTIFY, expires - 7 * DAY)
    assert (counts["expiring_soon"], counts["skipped_no_consent"]) == (1, 1)
    assert run(brand, JobName.NOTIFY, expires - 6 * DAY)["expiring_soon"] == 0  # nothing twice

    (event,) = events_of(brand, EventType.POINTS_EXPIRING_SOON)
    assert event.member_id == consenting
    assert event.notice.data == {
        "points": 75,
        "expires_at": "2027-03-31T11:00:00.000Z",  # 30 days in Helsinki wall-clock time
        "expiry_date": "2027-03-31",
    }


def test_the_lapse_of_an_inactive_member_is_announced_before_it_happens(api: Api) -> None:
    brand = make_brand(api, INACTIVE_30, expiry_warning_days=5)
    member = brand.services.members.enrol(NewMember(marketing_consent=True)).member_id
    brand.earn(member, 80)

    assert run(brand, JobName.NOTIFY, T0 + 25 * DAY)["expiring_soon"] == 1
    (event,) = events_of(brand, EventType.POINTS_EXPIRING_SOON)
    assert (event.notice.data["points"], event.notice.data["expiry_date"]) == (80, "2027-03-31")


def test_birthdays_credit_the_bonus_once_and_are_announced_only_with_consent(api: Api) -> None:
    brand = make_brand(api, ExpiryPolicy(), birthday_bonus=50)
    members = brand.services.members
    # 1 March at 00:30 in Helsinki is still 28 February in UTC: the tenant's zone decides.
    brand.clock.now = datetime(2027, 2, 28, 22, 30, tzinfo=UTC)
    today = members.enrol(NewMember(birthday=date(1990, 3, 1), marketing_consent=True)).member_id
    silent = members.enrol(NewMember(birthday=date(1985, 3, 1), marketing_consent=False)).member_id
    not_today = members.enrol(NewMember(birthday=date(1990, 2, 28), marketing_consent=True)).member_id

    counts = run(brand, JobName.NOTIFY, brand.clock.now)
    assert (counts["birthdays"], counts["birthday_bonuses"], counts["skipped_no_consent"]) == (1, 2, 1)
    assert run(brand, JobName.NOTIFY, brand.clock.now + timedelta(hours=1))["birthday_bonuses"] == 0

    assert (brand.available(today), brand.available(silent), brand.available(not_today)) == (50, 50, 0)
    (event,) = events_of(brand, EventType.MEMBER_BIRTHDAY)
    (bonus,) = brand.ledger(today)
    assert event.member_id == today
    assert event.notice.data == {
        "birthday": "1990-03-01",
        "bonus_points": 50,
        "bonus_transaction_id": bonus.transaction_id,
    }
    assert (bonus.reference, bonus.idempotency_key) == ("birthday-2027", f"birthday:{today}:2027")


def test_a_leap_day_birthday_is_celebrated_on_28_february_and_a_changed_birthday_moves(api: Api) -> None:
    brand = make_brand(api, ExpiryPolicy(), birthday_bonus=10)
    brand.clock.now = datetime(2027, 2, 28, 10, tzinfo=UTC)
    leap = brand.services.members.enrol(NewMember(birthday=date(2000, 2, 29), marketing_consent=True)).member_id
    moved = brand.services.members.enrol(NewMember(birthday=date(2000, 2, 28), marketing_consent=True)).member_id
    from chalicelib.domain.members import MemberChanges

    brand.services.members.update(moved, MemberChanges(frozenset({"birthday"}), birthday=date(2000, 6, 1)))

    assert run(brand, JobName.NOTIFY, brand.clock.now)["birthdays"] == 1
    assert (brand.available(leap), brand.available(moved)) == (10, 0)


# --- over HTTP ----------------------------------------------------------------------------------


def test_the_program_takes_the_inactivity_policy_and_the_notice_settings(api: Api, admin_key: str) -> None:
    body = {
        "points_per_currency_unit": "1",
        "rounding": "floor",
        "expiry": {"kind": "inactivity", "days": 180},
        "expiry_warning_days": 10,
        "birthday_bonus": 25,
    }
    put = api.call("PUT", "/v1/program", key=admin_key, body=body)
    got = api.call("GET", "/v1/program", key=admin_key)
    no_days = api.call("PUT", "/v1/program", key=admin_key, body={**body, "expiry": {"kind": "inactivity"}})
    too_short = api.call("PUT", "/v1/program", key=admin_key, body={**body, "pending_days": 180})

    assert put.status == 200 and got.body == put.body
    assert got.body["expiry"] == {"kind": "inactivity", "days": 180, "months": None, "period": None, "periods_after": 0}
    assert (got.body["expiry_warning_days"], got.body["birthday_bonus"]) == (10, 25)
    assert no_days.status == 400 and no_days.error_code() == "invalid_request"
    assert too_short.status == 400 and too_short.body["error"]["details"]["fields"][0]["path"] == "expiry.days"
    assert api.call("GET", "/v1/program", key=admin_key).body == put.body  # refusals changed nothing


def test_the_notify_job_over_http_announces_to_the_callers_tenant_only(
    api: Api, admin_key: str, other_admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "SETTLE_WINDOW", timedelta(0))
    program = {"points_per_currency_unit": "1", "rounding": "floor", "birthday_bonus": 25}
    assert api.call("PUT", "/v1/program", key=admin_key, body=program).status == 200
    today = datetime.now(ZoneInfo(TZ)).date()
    birthday = today.replace(year=2000).isoformat()  # a leap year: 29 February exists
    member = api.enrol(admin_key, birthday=birthday, marketing_consent=True)
    api.enrol(other_admin_key, birthday=birthday, marketing_consent=True)

    run = api.call("POST", "/v1/jobs/notify/run", key=admin_key, body={})
    rerun = api.call("POST", "/v1/jobs/notify/run", key=admin_key, body={})
    feed = api.call("GET", "/v1/events?type=member.birthday", key=admin_key)
    other = api.call("GET", "/v1/events?type=member.birthday", key=other_admin_key)

    assert run.status == 201, run.body
    assert (run.body["counts"]["birthdays"], run.body["counts"]["birthday_bonuses"]) == (1, 1)
    assert (rerun.body["counts"]["birthdays"], rerun.body["counts"]["birthday_bonuses"]) == (0, 0)
    (event,) = feed.body["data"]
    assert event["member_id"] == member
    assert event["data"]["birthday"] == birthday and event["data"]["bonus_points"] == 25
    assert api.balance(admin_key, member)["available"] == 25
    assert other.status == 200 and other.body["data"] == []
