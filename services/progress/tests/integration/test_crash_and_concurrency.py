"""Crashes and replicas on real Kafka and PostgreSQL: a status consumer killed mid-batch (inside
its database transaction, and between that commit and the offset commit) loses and double-counts
nothing once restarted; two sweepers side by side emit each transition once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.db import create_engine, session_factory
from duban_shared.deadletters import DeadLetterSink
from duban_shared.events import ReportStatus, Responsibility, StatusEvent, WorkPointSnapshot
from duban_shared.kafka import make_consumer, make_producer, run_batch_consumer
from duban_shared.outbox import OutboxRelay
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.trace import Tracer
from progress.consumers import StatusConsumer
from progress.store import history
from progress.store.models import (
    AgencyProgress,
    Inbox,
    OutboxMessage,
    StatusReport,
    TransitionRecord,
    WorkPointState,
)
from progress.use_cases.reports import ApplyReports
from progress.use_cases.sweep import Sweeper
from progress.use_cases.work_points import upsert_view
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.harness import committed_offsets, end_offsets, wait_for

PLAN = "crash-test-2024"
LEAD = uuid.uuid5(uuid.NAMESPACE_URL, "crash-lead")
START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")
EVENTS = 600
WORK_POINTS = 12


class Crash(BaseException):
    """The process dies: not an Exception, so the consumer loop cannot catch and retry it."""


class FirstProcessSpan(SpanProcessor):
    """Fires once the consumer has applied a record of the batch it is in."""

    def __init__(self) -> None:
        self.applied = asyncio.Event()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.name.startswith("process"):
            self.applied.set()


async def _track(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    """Progress learns `count` work points led by one agency, as the registry would tell it."""
    async with sessions() as session, session.begin():
        for number in range(1, count + 1):
            snapshot = WorkPointSnapshot(
                event_id=uuid.uuid4(),
                occurred_at=START,
                work_point_id=f"{PLAN}/{number}",
                plan_slug=PLAN,
                number=number,
                code=str(number),
                section=1,
                title=f"工作要点{number}",
                responsibilities=[Responsibility(agency_id=LEAD, name="市林业局", role="lead")],
            )
            await upsert_view(session, snapshot, None, START)


@pytest.fixture
async def sessions(
    make_database: Callable[[str], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(make_database("progress"))
    factory = session_factory(engine)
    await _track(factory, WORK_POINTS)
    yield factory
    await engine.dispose()


async def _produce(bootstrap: str, topic: str) -> list[StatusEvent]:
    events = [
        StatusEvent(
            event_id=uuid.uuid4(),
            occurred_at=START + timedelta(minutes=i),
            work_point_id=f"{PLAN}/{i % WORK_POINTS + 1}",
            agency_id=LEAD,
            status=ReportStatus.BLOCKED if i % 7 == 0 else ReportStatus.ON_TRACK,
            percent=i * 100 // EVENTS,
        )
        for i in range(EVENTS)
    ]
    producer = make_producer(bootstrap, "crash-test")
    await producer.start()
    try:
        sends = [
            await producer.send(topic, e.to_bytes(), key=e.work_point_id.encode()) for e in events
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return events


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_a_consumer_killed_mid_batch_and_restarted_loses_and_doubles_nothing(
    kafka_bootstrap: str, topic_prefix: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    topic = topic_prefix + topics.STATUS
    events = await _produce(kafka_bootstrap, topic)
    group = topic_prefix + "progress.status"
    clock = ManualClock(START + timedelta(days=1))
    producer = make_producer(kafka_bootstrap, "progress")
    await producer.start()

    Kill = Callable[[StatusConsumer, list[ConsumerRecord[bytes, bytes]], asyncio.Event], Any]

    async def run_until_crash(kill: Kill) -> tuple[int, int]:
        """Run a consumer whose third batch kills it; return the records of the two batches it
        finished and of the batch it died in."""
        provider = TracerProvider()
        spans = FirstProcessSpan()
        provider.add_span_processor(spans)
        tracer = provider.get_tracer("crash-test")
        relay = OutboxRelay(OutboxMessage, sessions, producer, tracer, clock)
        parker = _parker(producer, tracer, topic_prefix)
        status = StatusConsumer(ApplyReports(sessions, clock, relay), parker, tracer)
        consumer = make_consumer(kafka_bootstrap, group, topic, client_id="p", max_poll_records=40)
        await consumer.start()
        sizes: list[int] = []

        async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
            sizes.append(len(records))
            if len(sizes) < 3:
                await status.handle_batch(records)
                return
            spans.applied.clear()
            await kill(status, records, spans.applied)

        try:
            with pytest.raises(Crash):
                await run_batch_consumer(consumer, handle, asyncio.Event(), name="doomed")
        finally:
            await consumer.stop()
        return sizes[0] + sizes[1], sizes[2]

    async def killed_inside_the_transaction(
        status: StatusConsumer, records: list[ConsumerRecord[bytes, bytes]], applied: asyncio.Event
    ) -> None:
        applying = asyncio.create_task(status.handle_batch(records))
        first = asyncio.create_task(applied.wait())
        await asyncio.wait({applying, first}, return_when=asyncio.FIRST_COMPLETED)
        assert not applying.done()  # a record is applied, the transaction still open
        applying.cancel()
        await asyncio.gather(applying, first, return_exceptions=True)
        raise Crash

    async def killed_before_the_offset_commit(
        status: StatusConsumer, records: list[ConsumerRecord[bytes, bytes]], _: asyncio.Event
    ) -> None:
        await status.handle_batch(records)  # the transaction commits...
        raise Crash  # ...and the process dies before Kafka hears of it

    try:
        finished, _killed = await run_until_crash(killed_inside_the_transaction)
        assert await _count(sessions, StatusReport) == finished  # the third batch rolled back
        more, committed_only_in_db = await run_until_crash(killed_before_the_offset_commit)
        assert await _count(sessions, StatusReport) == finished + more + committed_only_in_db

        # Restarted: it reads again from the last committed offsets, to the end.
        provider = TracerProvider()
        tracer = provider.get_tracer("crash-test")
        relay = OutboxRelay(OutboxMessage, sessions, producer, tracer, clock)
        parker = _parker(producer, tracer, topic_prefix)
        status = StatusConsumer(ApplyReports(sessions, clock, relay), parker, tracer)
        consumer = make_consumer(kafka_bootstrap, group, topic, client_id="p")
        await consumer.start()
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_batch_consumer(consumer, status.handle_batch, stop, name="again")
        )
        try:
            await _committed_to_the_end(
                kafka_bootstrap, group, topic, "the restarted consumer to reach the end"
            )
        finally:
            stop.set()
            await task
            await consumer.stop()
    finally:
        await producer.stop()

    assert await _count(sessions, StatusReport) == EVENTS
    assert await _count(sessions, Inbox) == EVENTS
    async with sessions() as session:
        stored = set((await session.exec(select(StatusReport.event_id))).all())
        assert stored == {e.event_id for e in events}
        assert (await history.verify(session)).ok
        # Every work point's latest report is its newest event: nothing applied twice or skipped.
        for number in range(1, WORK_POINTS + 1):
            wp = f"{PLAN}/{number}"
            newest = max((e for e in events if e.work_point_id == wp), key=lambda e: e.occurred_at)
            latest = await session.get(AgencyProgress, (wp, LEAD))
            assert latest is not None
            assert (latest.last_report_at, latest.percent) == (newest.occurred_at, newest.percent)
            seqs = (
                await session.exec(
                    select(StatusReport.chain_seq).where(StatusReport.work_point_id == wp)
                )
            ).all()
            assert sorted(seqs) == list(range(1, EVENTS // WORK_POINTS + 1))


async def test_two_sweepers_side_by_side_emit_each_transition_once(
    make_database: Callable[[str], str],
) -> None:
    engine = create_engine(make_database("progress"))
    sessions = session_factory(engine)
    clock = ManualClock(START)
    count = 240
    await _track(sessions, count)
    clock.set(datetime.fromisoformat("2024-10-31T09:00:00+08:00"))  # every lead long silent
    tracer = TracerProvider().get_tracer("sweepers")
    producer = make_producer("127.0.0.1:1", "unused")  # never started: the relay only wakes
    relay = OutboxRelay(OutboxMessage, sessions, producer, tracer, clock)
    sweepers = [
        Sweeper(sessions, clock, tracer, relay, batch_size=25, skip_locked=True) for _ in range(2)
    ]
    try:
        done = await asyncio.gather(*(s.sweep_once() for s in sweepers))
        assert sum(done) == count
        assert await _count(sessions, OutboxMessage) == count
        async with sessions() as session:
            opened = (
                await session.exec(
                    select(TransitionRecord.work_point_id, func.count()).group_by(
                        col(TransitionRecord.work_point_id)
                    )
                )
            ).all()
            assert len(opened) == count and {n for _, n in opened} == {1}
            states = (await session.exec(select(WorkPointState))).all()
            assert sum(1 for st in states if st.stall_reason == "silent") == count
        assert await asyncio.gather(*(s.sweep_once() for s in sweepers)) == [0, 0]
    finally:
        await engine.dispose()


async def _committed_to_the_end(
    bootstrap: str, group: str, topic: str, what: str
) -> dict[int, int]:
    """Wait until `group` committed every partition of `topic` up to its end; the end offsets."""
    ends = await end_offsets(bootstrap, topic, 6)

    async def caught_up() -> bool:
        committed = await committed_offsets(bootstrap, group)
        return all(committed.get((topic, p), 0) >= end for p, end in ends.items())

    await wait_for(caught_up, within=60, what=what)
    return ends


async def _group_state(bootstrap: str, group: str) -> str:
    """The broker's state of a consumer group (`Stable`, `Empty`, `PreparingRebalance`...)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return str(described.to_object()["groups"][0]["state"])


