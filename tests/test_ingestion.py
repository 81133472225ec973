"""Ingestion's guards: event_id is the idempotency key (a replay gets the first answer and
produces nothing; another body under the same id is refused), and bodies are size-limited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from duban_shared import topics

from tests.harness import end_offsets
from tests.stack import Stack


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
