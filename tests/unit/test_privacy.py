"""Privacy's pure parts: redacting a published event, a transfer's other side, and calendar years back."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.privacy import (
    PersonalData,
    redact_event_payload,
    redact_transfer_delivery,
    transfer_counterpart,
    years_before,
)


def test_a_redacted_event_keeps_its_figures_and_loses_the_personal_fields() -> None:
    # Given a member.created event and an earn with a marked metadata key and a description
    created = {"id": "evt_1", "type": "member.created", "data": {"member_id": "mem_1", "external_id": "cust-9"}}
    earned = {
        "id": "evt_2",
        "type": "points.earned",
        "data": {"points": 10, "description": "to 12 Baker Street", "metadata": {"note": "ring", "channel": "web"}},
    }
    personal = PersonalData(metadata_keys=frozenset({"note"}), descriptions=True)

    # When they are redacted
    # Then the personal fields are gone and the rest is as it was
    assert redact_event_payload(created, personal)["data"] == {"member_id": "mem_1", "external_id": None}
    assert redact_event_payload(earned, personal)["data"] == {
        "points": 10,
        "description": None,
        "metadata": {"channel": "web"},
    }
    # And descriptions the brand does not mark stay
    assert redact_event_payload(earned, PersonalData())["data"]["description"] == "to 12 Baker Street"


def test_years_before_keeps_the_day_and_moves_29_february_to_the_28th() -> None:
    assert years_before(datetime(2030, 6, 1, 12, tzinfo=UTC), 3) == datetime(2027, 6, 1, 12, tzinfo=UTC)
    assert years_before(datetime(2028, 2, 29, tzinfo=UTC), 1) == datetime(2027, 2, 28, tzinfo=UTC)


def test_a_transfers_other_side_is_found_by_its_metadata_and_loses_only_that_description() -> None:
    # A transfer's sides name the other member; a reversal's (the platform's text) and other entries do not count
    assert transfer_counterpart({"transfer_id": "trf_1", "to_member_id": "mem_b"}) == ("mem_b", "trf_1")
    assert transfer_counterpart({"transfer_id": "trf_1", "from_member_id": "mem_a", "points_without_expiry": "3"}) == (
        "mem_a",
        "trf_1",
    )
    assert transfer_counterpart({"transfer_id": "trf_1", "to_member_id": "mem_b", "reversal": "true"}) is None
    assert transfer_counterpart({"channel": "web"}) is None

    def delivery(kind: str, reference: str, description: str | None) -> dict[str, object]:
        data = {"reference": reference, "description": description, "metadata": {"transfer_id": reference}}
        return {"type": kind, "data": {"id": "evt_1", "type": kind, "data": data}}

    # The other member's delivery of the erased member's transfer loses its description, and only that
    redacted = redact_transfer_delivery(delivery("points.transferred", "trf_1", "for Mum"), frozenset({"trf_1"}))
    assert redacted == delivery("points.transferred", "trf_1", None)
    for other in (delivery("points.transferred", "trf_2", "own note"), delivery("points.earned", "trf_1", "x")):
        assert redact_transfer_delivery(other, frozenset({"trf_1"})) == other