async def test_a_member_dropped_for_a_slow_batch_goes_on_and_gets_the_batch_again(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + topics.STATUS
    await _produce(kafka_bootstrap, topic)
    group = topic_prefix + "progress.status"

    # The slow member is dropped if it polls less than once a second.
    slow = make_consumer(kafka_bootstrap, group, topic, client_id="p", max_poll_interval_ms=1000)
    other = make_consumer(kafka_bootstrap, group, topic, client_id="p")
    await slow.start()
    delivered: list[set[tuple[int, int]]] = []

    async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
        delivered.append({(r.partition, r.offset) for r in records})
        if len(delivered) > 1:
            return

        # Too slow: the broker drops this member, and another takes its partitions...
        async def dropped() -> bool:
            return await _group_state(kafka_bootstrap, group) == "Empty"

        await wait_for(dropped, within=60, what="the slow member to leave the group")
        await other.start()

        async def taken_over() -> bool:
            return bool(other.assignment())

        await wait_for(taken_over, within=60, what="another member to take the partitions")
        # ...so the commit of this batch is refused when the handler returns.

    stop = asyncio.Event()
    loop = asyncio.create_task(run_batch_consumer(slow, handle, stop, name="slow"))
    try:

        async def delivered_again() -> bool:
            return len(delivered) > 1

        await wait_for(delivered_again, within=60, what="the slow member to rejoin and consume")
        assert not loop.done()  # the refused commit did not end the loop
        await other.stop()  # it consumed nothing: everything comes to the slow member
        ends = await _committed_to_the_end(
            kafka_bootstrap, group, topic, "the loop to commit every record"
        )
    finally:
        stop.set()
        await loop
        await slow.stop()
        await other.stop()
    # The refused batch's records all came again, and nothing was skipped.
    again = set().union(*delivered[1:])
    assert delivered[0] <= again
    assert again == {(p, o) for p, end in ends.items() for o in range(end)}


def _parker(producer: AIOKafkaProducer, tracer: Tracer, topic_prefix: str) -> DeadLetterSink:
    return DeadLetterSink(producer, tracer, topic_prefix + topics.PROGRESS_DLQ, "crash-test")
