"""No record stops a consumer: one that keeps failing is parked with its reason, an outage is
waited out (the shared consumer loop, on the real broker), and the notifier parks an unreadable
stall transition. Progress's own parked records and the dead-letters command:
services/progress/tests/integration/test_poison_isolation.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import psycopg
import pytest
import sqlalchemy.exc
from aiokafka import AIOKafkaProducer, ConsumerRecord
from duban_shared import topics
from duban_shared.deadletters import DeadLetterSink, read_dead_letters
from duban_shared.kafka import RetryPolicy, make_consumer, make_producer, run_batch_consumer
from duban_shared.metrics import create_service_metrics
from opentelemetry.sdk.trace import TracerProvider

from tests.harness import committed_offsets, wait_for
from tests.stack import PLAN, Stack

FAST = RetryPolicy(attempts=3, pause_seconds=0.05, max_pause_seconds=0.2)


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(kafka_bootstrap, "poison-test")
    await producer.start()
    yield producer
    await producer.stop()


class _Applier:
    """A handler that applies a batch all or nothing, failing on the records it is told to."""

    def __init__(self, fail_on: bytes, outages: int = 0) -> None:
        self.applied: list[bytes] = []
        self.calls = 0
        self.fail_on = fail_on
        self.outages = outages

    async def __call__(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        self.calls += 1
        if self.outages:
            self.outages -= 1
            raise sqlalchemy.exc.OperationalError(
                "COMMIT", {}, psycopg.OperationalError("server closed the connection")
            )
        values = [r.value or b"" for r in records]
        if self.fail_on in values:
            raise ValueError(f"cannot apply {self.fail_on!r}")
        self.applied.extend(values)


async def _run(
    kafka_bootstrap: str,
    producer: AIOKafkaProducer,
    topic_prefix: str,
    handler: _Applier,
    values: list[bytes],
    *,
    parker: DeadLetterSink | None,
) -> str:
    """Produce values on one partition, consume them to the end; return the group."""
    topic = topic_prefix + topics.STATUS
    group = f"{topic_prefix}poison"
    for value in values:
        await producer.send_and_wait(topic, value, key=b"one-key")
    consumer = make_consumer(kafka_bootstrap, group, topic, client_id="poison")
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.create_task(
        run_batch_consumer(consumer, handler, stop, name="poison", dead_letters=parker, retry=FAST)
    )
    try:

        async def all_committed() -> bool:
            return sum((await committed_offsets(kafka_bootstrap, group)).values()) == len(values)

        await wait_for(all_committed, what="the group to commit every record")
    finally:
        stop.set()
        await loop
        await consumer.stop()
    return group


async def test_a_record_that_keeps_failing_is_parked_and_the_records_behind_it_go_on(
    kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer
) -> None:
    dlq = topic_prefix + topics.PROGRESS_DLQ
    metrics = create_service_metrics("duban-t", env={"OTEL_METRICS_EXPORTER": "none"})
    tracer = TracerProvider().get_tracer("t")
    parker = DeadLetterSink(producer, tracer, dlq, f"{topic_prefix}poison", metrics)
    handler = _Applier(fail_on=b"poison")
    values = [b"one", b"two", b"poison", b"three", b"four"]
    await _run(kafka_bootstrap, producer, topic_prefix, handler, values, parker=parker)

    assert handler.applied == [b"one", b"two", b"three", b"four"]  # in order, each once
    letters = await read_dead_letters(kafka_bootstrap, dlq)
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.value, letter.key) == (b"poison", b"one-key")
    assert letter.code == "unexpected_value_error"
    facts = letter.describe()
    assert facts["message"] == "cannot apply b'poison'"
    assert facts["source"] == f"{topic_prefix}{topics.STATUS}:{letter.partition}:2"
    assert (facts["group"], facts["attempts"]) == (f"{topic_prefix}poison", "3")
    assert "traceparent" in facts["headers"]  # the record's trace goes on in the dead letter
    exposition = (await metrics.exposition()).decode()
    assert 'duban_dead_letters_total{error_type="unexpected_value_error"' in exposition
    metrics.shutdown()


async def test_an_outage_is_waited_out_and_parks_nothing(
    kafka_bootstrap: str,
    topic_prefix: str,
    producer: AIOKafkaProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dlq = topic_prefix + topics.PROGRESS_DLQ
    tracer = TracerProvider().get_tracer("t")
    parker = DeadLetterSink(producer, tracer, dlq, f"{topic_prefix}poison")
    handler = _Applier(fail_on=b"never", outages=6)  # twice the attempts a record gets
    with caplog.at_level(logging.WARNING, logger="duban_shared.kafka"):
        await _run(kafka_bootstrap, producer, topic_prefix, handler, [b"a", b"b"], parker=parker)
    assert handler.applied == [b"a", b"b"]
    assert await read_dead_letters(kafka_bootstrap, dlq) == []
    said = [r.getMessage() for r in caplog.records]
    assert sum("consumer poison unavailable" in line for line in said) == 1, said
    assert any("consumer poison available again" in line for line in said), said


async def test_without_a_dead_letter_topic_a_failing_record_holds_its_partition(
    kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer
) -> None:
    handler = _Applier(fail_on=b"poison")
    topic = topic_prefix + topics.STATUS
    await producer.send_and_wait(topic, b"poison", key=b"k")
    consumer = make_consumer(kafka_bootstrap, f"{topic_prefix}hold", topic, client_id="hold")
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.create_task(run_batch_consumer(consumer, handler, stop, name="h", retry=FAST))

    async def retried() -> bool:
        return handler.calls >= 5

    await wait_for(retried, what="the record to be retried")
    stop.set()
    await loop
    await consumer.stop()
    assert handler.applied == []
    assert await committed_offsets(kafka_bootstrap, f"{topic_prefix}hold") == {}


async def test_an_unreadable_stall_transition_is_parked_by_the_notifier(stack: Stack) -> None:
    await stack.progress.producer.send_and_wait(
        stack.topic_prefix + topics.STALLS, b"not a transition", key=f"{PLAN}/35".encode()
    )
    blocked = await stack.post_event(stack.forestry, 35, "blocked")
    await stack.until_applied(blocked)

    async def parked() -> bool:
        dlq = stack.topic_prefix + topics.NOTIFIER_DLQ
        return len(await read_dead_letters(stack.kafka_bootstrap, dlq)) == 1

    await wait_for(parked, what="the notifier to park the unreadable transition")

    async def alerted() -> bool:
        office = await stack.auth(stack.office)
        answer = await stack.notifier_http.get(
            "/v1/alerts", params={"work_point_id": f"{PLAN}/35"}, headers=office
        )
        return answer.status_code == 200 and answer.json()["total"] >= 1

    await wait_for(alerted, what="the transition behind it to open an alert")
