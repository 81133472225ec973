"""What a report causes is named after the report, so applying it again (after a database
restore) makes the same episode and transition; without a report the ids are random."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from duban_shared.events import ReportStatus, StatusEvent
from progress.use_cases.judging import derived_id


def _report(event_id: uuid.UUID) -> StatusEvent:
    return StatusEvent(
        event_id=event_id,
        occurred_at=datetime(2024, 9, 2, 1, tzinfo=UTC),
        work_point_id="zhaoqing-digital-2024/35",
        agency_id=uuid.uuid4(),
        status=ReportStatus.BLOCKED,
    )


def test_the_same_report_makes_the_same_ids_and_another_report_others() -> None:
    first, other = _report(uuid.uuid4()), _report(uuid.uuid4())
    again = _report(first.event_id)
    assert derived_id(first, "episode") == derived_id(again, "episode")
    assert derived_id(first, "transition:opened") == derived_id(again, "transition:opened")
    assert derived_id(first, "episode") != derived_id(first, "transition:opened")
    assert derived_id(first, "episode") != derived_id(other, "episode")


def test_without_a_report_every_id_is_new() -> None:
    assert derived_id(None, "episode") != derived_id(None, "episode")
