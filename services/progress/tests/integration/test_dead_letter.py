"""Status events that can never be applied go to the dead-letter topic with the reason in a
header, and do not hold up the events behind them on the same partition."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from duban_shared import topics
from duban_shared.events import ReportStatus, StatusEvent
from duban_shared.kafka import headers_to_dict
from progress.store.models import StatusReport, WorkPointState
from sqlmodel import func, select

from tests.harness import topic_specs, wait_for
from tests.stack import PLAN, Stack

KEY = f"{PLAN}/35".encode()


@pytest.fixture
async def producer(stack: Stack) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    yield producer
    await producer.stop()


async def _dead_letters(stack: Stack, expected: int) -> list[ConsumerRecord[bytes, bytes]]:
    topic = stack.topic_prefix + topics.PROGRESS_DLQ
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        count = next(n for name, n, _ in topic_specs() if name == topics.PROGRESS_DLQ)
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)

        async def all_there() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            found.extend(r for part in batches.values() for r in part)
            return len(found) >= expected

        await wait_for(all_there, what=f"{expected} records on the dead-letter topic")
    finally:
        await consumer.stop()
    return found


async def test_unapplicable_events_are_dead_lettered_and_the_partition_keeps_flowing(
    stack: Stack, producer: AIOKafkaProducer
) -> None:
    status_topic = stack.topic_prefix + topics.STATUS
    invalid = b'{"event_id": "not json'
    unknown = StatusEvent(
        event_id=uuid.uuid4(),
        occurred_at=stack.clock.now(),
        work_point_id=f"{PLAN}/99",
        agency_id=stack.forestry_id,
        status=ReportStatus.ON_TRACK,
    )
    not_responsible = StatusEvent(  # 市林业局 has nothing to do with work point 41
        event_id=uuid.uuid4(),
        occurred_at=stack.clock.now(),
        work_point_id=f"{PLAN}/41",
        agency_id=stack.forestry_id,
        status=ReportStatus.BLOCKED,
    )
    wrong_metric = StatusEvent(  # work point 35's targets are 林分优化 and 森林抚育
        event_id=uuid.uuid4(),
        occurred_at=stack.clock.now(),
        work_point_id=f"{PLAN}/35",
        agency_id=stack.forestry_id,
        status=ReportStatus.ON_TRACK,
        kpis={"5G网络基站总量": 100.0},
    )
    valid = StatusEvent(
        event_id=uuid.uuid4(),
        occurred_at=stack.clock.now(),
        work_point_id=f"{PLAN}/35",
        agency_id=stack.forestry_id,
        status=ReportStatus.AT_RISK,
        percent=55,
    )
    bad = (invalid, unknown.to_bytes(), not_responsible.to_bytes(), wrong_metric.to_bytes())
    sent = [
        await producer.send_and_wait(status_topic, value, key=KEY)
        for value in (*bad, valid.to_bytes())
    ]
    assert len({m.partition for m in sent}) == 1  # one key, one partition, in this order

    async def applied() -> bool:
        async with stack.progress.sessions() as session:
            state = await session.get(WorkPointState, f"{PLAN}/35")
            return state is not None and state.status == "at_risk"

    await wait_for(applied, what="progress to apply the valid event behind the bad ones")
    progress = await stack.get_progress(stack.office, 35)
    assert (progress.json()["status"], progress.json()["percent"]) == ("at_risk", 55)
    async with stack.progress.sessions() as session:
        stored = (await session.exec(select(func.count()).select_from(StatusReport))).one()
    assert stored == 1  # only the valid event was stored
    assert (await stack.get_progress(stack.office, 41)).json()[
        "stalled"
    ] is False  # the refused "blocked" report changed nothing

    records = await _dead_letters(stack, expected=4)
    assert len(records) == 4
    by_code = {headers_to_dict(r.headers)["duban.error.code"]: r for r in records}
    assert set(by_code) == {
        "invalid_event",
        "unknown_work_point",
        "agency_not_responsible",
        "unknown_metric",
    }
    assert (
        "'林分优化', '森林抚育'"
        in headers_to_dict(by_code["unknown_metric"].headers)["duban.error.message"]
    )
    assert by_code["invalid_event"].value == invalid  # the original bytes, untouched
    assert by_code["unknown_work_point"].value == unknown.to_bytes()
    assert all(r.key == KEY for r in records)
    invalid_headers = headers_to_dict(by_code["invalid_event"].headers)
    assert invalid_headers["duban.source.topic"] == status_topic
    assert invalid_headers["duban.source.partition"] == str(sent[0].partition)
    assert invalid_headers["duban.source.offset"] == str(sent[0].offset)
    assert invalid_headers["duban.consumer.group"] == f"{stack.topic_prefix}duban-progress.status"
    assert invalid_headers["duban.attempts"] == "1"  # known bad: parked at once, not retried
    assert headers_to_dict(by_code["unknown_work_point"].headers)["duban.source.offset"] == (
        str(sent[1].offset)
    )
    assert (
        f"{PLAN}/99"
        in headers_to_dict(by_code["unknown_work_point"].headers)["duban.error.message"]
    )
