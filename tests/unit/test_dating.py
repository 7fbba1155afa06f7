"""The dating rule (chalicelib.domain.dating) and the ledger holding every caller to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.dating import (
    CLOCK_SKEW,
    MAX_AGE,
    OUT_OF_RANGE,
    PREVIEW_RANGE,
    OccurredAtOutOfRange,
    check_occurred_at,
    check_preview_at,
    occurred_at_window,
)
from chalicelib.domain.errors import InvalidRequest
from tests.unit.builders import T0, Ledgerland, earn, redeem

MS = timedelta(milliseconds=1)
NOW = datetime(2027, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)
NOW_MS = datetime(2027, 3, 31, 23, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment",
    [NOW, NOW_MS - MAX_AGE, NOW_MS + CLOCK_SKEW, NOW - timedelta(days=1), None],
    ids=["now", "oldest", "latest", "yesterday", "none"],
)
def test_a_moment_inside_the_window_is_kept(moment: datetime | None) -> None:
    assert check_occurred_at(moment, NOW) == moment


@pytest.mark.parametrize(
    "moment",
    [
        NOW_MS - MAX_AGE - MS,
        NOW_MS + CLOCK_SKEW + MS,
        NOW + timedelta(days=365 * 30),
        datetime(2000, 1, 1, tzinfo=UTC),
    ],
    ids=["a millisecond too old", "a millisecond too far ahead", "30 years ahead", "2000"],
)
def test_a_moment_outside_the_window_is_refused_naming_the_field_and_the_window(moment: datetime) -> None:
    with pytest.raises(OccurredAtOutOfRange) as refused:
        check_occurred_at(moment, NOW)

    error = refused.value
    assert isinstance(error, InvalidRequest) and error.code == "invalid_request"
    window = {"min": "2027-02-28T23:59:59.999Z", "max": "2027-04-01T00:04:59.999Z"}
    assert error.details == {
        "fields": [
            {
                "path": "occurred_at",
                "message": "must be between 2027-02-28T23:59:59.999Z and 2027-04-01T00:04:59.999Z",
                "type": OUT_OF_RANGE,
                **window,
            }
        ],
        **window,
    }


def test_the_window_is_31_days_back_and_5_minutes_ahead_to_the_millisecond() -> None:
    window = occurred_at_window(NOW)

    assert (window.earliest, window.latest) == (NOW_MS - timedelta(days=31), NOW_MS + timedelta(minutes=5))


def test_a_preview_may_be_dated_ahead_but_within_2000_to_2099() -> None:
    ahead = NOW + timedelta(days=365 * 5)

    assert check_preview_at(ahead) == ahead
    assert check_preview_at(None) is None
    with pytest.raises(OccurredAtOutOfRange) as refused:
        check_preview_at(datetime(2100, 1, 1, tzinfo=UTC))
    assert refused.value.window == PREVIEW_RANGE


# --- the ledger holds every caller to it ----------------------------------------------------------


@pytest.mark.parametrize(
    "occurred_at",
    [T0 + CLOCK_SKEW + timedelta(seconds=1), T0 + timedelta(days=365 * 30), T0 - MAX_AGE - timedelta(seconds=1)],
    ids=["beyond the skew", "30 years ahead", "too old"],
)
def test_a_movement_from_any_caller_dated_outside_the_window_is_refused_and_writes_nothing(
    world: Ledgerland, occurred_at: datetime
) -> None:
    member = world.enrol()
    world.points.move(earn(member, "e1", 10))

    for request in (earn(member, "e2", 5, occurred_at=occurred_at), redeem(member, "r1", 5, occurred_at=occurred_at)):
        with pytest.raises(OccurredAtOutOfRange):
            world.points.move(request)

    assert world.available(member) == 10
    assert [entry.idempotency_key for entry in world.ledger.applied] == ["e1"]


def test_a_movement_dated_inside_the_window_keeps_its_date(world: Ledgerland) -> None:
    member = world.enrol()
    oldest = T0 - MAX_AGE

    entry = world.points.move(earn(member, "e1", 10, occurred_at=oldest)).entry

    assert (entry.occurred_at, entry.created_at) == (oldest, T0)


def test_a_replay_answers_after_its_date_has_left_the_window(world: Ledgerland) -> None:
    member = world.enrol()
    request = earn(member, "e1", 10, occurred_at=T0 - timedelta(days=30))
    first = world.points.move(request)

    world.clock.advance(days=5)  # the date is now 35 days back
    replay = world.points.move(request)
    other = earn(member, "e2", 10, occurred_at=T0 - timedelta(days=30))

    assert replay.replayed and replay.entry == first.entry
    with pytest.raises(OccurredAtOutOfRange):
        world.points.move(other)
    assert world.available(member) == 10
