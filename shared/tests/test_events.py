"""Event contracts: aware UTC timestamps, id patterns, bounds, and lossless JSON."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from duban_shared.events import (
    AgencyRef,
    Level,
    ReportStatus,
    Responsibility,
    StallReason,
    StallTransition,
    StallTransitionKind,
    StatusEvent,
    WorkPointCodeField,
    WorkPointSnapshot,
    code_of,
    work_point_id,
)
from pydantic import TypeAdapter, ValidationError

AGENCY = uuid.UUID("0b8e8a5c-3f7e-5a6f-9d2e-1c4b7a9e0f11")


def _status(**overrides: Any) -> StatusEvent:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "occurred_at": "2024-09-02T09:30:00+08:00",
        "work_point_id": "zhaoqing-digital-2024/35",
        "agency_id": AGENCY,
        "status": "on_track",
    }
    fields.update(overrides)
    return StatusEvent.model_validate(fields)


def test_naive_occurred_at_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _status(occurred_at="2024-09-02T09:30:00")
    with pytest.raises(ValidationError):
        _status(occurred_at=datetime(2024, 9, 2, 9, 30))


def test_occurred_at_is_converted_to_utc() -> None:
    event = _status(occurred_at="2024-09-02T09:30:00+08:00")
    assert event.occurred_at.utcoffset() is not None
    assert event.occurred_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert event.occurred_at == datetime(2024, 9, 2, 1, 30, tzinfo=UTC)
    assert json.loads(event.to_bytes())["occurred_at"].startswith("2024-09-02T01:30:00")


def test_schema_version_defaults_to_one() -> None:
    assert _status().schema_version == 1


@pytest.mark.parametrize(
    "wp_id",
    [
        "zhaoqing-digital-2024/35",
        "p/1",
        "a1-b2/9999",
        work_point_id("plan-x", "7"),
        "plan-2025/3.2",
        "plan-2025/2.1.3",
        "plan-2025/9999.9999.9999.9999",
    ],
)
def test_well_formed_work_point_ids_are_accepted(wp_id: str) -> None:
    assert _status(work_point_id=wp_id).work_point_id == wp_id


@pytest.mark.parametrize(
    "wp_id",
    [
        "zhaoqing-digital-2024",  # no number
        "zhaoqing-digital-2024/",  # empty number
        "Zhaoqing/35",  # upper case
        "-plan/35",  # leading hyphen
        "plan/35/1",  # two slashes
        "plan/12345",  # more than four digits
        "plan/三十五",  # Chinese numeral
        "plan 2024/35",  # space
        "plan/3.",  # a level without digits
        "plan/.2",
        "plan/3..2",
        "plan/03a",  # a letter
        "plan/1.2.3.4.5",  # five levels
        "plan/3,2",
        "plan/3.12345",  # a level of five digits
    ],
)
def test_malformed_work_point_ids_are_rejected(wp_id: str) -> None:
    with pytest.raises(ValidationError):
        _status(work_point_id=wp_id)


def test_work_point_id_joins_slug_and_code() -> None:
    assert work_point_id("zhaoqing-digital-2024", "35") == "zhaoqing-digital-2024/35"
    assert work_point_id("plan-2025", "3.2") == "plan-2025/3.2"
    assert code_of("plan-2025/2.1.3") == "2.1.3"


@pytest.mark.parametrize("code", ["35", "3.2", "2.1.3", "1.2.3.4"])
def test_well_formed_codes_are_accepted(code: str) -> None:
    assert TypeAdapter(WorkPointCodeField).validate_python(code) == code


@pytest.mark.parametrize("code", ["3.", ".2", "3..2", "03a", "1.2.3.4.5", "", "3.2 ", "+3"])
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(WorkPointCodeField).validate_python(code)


def _old_transition(work_point_id: str) -> dict[str, Any]:
    """A stall transition as written before codes existed (no work_point_code)."""
    return {
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "occurred_at": "2024-10-22T01:00:00Z",
        "work_point_id": work_point_id,
        "episode_id": str(uuid.uuid4()),
        "kind": "opened",
        "level": "red",
        "reason": "silent",
        "reasons": ["silent"],
        "work_point_number": 35,
        "work_point_title": "加强林业数字化应用",
        "lead_agencies": [{"agency_id": str(AGENCY), "name": "市林业局"}],
    }


def test_records_written_before_codes_still_validate_with_the_code_of_their_id() -> None:
    old = _old_transition("zhaoqing-digital-2024/35")
    transition = StallTransition.model_validate_json(json.dumps(old))
    assert transition.work_point_code == "35"
    assert transition.work_point_number == 35
    snapshot = WorkPointSnapshot.model_validate_json(
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "occurred_at": "2024-09-02T01:00:00Z",
                "work_point_id": "zhaoqing-digital-2024/35",
                "plan_slug": "zhaoqing-digital-2024",
                "number": 35,
                "section": 7,
                "title": "加强林业数字化应用",
                "responsibilities": [],
            }
        )
    )
    assert snapshot.code == "35"


def test_a_dotted_code_travels_next_to_the_ordinal() -> None:
    record = {**_old_transition("plan-2025/3.2"), "work_point_code": "3.2", "work_point_number": 9}
    transition = StallTransition.model_validate_json(json.dumps(record))
    assert (transition.work_point_code, transition.work_point_number) == ("3.2", 9)
    again = StallTransition.model_validate_json(transition.to_bytes())
    assert again == transition
    with pytest.raises(ValidationError):
        StallTransition.model_validate({**record, "work_point_code": "3..2"})


@pytest.mark.parametrize("percent", [0, 1, 99, 100, None])
def test_percent_within_0_to_100_or_absent_is_accepted(percent: int | None) -> None:
    assert _status(percent=percent).percent == percent


@pytest.mark.parametrize("percent", [-1, 101, 150])
def test_percent_outside_0_to_100_is_rejected(percent: int) -> None:
    with pytest.raises(ValidationError):
        _status(percent=percent)


def test_unknown_status_and_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        _status(status="finished")
    with pytest.raises(ValidationError):
        _status(extra_field="x")


def test_status_event_survives_a_json_round_trip() -> None:
    event = _status(
        status=ReportStatus.BLOCKED,
        percent=40,
        note="林分优化用地审批未完成",
        received_at="2024-09-02T09:31:00+08:00",
    )
    again = StatusEvent.model_validate_json(event.to_bytes())
    assert again == event
    assert again.note == "林分优化用地审批未完成"
    assert again.received_at == datetime(2024, 9, 2, 1, 31, tzinfo=UTC)


def test_snapshot_and_transition_survive_a_json_round_trip() -> None:
    lead = Responsibility(agency_id=AGENCY, name="市林业局", role="lead")
    snap = WorkPointSnapshot(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2024, 9, 2, 1, 0, tzinfo=UTC),
        work_point_id="zhaoqing-digital-2024/35",
        plan_slug="zhaoqing-digital-2024",
        number=35,
        code="35",
        section=7,
        title="加强林业数字化应用",
        responsibilities=[lead],
    )
    assert WorkPointSnapshot.model_validate_json(snap.to_bytes()) == snap
    assert snap.leads() == [lead]

    transition = StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2024, 10, 22, 1, 0, tzinfo=UTC),
        work_point_id="zhaoqing-digital-2024/35",
        episode_id=uuid.uuid4(),
        kind=StallTransitionKind.OPENED,
        level=Level.RED,
        reason=StallReason.SILENT,
        reasons=[StallReason.SILENT],
        work_point_number=35,
        work_point_code="35",
        work_point_title="加强林业数字化应用",
        lead_agencies=[AgencyRef(agency_id=AGENCY, name="市林业局")],
        silent_working_days=14,
    )
    assert StallTransition.model_validate_json(transition.to_bytes()) == transition


def test_events_are_immutable() -> None:
    event = _status()
    with pytest.raises(ValidationError):
        event.percent = 50  # type: ignore[misc]
