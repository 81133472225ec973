"""Ingestion's guards: event_id is the idempotency key (a replay gets the first answer and
produces nothing; another body under the same id is refused), and bodies are size-limited."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

from aiokafka.structs import RecordMetadata
from duban_shared import topics
from duban_shared.api import ApiError
from progress.api.schemas import Accepted, StatusReportIn
from progress.store.models import IngestedEvent, StatusReport, WorkPointView
from progress.use_cases.ingestion import Ready, Receipt
from sqlmodel import col, func, select

from tests.harness import end_offsets, wait_for
from tests.stack import PLAN, Stack

EVIDENCE = "https://lyj.zhaoqing.gov.cn/reports/2024-09.pdf"


async def test_a_replay_gets_the_first_answer_and_a_reuse_is_refused(stack: Stack) -> None:
    token = await stack.token(stack.forestry)
    event_id = uuid.uuid4()
    at = "2024-09-02T09:00:00+08:00"
    first = await stack.post_event(
        token, 35, "at_risk", percent=30, event_id=event_id, occurred_at=at
    )
    assert first.status_code == 202, first.text

    replay = await stack.post_event(
        token, 35, "at_risk", percent=30, event_id=event_id, occurred_at=at
    )
    assert (replay.status_code, replay.json()) == (202, first.json())
    same_instant = await stack.post_event(
        token, 35, "at_risk", percent=30, event_id=event_id, occurred_at="2024-09-02T01:00:00Z"
    )
    assert (same_instant.status_code, same_instant.json()) == (202, first.json())

    reused = await stack.post_event(
        token, 35, "blocked", percent=30, event_id=event_id, occurred_at=at
    )
    assert reused.status_code == 409
    assert reused.json()["code"] == "event_id_reused"
    assert "new event_id" in reused.json()["message"]

    ends = await end_offsets(stack.kafka_bootstrap, stack.topic_prefix + topics.STATUS, 6)
    assert sum(ends.values()) == 1  # only the first one reached Kafka


async def test_a_body_over_the_limit_or_of_unknown_length_is_refused_before_it_is_read(
    stack: Stack,
) -> None:
    headers = {
        "Authorization": f"Bearer {await stack.token(stack.forestry)}",
        "Content-Type": "application/json",
    }
    limit = stack.progress.settings.max_body_bytes
    huge = b'{"note": "' + b"x" * limit + b'"}'
    too_large = await stack.progress_http.post("/v1/events", content=huge, headers=headers)
    assert (too_large.status_code, too_large.json()["code"]) == (413, "body_too_large")
    assert f"at most {limit}" in too_large.json()["message"]

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"event_id": '
        yield b'"x"}'

    unknown = await stack.progress_http.post("/v1/events", content=chunks(), headers=headers)
    assert (unknown.status_code, unknown.json()["code"]) == (411, "length_required")
    ends = await end_offsets(stack.kafka_bootstrap, stack.topic_prefix + topics.STATUS, 6)
    assert sum(ends.values()) == 0


async def test_a_client_over_its_rate_gets_429_with_retry_after(stack: Stack) -> None:
    from datetime import timedelta

    from duban_shared.ratelimit import RateLimiter

    stack.progress.rate_limiter = RateLimiter(stack.clock, rate=1, burst=2)
    token = await stack.token(stack.forestry)
    assert [(await stack.post_event(token, 35, "on_track")).status_code for _ in range(2)] == [
        202,
        202,
    ]
    limited = await stack.post_event(token, 35, "on_track")
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert limited.headers["retry-after"] == "1"
    stack.clock.advance(timedelta(seconds=1))
    assert (await stack.post_event(token, 35, "on_track")).status_code == 202


async def test_the_event_schema_is_published_for_agency_systems(stack: Stack) -> None:
    response = await stack.progress_http.get("/v1/schemas/status-event.v1.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    assert response.json()["title"] == "StatusEvent"
    missing = await stack.progress_http.get("/v1/schemas/nope.json")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_schema")


def _report(number: int, status: str, **extra: object) -> dict[str, object]:
    return {
        "event_id": str(extra.pop("event_id", uuid.uuid4())),
        "work_point_id": f"{PLAN}/{number}",
        "status": status,
        "occurred_at": extra.pop("occurred_at", "2024-09-02T09:00:00+08:00"),
        **extra,
    }


async def test_a_batch_answers_each_report_on_its_own_and_produces_only_the_good_ones(
    stack: Stack,
) -> None:
    headers = await stack.auth(stack.forestry)
    earlier = await stack.post_event(stack.forestry, 35, "on_track", percent=70)
    assert earlier.status_code == 202
    good = _report(35, "at_risk", percent=70, kpis={"林分优化": 8.0}, evidence=[EVIDENCE])
    old = _report(35, "on_track", percent=71, occurred_at="2024-08-01T10:00:00+08:00")
    replay = json.loads(earlier.request.content)  # sent again in the batch
    batch = [
        good,
        _report(35, "on_track", percent=200),  # out of range
        _report(35, "on_track", kpis={"5G网络基站总量": 1.0}),  # not a target of 35
        _report(41, "on_track"),  # 市林业局 is not responsible for 41
        dict(good),  # the same report twice: a replay
        {**good, "percent": 10},  # its event_id with another body
        old,
        replay,
        _report(35, "on_track", evidence=["ftp://example.cn/x"]),  # not http(s)
    ]
    response = await stack.progress_http.post(
        "/v1/events/batch", json={"events": batch}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [(r["index"], r["status"], r["http_status"]) for r in results] == [
        (0, "accepted", 202),
        (1, "rejected", 422),
        (2, "rejected", 422),
        (3, "rejected", 403),
        (4, "accepted", 202),
        (5, "rejected", 409),
        (6, "accepted", 202),
        (7, "accepted", 202),
        (8, "rejected", 422),
    ]
    assert (body["accepted"], body["rejected"]) == (4, 5)
    codes = {r["index"]: r["error"]["code"] for r in results if r["error"]}
    assert codes == {
        1: "invalid_event",
        2: "unknown_metric",
        3: "agency_not_responsible",
        5: "event_id_reused",
        8: "invalid_event",
    }
    assert (results[4]["partition"], results[4]["offset"]) == (
        results[0]["partition"],
        results[0]["offset"],
    )
    assert results[7]["offset"] == earlier.json()["offset"]
    assert (results[0]["late"], results[6]["late"]) == (False, True)

    ends = await end_offsets(stack.kafka_bootstrap, stack.topic_prefix + topics.STATUS, 6)
    assert sum(ends.values()) == 3  # the earlier report, the good one and the old one

    async def both_applied() -> bool:
        items = (await stack.office_get(f"/v1/work-points/{PLAN}/35/timeline")).json()["items"]
        return sum(1 for e in items if e["kind"] == "report") == 3

    await wait_for(both_applied, what="the batch's reports to be applied")
    timeline = await stack.office_get(f"/v1/work-points/{PLAN}/35/timeline")
    reports = [e["detail"] for e in timeline.json()["items"] if e["kind"] == "report"]
    by_id = {r["event_id"]: r for r in reports}
    assert by_id[good["event_id"]]["evidence"] == [EVIDENCE]
    assert by_id[good["event_id"]]["kpis"] == {"林分优化": 8.0}
    assert by_id[old["event_id"]]["late"] is True
    assert by_id[old["event_id"]]["out_of_order"] is True  # older than 市林业局's latest


async def test_a_batch_must_hold_between_one_and_the_maximum_of_reports(stack: Stack) -> None:
    headers = await stack.auth(stack.forestry)
    limit = stack.progress.settings.batch_max_events
    too_many = [_report(35, "on_track") for _ in range(limit + 1)]
    big = await stack.progress_http.post(
        "/v1/events/batch", json={"events": too_many}, headers=headers
    )
    assert (big.status_code, big.json()["code"]) == (413, "batch_too_large")
    for body in ({"events": []}, {"reports": [_report(35, "on_track")]}, {"events": "x"}):
        empty = await stack.progress_http.post("/v1/events/batch", json=body, headers=headers)
        assert (empty.status_code, empty.json()["code"]) == (422, "invalid_batch")
    office = await stack.progress_http.post(
        "/v1/events/batch",
        json={"events": [_report(35, "on_track")]},
        headers=await stack.auth(stack.office),
    )
    assert (office.status_code, office.json()["code"]) == (403, "agency_token_required")
    ends = await end_offsets(stack.kafka_bootstrap, stack.topic_prefix + topics.STATUS, 6)
    assert sum(ends.values()) == 0


async def test_the_same_report_sent_concurrently_is_answered_alike_and_applied_once(
    stack: Stack,
) -> None:
    # Whichever way the requests interleave (a later one sees the first one's answer, or both
    # pass the look-up and the second one's record collides), every answer is the first one's.
    body = _report(35, "at_risk", percent=40)
    headers = await stack.auth(stack.forestry)
    answers = await asyncio.gather(
        *(stack.progress_http.post("/v1/events", json=body, headers=headers) for _ in range(12))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({(a.json()["partition"], a.json()["offset"]) for a in answers}) == 1
    await stack.until_applied(answers[0])
    async with stack.progress.sessions() as session:
        query = select(func.count()).where(col(StatusReport.event_id) == body["event_id"])
        assert (await session.exec(query)).one() == 1


async def test_a_record_that_collides_with_a_concurrent_acceptance_gets_that_answer(
    stack: Stack,
) -> None:
    # The collision itself, without relying on timing: the answer for an event_id is already
    # recorded when a request that passed the look-up records its own.
    ingestion = stack.progress.ingestion
    first = await stack.post_event(stack.forestry, 35, "at_risk", percent=40)
    assert first.status_code == 202
    sent = json.loads(first.request.content)
    same = StatusReportIn.model_validate(sent)
    ready = ingestion.check(same, stack.forestry_id, None, await _view(stack, 35))
    assert isinstance(ready, Ready)
    elsewhere = RecordMetadata(
        topic="t", partition=5, topic_partition=None, offset=999, timestamp=0,
        timestamp_type=0, log_start_offset=0,
    )  # fmt: skip
    [answer] = await ingestion.record([(ready, elsewhere)])
    assert isinstance(answer, Receipt)
    accepted = Accepted(
        event_id=answer.event_id, partition=answer.partition, offset=answer.offset, late=answer.late
    )
    assert accepted.model_dump(mode="json") == first.json()  # the recorded one, not 5/999

    other = StatusReportIn.model_validate({**sent, "percent": 41})
    ready = ingestion.check(other, stack.forestry_id, None, await _view(stack, 35))
    assert isinstance(ready, Ready)
    [refused] = await ingestion.record([(ready, elsewhere)])
    assert isinstance(refused, ApiError) and refused.code == "event_id_reused"

    # In a batch (several rows, one statement), only the colliding report is refused.
    fresh = StatusReportIn.model_validate({**sent, "event_id": str(uuid.uuid4())})
    new = ingestion.check(fresh, stack.forestry_id, None, await _view(stack, 35))
    assert isinstance(new, Ready)
    kept, refused = await ingestion.record([(new, elsewhere), (ready, elsewhere)])
    assert isinstance(kept, Receipt) and (kept.partition, kept.offset) == (5, 999)
    assert isinstance(refused, ApiError) and refused.code == "event_id_reused"


async def _view(stack: Stack, number: int) -> WorkPointView | None:
    async with stack.progress.sessions() as session:
        return await session.get(WorkPointView, f"{PLAN}/{number}")


async def test_records_asked_together_share_a_round_and_the_first_of_an_id_wins(
    stack: Stack,
) -> None:
    store = stack.progress.ingest
    x, y = uuid.uuid4(), uuid.uuid4()

    def row(event_id: uuid.UUID, digest: str, offset: int) -> IngestedEvent:
        return IngestedEvent(
            event_id=event_id,
            agency_id=stack.forestry_id,
            body_sha256=digest * 64,
            partition=0,
            offset=offset,
            accepted_at=stack.clock.now(),
        )

    outcomes = await asyncio.gather(
        store.record(row(x, "a", 1)), store.record(row(x, "b", 2)), store.record(row(y, "c", 3))
    )
    assert outcomes == [True, False, True]
    (seen_x, _), (seen_y, _) = await asyncio.gather(
        store.look_up(x, f"{PLAN}/35"), store.look_up(y, f"{PLAN}/35")
    )
    assert seen_x is not None and (seen_x.body_sha256[0], seen_x.offset) == ("a", 1)
    assert seen_y is not None and seen_y.offset == 3
