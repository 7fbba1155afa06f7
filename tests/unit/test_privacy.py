"""Privacy's pure parts: redacting a published event, and calendar years back."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.privacy import PersonalData, redact_event_payload, years_before


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
