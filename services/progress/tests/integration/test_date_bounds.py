"""Dates are bounded at the edge: a report dated long before its plan or outside the century,
and a work point due years after its plan, are refused before they enter (422 with a code of
their own, a batch refusing the report alone); records produced around the API with such dates
are parked with the same code, and the records behind them on their partition are applied."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

from duban_shared import topics
from duban_shared.deadletters import DeadLetter, read_dead_letters
from duban_shared.events import ReportStatus, Responsibility, StatusEvent, WorkPointSnapshot
from progress.store.models import IngestedEvent, StatusReport, WorkPointState, WorkPointView
from registry.domain.agency_identity import agency_id_for
from sqlmodel import col, func, select

from tests.harness import wait_for
from tests.stack import PLAN, Stack
from tests.test_metrics import scrape, value

# 2001 was answered 202 and then failed in the consumer (no calendar for 2001); 0001 and 9999
# overflowed to UTC and answered 500. The plan is 2024's: it starts on 1 January 2024, and
# reports may describe days from 90 days before (2023-10-03) on.
BEFORE_PLAN = "2001-01-01T09:00:00+08:00"
DAY_BEFORE_EARLIEST = "2023-10-02T23:59:00+08:00"
EARLIEST = "2023-10-03T00:00:00+08:00"
YEAR_ONE = "0001-01-01T00:00:00+08:00"
YEAR_9999 = "9999-12-31T23:59:59-08:00"
MIIT = "市工信局"
INGESTED = "duban_ingest_events_total"  # a responsible agency of work point 41, not of 35


async def _stored(stack: Stack, event_ids: list[str]) -> tuple[int, int]:
    """How many of these reports progress applied, and how many ingestion answered."""
    ids = [uuid.UUID(e) for e in event_ids]
    async with stack.progress.sessions() as session:
        reports = await session.exec(
            select(func.count()).where(col(StatusReport.event_id).in_(ids))
        )
        answers = await session.exec(
            select(func.count()).where(col(IngestedEvent.event_id).in_(ids))
        )
        return int(reports.one()), int(answers.one())


async def _parked(stack: Stack, expected: int) -> list[DeadLetter]:
    dlq = stack.topic_prefix + topics.PROGRESS_DLQ
    found: list[DeadLetter] = []

    async def there() -> bool:
        found[:] = await read_dead_letters(stack.kafka_bootstrap, dlq)
        return len(found) >= expected

    await wait_for(there, what=f"{expected} dead letters")
    return found


async def test_a_report_dated_outside_its_plan_or_the_century_is_refused_before_kafka(
    stack: Stack,
) -> None:
    refused: list[str] = []
    for occurred_at, code in (
        (BEFORE_PLAN, "occurred_at_before_plan"),
        (DAY_BEFORE_EARLIEST, "occurred_at_before_plan"),
        (YEAR_ONE, "occurred_at_out_of_range"),
        (YEAR_9999, "occurred_at_out_of_range"),
    ):
        answer = await stack.post_event(stack.forestry, 35, "on_track", occurred_at=occurred_at)
        assert (answer.status_code, answer.json()["code"]) == (422, code), answer.text
        assert occurred_at[:4] in answer.json()["message"]
        sent = json.loads(answer.request.content)
        refused.append(sent["event_id"])
    earliest = await stack.post_event(
        stack.forestry, 35, "at_risk", percent=20, occurred_at=EARLIEST
    )
    assert earliest.status_code == 202, earliest.text
    assert earliest.json()["late"] is True
    await stack.until_applied(earliest)  # the earliest day allowed is applied, not parked
    assert await _stored(stack, refused) == (0, 0)  # never produced, never answered 202
    progress = await scrape(stack.progress_http)  # the dashboard's rejected reports by code
    for code in ("occurred_at_before_plan", "occurred_at_out_of_range"):
        rejected = value(progress, INGESTED, outcome="rejected", error_type=code)
        assert rejected == 2, code
    assert (
        await read_dead_letters(stack.kafka_bootstrap, stack.topic_prefix + topics.PROGRESS_DLQ)
        == []
    )


async def test_a_batch_refuses_a_report_with_such_a_date_alone(stack: Stack) -> None:
    def report(occurred_at: str) -> dict[str, object]:
        return {
            "event_id": str(uuid.uuid4()),
            "work_point_id": f"{PLAN}/35",
            "status": "on_track",
            "percent": 30,
            "occurred_at": occurred_at,
        }

    good = report(stack.clock.now().isoformat())
    items = [report(BEFORE_PLAN), good, report(YEAR_ONE), report(YEAR_9999)]
    answer = await stack.progress_http.post(
        "/v1/events/batch", json={"events": items}, headers=await stack.auth(stack.forestry)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1, 3)
    results = {r["index"]: r for r in body["results"]}
    assert results[1]["status"] == "accepted"
    expected = {0: "occurred_at_before_plan", 2: "occurred_at_out_of_range"}
    expected[3] = "occurred_at_out_of_range"
    for index, code in expected.items():
        result = results[index]
        assert (result["status"], result["http_status"]) == ("rejected", 422)
        assert result["error"]["code"] == code and result["error"]["message"]
        assert result["event_id"] == items[index]["event_id"]

    async def good_applied() -> bool:
        return await _stored(stack, [str(good["event_id"])]) == (1, 1)

    await wait_for(good_applied, what="the batch's good report to be applied")
    refused = [str(items[i]["event_id"]) for i in expected]
    assert await _stored(stack, refused) == (0, 0)


async def test_reports_produced_directly_with_such_dates_are_parked_and_the_partition_goes_on(
    stack: Stack,
) -> None:
    producer = stack.progress.producer
    status_topic = stack.topic_prefix + topics.STATUS
    key_35 = f"{PLAN}/35".encode()
    before_plan = StatusEvent(
        event_id=uuid.uuid4(),
        occurred_at=BEFORE_PLAN,  # parsed by the model
        work_point_id=f"{PLAN}/35",
        agency_id=stack.forestry_id,
        status=ReportStatus.BLOCKED,
    )
    first = await producer.send_and_wait(status_topic, before_plan.to_bytes(), key=key_35)
    # A year the model refuses: written by hand, as an agency system might.
    year_one = json.loads(before_plan.to_bytes())
    year_one.update(event_id=str(uuid.uuid4()), occurred_at=YEAR_ONE)
    await producer.send_and_wait(
        status_topic, json.dumps(year_one).encode(), key=key_35, partition=first.partition
    )
    # Another agency's report on another work point, behind them on the same partition.
    other = StatusEvent(
        event_id=uuid.uuid4(),
        occurred_at=stack.clock.now(),
        work_point_id=f"{PLAN}/41",
        agency_id=agency_id_for(MIIT),
        status=ReportStatus.AT_RISK,
        percent=44,
    )
    await producer.send_and_wait(
        status_topic, other.to_bytes(), key=f"{PLAN}/41".encode(), partition=first.partition
    )

    async def other_applied() -> bool:
        async with stack.progress.sessions() as session:
            report = await session.get(StatusReport, other.event_id)
            return report is not None

    await wait_for(other_applied, what="the other agency's report behind the bad ones")
    letters = await _parked(stack, expected=2)
    by_code = {letter.code: letter for letter in letters}
    assert set(by_code) == {"occurred_at_before_plan", "occurred_at_out_of_range"}
    assert by_code["occurred_at_before_plan"].value == before_plan.to_bytes()
    assert "2001-01-01" in by_code["occurred_at_before_plan"].header("duban.error.message")
    assert json.loads(by_code["occurred_at_out_of_range"].value or b"")["occurred_at"] == YEAR_ONE
    for letter in letters:
        assert letter.header("duban.attempts") == "1"  # known bad: parked at once, not retried
        assert letter.header("duban.source.partition") == str(first.partition)
    async with stack.progress.sessions() as session:
        state = await session.get(WorkPointState, f"{PLAN}/35")
        assert state is None or state.status != ReportStatus.BLOCKED.value  # nothing applied


async def test_a_snapshot_due_years_after_its_plan_is_parked_and_the_next_one_applies(
    stack: Stack,
) -> None:
    wp_id = f"{PLAN}/41"
    async with stack.progress.sessions() as session:
        view = await session.get(WorkPointView, wp_id)
    assert view is not None and view.due_on == date(2024, 12, 31)
    # What PUT …/work-points/41/policy {"due_on": "2030-12-31"} once published.
    far = WorkPointSnapshot(
        event_id=uuid.uuid4(),
        occurred_at=stack.clock.now() + timedelta(seconds=1),
        work_point_id=wp_id,
        plan_slug=PLAN,
        number=41,
        code="41",
        section=view.section,
        title=view.title,
        responsibilities=[Responsibility.model_validate(r) for r in view.responsibilities],
        starts_on="2024-01-01",
        due_on="2030-12-31",
    )
    sent = await stack.progress.producer.send_and_wait(
        stack.topic_prefix + topics.WORK_POINTS, far.to_bytes(), key=wp_id.encode()
    )
    office = await stack.auth(stack.office)
    stack.clock.advance(timedelta(seconds=2))
    changed = await stack.registry_http.put(
        f"/v1/plans/{PLAN}/work-points/41/policy",
        json={"report_every_working_days": 7},
        headers=office,
    )
    assert changed.status_code == 200, changed.text

    async def applied() -> bool:
        async with stack.progress.sessions() as session:
            current = await session.get(WorkPointView, wp_id)
            return current is not None and current.report_every_working_days == 7

    await wait_for(applied, what="the snapshot behind the far one to be applied")
    (letter,) = await _parked(stack, expected=1)
    assert letter.code == "due_on_out_of_range"
    assert "2030-12-31" in letter.header("duban.error.message")
    assert letter.header("duban.source.partition") == str(sent.partition)
    assert letter.header("duban.consumer.group").endswith("duban-progress.work-points")
    async with stack.progress.sessions() as session:
        current = await session.get(WorkPointView, wp_id)
        assert current is not None and current.due_on == date(2024, 12, 31)
