"""Expiry policies and the lot book: pure rules, no storage."""

from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib.domain.errors import InsufficientPoints, InvalidRequest
from chalicelib.domain.expiry import ExpiryKind, ExpiryPolicy, Lot, LotBook, Period

HELSINKI = "Europe/Helsinki"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("policy", "earned", "expected"),
    [
        (ExpiryPolicy(), "2026-06-15T10:00:00+00:00", None),
        # 31 December of the year after earning, Helsinki time (UTC+2 in winter)
        (
            ExpiryPolicy(ExpiryKind.END_OF_PERIOD, period=Period.YEAR, periods_after=1),
            "2026-06-15T10:00:00+00:00",
            "2027-12-31T22:00:00+00:00",
        ),
        # earned at 23:30 UTC on 31 Dec = already 1 January in Helsinki: the next year counts
        (
            ExpiryPolicy(ExpiryKind.END_OF_PERIOD, period=Period.YEAR, periods_after=0),
            "2026-12-31T23:30:00+00:00",
            "2027-12-31T22:00:00+00:00",
        ),
        # end of the current quarter (Q2 ends 30 June, Helsinki summer time UTC+3)
        (
            ExpiryPolicy(ExpiryKind.END_OF_PERIOD, period=Period.QUARTER),
            "2026-05-20T08:00:00+00:00",
            "2026-06-30T21:00:00+00:00",
        ),
        (
            ExpiryPolicy(ExpiryKind.END_OF_PERIOD, period=Period.MONTH, periods_after=2),
            "2026-11-05T08:00:00+00:00",
            "2027-01-31T22:00:00+00:00",
        ),
        # a month after 31 January is the last day of February
        (ExpiryPolicy(ExpiryKind.FIXED_PERIOD, months=1), "2027-01-31T10:00:00+00:00", "2027-02-28T10:00:00+00:00"),
        # 30 days keep the local wall-clock time across the March DST change (14:00 -> 14:00)
        (ExpiryPolicy(ExpiryKind.FIXED_PERIOD, days=30), "2027-03-01T12:00:00+00:00", "2027-03-31T11:00:00+00:00"),
    ],
)
def test_policies_compute_expiry_in_the_tenants_time_zone(
    policy: ExpiryPolicy, earned: str, expected: str | None
) -> None:
    assert policy.expires_at(at(earned), HELSINKI) == (at(expected) if expected else None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": ExpiryKind.FIXED_PERIOD},
        {"kind": ExpiryKind.FIXED_PERIOD, "days": 10, "months": 1},
        {"kind": ExpiryKind.END_OF_PERIOD},
    ],
)
def test_incomplete_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(InvalidRequest):
        ExpiryPolicy(**kwargs)


def lot(lot_id: str, remaining: int, expires: str | None, earned: str = "2027-01-01T00:00:00+00:00") -> Lot:
    return Lot(lot_id, "mem_1", remaining, remaining, at(earned), at(expires) if expires else None)


NOW = at("2027-06-01T00:00:00+00:00")


def test_spendable_excludes_expired_lots_and_keeps_never_expiring_points() -> None:
    book = LotBook(
        available=100, lots=(lot("a", 30, "2027-05-01T00:00:00+00:00"), lot("b", 50, "2027-07-01T00:00:00+00:00"))
    )

    assert book.never_expiring == 20
    assert book.expired_unprocessed(NOW) == 30
    assert book.spendable(NOW) == 70


def test_consume_takes_the_earliest_expiry_first_then_never_expiring_points() -> None:
    book = LotBook(
        available=100,
        lots=(lot("late", 40, "2027-09-01T00:00:00+00:00"), lot("soon", 30, "2027-07-01T00:00:00+00:00")),
    )

    changes = book.consume(50, NOW)

    assert [x.lot_id for x in changes.deleted] == ["soon"]
    assert [(x.lot_id, x.remaining) for x in changes.updated] == [("late", 20)]
    after = book.consume(90, NOW)  # both lots, then 20 of the 30 never-expiring
    assert sorted(x.lot_id for x in after.deleted) == ["late", "soon"]
    assert after.updated == ()


def test_consume_refuses_more_than_is_spendable_naming_what_is() -> None:
    book = LotBook(available=50, lots=(lot("gone", 50, "2027-05-01T00:00:00+00:00"),))

    with pytest.raises(InsufficientPoints) as refusal:
        book.consume(1, NOW)

    assert refusal.value.details == {"available": 0, "requested": 1}


def test_next_expiry_sums_the_points_of_the_earliest_date() -> None:
    same = "2027-07-01T00:00:00+00:00"
    lots = (lot("a", 5, same), lot("b", 7, same), lot("c", 9, "2027-08-01T00:00:00+00:00"), lot("d", 4, None))

    following = LotBook.next_expiry(lots)

    assert (following.at, following.points) == (at(same), 12)
    assert LotBook.next_expiry(lots, after=at(same)).points == 9
