"""Benchmark: how fast progress's status consumer persists status events, against a raw consume.

1. Seeds the progress read model (its own database, migrated with progress's migrations) with
   tracked work points, each with a lead and a co-responsible agency.
2. Produces N valid StatusEvent messages (key = work point id, a `traceparent` header, as
   ingestion sends them) to a fresh status topic with the real partition count.
3. (a) Consumes them all with a bare aiokafka consumer (`getmany`, no processing): the ceiling.
   (b) Runs the real StatusConsumer (from progress.main.build) under run_batch_consumer, with the
   outbox relay running, until status_report holds N rows.

Both rates count from the first batch in hand to the last record consumed (a): or to the commit
of the transaction that stored the last one (b), so group join and first fetch are left out of
both.

Run: .venv/bin/python bench/consumer.py [--events 50000] [--work-points 1000] [--quick]
Prints consumer_events_per_s, raw_getmany_events_per_s, consumer_to_raw_ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import psycopg
from _common import (
    KAFKA,
    CpuMeter,
    bench_databases,
    bench_topics,
    note,
    partitions_of,
    print_environment,
    result,
    run,
    run_id,
    setup,
    topic_total,
    verdict,
)
from _progress import (
    NOW,
    SqlStats,
    WorkPoint,
    bench_agencies,
    build_progress,
    print_profile,
    seed_work_points,
)
from aiokafka import AIOKafkaProducer, ConsumerRecord
from duban_shared import topics
from duban_shared.app import settle_heap
from duban_shared.events import ReportStatus, StatusEvent
from duban_shared.kafka import make_consumer, run_batch_consumer
from progress.service import SERVICE

TARGET_EVENTS_PER_S = 2000.0
STATUSES = [ReportStatus.ON_TRACK, ReportStatus.AT_RISK, ReportStatus.BLOCKED, ReportStatus.DONE]
STATUS_WEIGHTS = [85, 10, 3, 2]

Message = tuple[bytes, bytes, list[tuple[str, bytes]]]


def make_events(count: int, points: list[WorkPoint], seed: int = 7) -> list[Message]:
    """`count` status events as agency systems send them: mostly the lead, sometimes the
    co-agency; percents that mostly climb (a few stall); in time order per work point."""
    rng = random.Random(seed)
    percent = {p.work_point_id: rng.randint(35, 55) for p in points}
    first = NOW - timedelta(seconds=count)
    messages = []
    for i in range(count):
        point = points[rng.randrange(len(points))]
        by_lead = rng.random() < 0.8
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        if by_lead and rng.random() < 0.9:  # one report in ten without progress
            percent[point.work_point_id] = min(99, percent[point.work_point_id] + rng.randint(1, 3))
        occurred = first + timedelta(seconds=i)
        event = StatusEvent(
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            occurred_at=occurred,
            work_point_id=point.work_point_id,
            agency_id=(point.lead if by_lead else point.co).agency_id,
            status=status,
            percent=percent[point.work_point_id],
            note="林分优化用地审批未完成" if status == ReportStatus.BLOCKED else None,
            received_at=occurred + timedelta(milliseconds=40),
        )
        traceparent = f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01"
        messages.append(
            (
                point.work_point_id.encode(),
                event.to_bytes(),
                [("traceparent", traceparent.encode())],
            )
        )
    return messages


async def produce(topic: str, messages: list[Message]) -> float:
    """Produce every message (acks=all, idempotent, batched); return the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA,
        client_id="duban-bench-load",
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, value, headers in messages:
            pending.append(await producer.send(topic, value=value, key=key, headers=headers))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consume(topic: str, group: str, count: int) -> float:
    """Consume `count` records with a bare consumer configured as the service's; events/s."""
    consumer = make_consumer(KAFKA, group, topic, client_id="duban-bench-raw")
    await consumer.start()
    try:
        seen, first, first_batch = 0, 0.0, 0
        deadline = time.monotonic() + 300
        while seen < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: raw consumer saw only {seen} of {count} records")
            batches = await consumer.getmany(timeout_ms=200)
            got = sum(len(part) for part in batches.values())
            if got and not seen:
                first, first_batch = time.perf_counter(), got
            seen += got
        elapsed = time.perf_counter() - first
    finally:
        await consumer.stop()
    return (count - first_batch) / elapsed


class TimedHandler:
    """Wraps a batch handler: when the first batch arrived, when the last one was committed."""

    def __init__(self, handle: Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]):
        self._handle = handle
        self.first = 0.0
        self.last_commit = 0.0
        self.records = 0
        self.batches = 0

    async def __call__(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Time the real handler (it commits its own transaction before returning)."""
        if not self.first:
            self.first = time.perf_counter()
        await self._handle(records)
        self.records += len(records)
        self.batches += 1
        self.last_commit = time.perf_counter()


async def scalar(dsn: str, sql: str) -> int:
    """An integer the query answers, read on a connection of its own."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(sql)
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def wait_until_relayed(dsn: str, within: float = 120.0) -> None:
    """Wait until the outbox has no unpublished rows."""
    deadline = time.monotonic() + within
    unpublished = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
    while await scalar(dsn, unpublished) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)


async def real_consume(
    dsn: str, database_url: str, prefix: str, count: int, profile: bool, dump_to: str | None
) -> tuple[float, TimedHandler, int]:
    """Run progress's StatusConsumer until status_report has `count` rows; return events/s,
    the timings and the transitions the relay produced."""
    service = build_progress(database_url, prefix)
    await service.producer.start()  # dead letters and the relay send with it
    stop = service.background.stop
    service.background.spawn("progress-outbox", service.relay.run(stop))
    consumer = make_consumer(
        KAFKA, f"{prefix}{SERVICE}.status", prefix + topics.STATUS, client_id=SERVICE
    )
    sql = SqlStats(service.engine) if profile else None
    await consumer.start()
    settle_heap()  # as `duban-progress worker` does once started (and frees below)
    timed = TimedHandler(service.status_consumer.handle_batch)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    task = asyncio.create_task(run_batch_consumer(consumer, timed, stop, name="status"))
    meter = CpuMeter()
    meter.start()
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            stored, last_change, last_stored = 0, time.monotonic(), -1
            while stored < count:
                if task.done():
                    task.result()  # raises what stopped the consumer
                if time.monotonic() - last_change > 60:
                    raise SystemExit(f"bench: stuck at {stored} of {count} stored reports")
                await asyncio.sleep(0.1)
                cur = await conn.execute("SELECT count(*) FROM status_report")
                row = await cur.fetchone()
                stored = int(row[0]) if row else 0
                if stored != last_stored:
                    last_stored, last_change = stored, time.monotonic()
        if profiler:
            profiler.disable()
        note(meter.report())
        elapsed = timed.last_commit - timed.first
        # Let the relay finish the transitions the reports caused, then count them.
        await wait_until_relayed(dsn)
        transitions = await topic_total(prefix + topics.STALLS, partitions_of(topics.STALLS))
    finally:
        stop.set()
        await task
        await consumer.stop()
        await service.close()
        gc.unfreeze()
    if profiler:
        print_profile(profiler, "StatusConsumer (profiled run: rates are lower)", dump_to)
    if sql is not None:
        sql.print("StatusConsumer + relay", count, "event")
    return count / elapsed, timed, transitions


async def main(args: argparse.Namespace) -> None:
    """Seed, produce, consume twice, print the figures."""
    tag = run_id()
    prefix = f"bench-consumer-{tag}."
    with bench_databases(tag, "progress") as dbs:
        db = dbs["progress"]
        async with bench_topics(prefix):
            points = await seed_work_points(
                db.url, args.work_points, bench_agencies(args.agencies), NOW
            )
            messages = make_events(args.events, points)
            topic = prefix + topics.STATUS
            seconds = await produce(topic, messages)
            note(
                f"produced {len(messages)} events to {topic} "
                f"({partitions_of(topics.STATUS)} partitions) in {seconds:.1f} s; "
                f"{args.work_points} work points, {args.agencies} agencies"
            )
            raw = await raw_consume(topic, f"{prefix}bench.raw", args.events)
            rate, timed, transitions = await real_consume(
                db.dsn, db.url, prefix, args.events, args.profile, args.profile_out
            )
            dead = await topic_total(
                prefix + topics.PROGRESS_DLQ, partitions_of(topics.PROGRESS_DLQ)
            )
            stored = await scalar(db.dsn, "SELECT count(*) FROM status_report")
            note(
                f"StatusConsumer: {timed.records} records in {timed.batches} batches "
                f"(avg {timed.records / max(timed.batches, 1):.0f}/batch), "
                f"{timed.last_commit - timed.first:.2f} s; status_report rows {stored}; "
                f"dead-lettered {dead}; stall transitions relayed {transitions}"
            )
            note(f"per event: {1000.0 / rate:.3f} ms consumer vs {1000.0 / raw:.4f} ms raw")
    result("consumer_events_per_s", rate, "events/s", 0)
    result("raw_getmany_events_per_s", raw, "events/s", 0)
    result("consumer_to_raw_ratio", rate / raw, "ratio", 4)
    verdict("consumer_events_per_s", rate, f">= {TARGET_EVENTS_PER_S:.0f}", rate >= 2000)


def parse_args() -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="status events (50000)")
    parser.add_argument(
        "--work-points",
        type=int,
        default=5000,
        help="tracked work points (5000: ~10 reports each at 50,000 events, half a year of "
        "fortnightly reports)",
    )
    parser.add_argument("--agencies", type=int, default=52, help="responsible agencies (52)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 events")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the consumer run and print a summary"
    )
    parser.add_argument("--profile-out", help="with --profile: also save the pstats file here")
    args = parser.parse_args()
    if args.quick:
        args.events = min(args.events, 5000)
    return args


if __name__ == "__main__":
    setup()
    options = parse_args()
    print_environment("consumer", vars(options))
    run(lambda: main(options))
