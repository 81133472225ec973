"""Benchmark: how fast progress's status consumer persists status events, against the simplest
correct persisting consumer of the same events.

1. Seeds the progress read model (its own database, migrated with progress's migrations) with
   tracked work points, each with a lead and a co-responsible agency.
2. Produces N valid StatusEvent messages (key = work point id, a `traceparent` header, as
   ingestion sends them) to a fresh status topic with the real partition count.
3. Consumes them all, each consumer in a consumer group of its own, on the same broker, database
   server and messages, one after the other in this process:
   (raw) a bare aiokafka consumer (`getmany`, no processing): the ceiling;
   (anchor) the simplest correct persisting consumer: `getmany`; per batch, in one
   transaction, an `INSERT ... ON CONFLICT (event_id) DO NOTHING` of the reports and an UPDATE of
   each work point's latest state guarded by time (an older report changes nothing); then the
   offset commit;
   (anchor_copy) the same with the batch COPYed into a temporary table and one set-based
   INSERT and one UPDATE from it;
   (duban) progress's StatusConsumer (from progress.main.build) under run_batch_consumer, with
   its offsets kept in its database as the service keeps them, and the outbox relay running,
   until status_report holds N rows; once with tracing on (spans made and handed to a batch
   processor whose exporter drops them) and once with `OTEL_SDK_DISABLED=true` (each on a
   database of its own).

Every rate counts from the first batch in hand to the commit of the transaction that stored the
last record (to the last record consumed for raw), so group join and first fetch are left out.

Run: .venv/bin/python bench/consumer.py [--events 50000] [--work-points 5000] [--quick]
Prints the events/s of each, Duban's ratio to each anchor, the tracing ratio and peak RSS, and
the same ratios of CPU time per event in this process (steadier than the rates on a shared
machine; the anchors' PostgreSQL work is not in them, as Duban's is not).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import psycopg
from _common import (
    KAFKA,
    CpuMeter,
    Database,
    bench_databases,
    bench_topics,
    note,
    partitions_of,
    peak_rss_mib,
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
    print_profile,
    seed_work_points,
)
from aiokafka import AIOKafkaProducer, ConsumerRecord
from duban_shared import topics
from duban_shared.app import settle_heap
from duban_shared.clock import ManualClock
from duban_shared.events import ReportStatus, StatusEvent
from duban_shared.kafka import make_consumer, run_batch_consumer
from duban_shared.offsets import OffsetKeeper, OffsetStore
from duban_shared.telemetry import create_tracer_provider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from progress.main import build
from progress.service import SERVICE, ProgressService
from progress.settings import ProgressSettings
from progress.store.models import ConsumerOffset

TARGET_ANCHOR_RATIO = 0.5
TARGET_TRACING_RATIO = 0.95
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


CPU_US_PER_EVENT: dict[str, float] = {}
"""Each consumer's CPU time in this process per event (user + system, over the same interval as
its rate): on a shared machine it moves much less than the rate, which counts waiting too."""


ANCHOR_TABLES = """
CREATE TABLE anchor_report (
    event_id uuid PRIMARY KEY, work_point_id text NOT NULL, agency_id uuid NOT NULL,
    status text NOT NULL, percent int, note text, occurred_at timestamptz NOT NULL,
    received_at timestamptz);
CREATE TABLE anchor_latest (
    work_point_id text PRIMARY KEY, status text, percent int, last_report_at timestamptz);
"""
ANCHOR_INSERT = (
    "INSERT INTO anchor_report (event_id, work_point_id, agency_id, status, percent, note, "
    "occurred_at, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (event_id) DO NOTHING"
)
ANCHOR_UPDATE = (
    "UPDATE anchor_latest SET status = %s, percent = %s, last_report_at = %s "
    "WHERE work_point_id = %s AND (last_report_at IS NULL OR last_report_at < %s)"
)
ANCHOR_STAGE = (
    "CREATE TEMPORARY TABLE anchor_stage (event_id uuid, work_point_id text, agency_id uuid, "
    "status text, percent int, note text, occurred_at timestamptz, received_at timestamptz) "
    "ON COMMIT DELETE ROWS"
)
ANCHOR_COPY_INSERT = (
    "INSERT INTO anchor_report SELECT * FROM anchor_stage ON CONFLICT (event_id) DO NOTHING"
)
ANCHOR_COPY_UPDATE = (
    "UPDATE anchor_latest l SET status = s.status, percent = s.percent, "
    "last_report_at = s.occurred_at FROM (SELECT DISTINCT ON (work_point_id) * FROM anchor_stage "
    "ORDER BY work_point_id, occurred_at DESC) s WHERE l.work_point_id = s.work_point_id "
    "AND (l.last_report_at IS NULL OR l.last_report_at < s.occurred_at)"
)


async def create_anchor_tables(dsn: str, points: list[WorkPoint]) -> None:
    """The anchors' two tables, each work point's latest-state row seeded."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(ANCHOR_TABLES)
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO anchor_latest (work_point_id) VALUES (%s)",
                [(p.work_point_id,) for p in points],
            )


def anchor_row(value: bytes) -> tuple[object, ...]:
    """A report's columns, decoded with json (no model, no validation beyond the keys)."""
    event = json.loads(value)
    return (
        event["event_id"],
        event["work_point_id"],
        event["agency_id"],
        event["status"],
        event.get("percent"),
        event.get("note"),
        event["occurred_at"],
        event.get("received_at"),
    )


async def anchor_consume(dsn: str, topic: str, group: str, count: int, copy: bool) -> float:
    """The simplest correct persisting consumer (see the module docstring); events/s from the
    first batch in hand to the commit of the last one."""
    consumer = make_consumer(KAFKA, group, topic, client_id="duban-bench-anchor")
    await consumer.start()
    try:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            if copy:
                await conn.execute(ANCHOR_STAGE)
                await conn.commit()
            seen, first = 0, 0.0
            deadline = time.monotonic() + 300
            while seen < count:
                if time.monotonic() > deadline:
                    raise SystemExit(f"bench: the anchor stored only {seen} of {count} records")
                batches = await consumer.getmany(timeout_ms=200)
                records = [r for part in batches.values() for r in part]
                if not records:
                    continue
                if not seen:
                    first, cpu_first = time.perf_counter(), time.process_time()
                rows = [anchor_row(r.value or b"{}") for r in records]
                async with conn.transaction(), conn.cursor() as cur:
                    if copy:
                        async with cur.copy(
                            "COPY anchor_stage (event_id, work_point_id, agency_id, status, "
                            "percent, note, occurred_at, received_at) FROM STDIN"
                        ) as copying:
                            for row in rows:
                                await copying.write_row(row)
                        await cur.execute(ANCHOR_COPY_INSERT)
                        await cur.execute(ANCHOR_COPY_UPDATE)
                    else:
                        await cur.executemany(ANCHOR_INSERT, rows)
                        await cur.executemany(
                            ANCHOR_UPDATE, [(r[3], r[4], r[6], r[1], r[6]) for r in rows]
                        )
                await consumer.commit()
                seen += len(records)
            elapsed = time.perf_counter() - first
            cpu = time.process_time() - cpu_first
            stored = await (await conn.execute("SELECT count(*) FROM anchor_report")).fetchone()
            await conn.execute("TRUNCATE anchor_report")
            await conn.execute(
                "UPDATE anchor_latest SET status = NULL, percent = NULL, last_report_at = NULL"
            )
            await conn.commit()
    finally:
        await consumer.stop()
    if not stored or stored[0] != count:
        raise SystemExit(f"bench: the anchor stored {stored} reports of {count}")
    CPU_US_PER_EVENT["anchor_copy" if copy else "anchor"] = 1e6 * cpu / count
    return count / elapsed


class DroppingExporter(SpanExporter):
    """Takes every span the batch processor hands it and keeps none (counts them)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Count, drop."""
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


class TimedHandler:
    """Wraps a batch handler: when the first batch arrived, when the last one was committed."""

    def __init__(self, handle: Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]):
        self._handle = handle
        self.first = 0.0
        self.cpu_first = 0.0
        self.cpu_last = 0.0
        self.last_commit = 0.0
        self.records = 0
        self.batches = 0

    async def __call__(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Time the real handler (it commits its own transaction before returning)."""
        if not self.first:
            self.first, self.cpu_first = time.perf_counter(), time.process_time()
        await self._handle(records)
        self.records += len(records)
        self.batches += 1
        self.last_commit, self.cpu_last = time.perf_counter(), time.process_time()


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


def build_progress(database_url: str, prefix: str, provider: TracerProvider) -> ProgressService:
    """The progress service as progress.main.build() wires it (as bench/_progress.py's, with the
    tracer provider given)."""
    return build(
        ProgressSettings(
            database_url=database_url,
            kafka_bootstrap_servers=KAFKA,
            topic_prefix=prefix,
            run_sweeper=False,
            environment="test",
        ),
        clock=ManualClock(NOW),
        tracer_provider=provider,
    )


def tracer_provider(tracing: bool) -> TracerProvider:
    """Tracing on: the service's provider with a batch processor whose exporter drops the spans
    (their making, queueing and hand-over are measured, not an exporter's network); off: as
    `OTEL_SDK_DISABLED=true` makes it (the SDK hands out no-op tracers)."""
    if tracing:
        provider = create_tracer_provider(SERVICE, env={"OTEL_TRACES_EXPORTER": "none"})
        provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
        return provider
    before = os.environ.get("OTEL_SDK_DISABLED")
    os.environ["OTEL_SDK_DISABLED"] = "true"  # the SDK reads it when the provider is made
    try:
        return create_tracer_provider(SERVICE, env={"OTEL_SDK_DISABLED": "true"})
    finally:
        if before is None:
            del os.environ["OTEL_SDK_DISABLED"]
        else:
            os.environ["OTEL_SDK_DISABLED"] = before


async def real_consume(
    db: Database, prefix: str, count: int, tracing: bool, profile: bool, dump_to: str | None
) -> tuple[float, TimedHandler, int]:
    """Run progress's StatusConsumer until status_report has `count` rows; return events/s,
    the timings and the transitions the relay produced."""
    dsn = db.dsn
    service = build_progress(db.url, prefix, tracer_provider(tracing))
    await service.producer.start()  # dead letters and the relay send with it
    stop = service.background.stop
    service.background.spawn("progress-outbox", service.relay.run(stop))
    group = f"{prefix}{SERVICE}.status.{db.name}"
    keeper = OffsetKeeper(OffsetStore(ConsumerOffset, service.sessions, service.clock), group)
    consumer = make_consumer(KAFKA, group, prefix + topics.STATUS, client_id=SERVICE, keeper=keeper)
    sql = SqlStats(service.engine) if profile else None
    await consumer.start()
    settle_heap()  # as `duban-progress worker` does once started (and frees below)
    timed = TimedHandler(service.status_consumer.handle_batch)
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    task = asyncio.create_task(
        run_batch_consumer(
            consumer,
            timed,
            stop,
            name="status",
            dead_letters=service.status_consumer.dead_letters,
            offsets=keeper,
        )
    )
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
        note(f"tracing {'on' if tracing else 'off'}: {meter.report()}")
        elapsed = timed.last_commit - timed.first
        label = "consumer" if tracing else "consumer_untraced"
        CPU_US_PER_EVENT[label] = 1e6 * (timed.cpu_last - timed.cpu_first) / count
        # Let the relay finish the transitions the reports caused, then count them.
        await wait_until_relayed(dsn)
        transitions = await scalar(dsn, "SELECT count(*) FROM outbox")
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
    """Seed, produce, consume with each consumer, print the figures."""
    tag = run_id()
    prefix = f"bench-consumer-{tag}."
    with (
        bench_databases(tag, "progress") as dbs,
        bench_databases(f"{tag}off", "progress") as dbs_off,
    ):
        db, db_off = dbs["progress"], dbs_off["progress"]
        async with bench_topics(prefix):
            points = []
            for database in (db, db_off):
                points = await seed_work_points(
                    database.url, args.work_points, bench_agencies(args.agencies), NOW
                )
            await create_anchor_tables(db.dsn, points)
            messages = make_events(args.events, points)
            topic = prefix + topics.STATUS
            seconds = await produce(topic, messages)
            del messages
            note(
                f"produced {args.events} events to {topic} "
                f"({partitions_of(topics.STATUS)} partitions) in {seconds:.1f} s; "
                f"{args.work_points} work points, {args.agencies} agencies"
            )
            raw = await raw_consume(topic, f"{prefix}bench.raw", args.events)
            note(f"raw getmany: {raw:.0f} events/s")
            anchor = await anchor_consume(
                db.dsn, topic, f"{prefix}bench.anchor", args.events, copy=False
            )
            note(f"anchor: {anchor:.0f} events/s")
            anchor_copy = await anchor_consume(
                db.dsn, topic, f"{prefix}bench.anchor-copy", args.events, copy=True
            )
            note(f"anchor with COPY: {anchor_copy:.0f} events/s")
            rss_before = peak_rss_mib()
            rate, timed, transitions = await real_consume(
                db, prefix, args.events, True, args.profile, args.profile_out
            )
            rss_after = peak_rss_mib()
            note(f"Duban, traced: {rate:.0f} events/s")
            dead = await topic_total(
                prefix + topics.PROGRESS_DLQ, partitions_of(topics.PROGRESS_DLQ)
            )
            stored = await scalar(db.dsn, "SELECT count(*) FROM status_report")
            note(
                f"StatusConsumer: {timed.records} records in {timed.batches} batches "
                f"(avg {timed.records / max(timed.batches, 1):.0f}/batch), "
                f"{timed.last_commit - timed.first:.2f} s; status_report rows {stored}; "
                f"dead-lettered {dead}; stall transitions queued and relayed {transitions}"
            )
            untraced, _, transitions_off = await real_consume(
                db_off, prefix, args.events, False, False, None
            )
            if transitions_off != transitions:
                raise SystemExit(
                    f"bench: {transitions} transitions traced, {transitions_off} untraced"
                )
            note(f"per event: {1000.0 / rate:.3f} ms Duban vs {1000.0 / anchor:.3f} ms anchor")
    result("consumer_events_per_s", rate, "events/s", 0)
    result("anchor_events_per_s", anchor, "events/s", 0)
    result("anchor_copy_events_per_s", anchor_copy, "events/s", 0)
    result("raw_getmany_events_per_s", raw, "events/s", 0)
    result("consumer_to_anchor_ratio", rate / anchor, "ratio", 3)
    result("consumer_to_anchor_copy_ratio", rate / anchor_copy, "ratio", 3)
    result("consumer_untraced_events_per_s", untraced, "events/s", 0)
    result("consumer_tracing_ratio", rate / untraced, "ratio", 3)
    result("consumer_to_raw_ratio", rate / raw, "ratio", 4)
    for label, micros in CPU_US_PER_EVENT.items():
        result(f"{label}_cpu_us_per_event", micros, "us", 1)
    cpu = CPU_US_PER_EVENT
    result("consumer_to_anchor_cpu_ratio", cpu["anchor"] / cpu["consumer"], "ratio", 3)
    result("consumer_to_anchor_copy_cpu_ratio", cpu["anchor_copy"] / cpu["consumer"], "ratio", 3)
    result("consumer_tracing_cpu_ratio", cpu["consumer_untraced"] / cpu["consumer"], "ratio", 3)
    result("peak_rss_before_duban_mib", rss_before, "MiB", 0)
    result("peak_rss_mib", rss_after, "MiB", 0)
    verdict(
        "consumer_to_anchor_ratio",
        rate / anchor,
        f">= {TARGET_ANCHOR_RATIO}",
        rate / anchor >= TARGET_ANCHOR_RATIO,
    )
    verdict(
        "consumer_tracing_ratio",
        rate / untraced,
        f">= {TARGET_TRACING_RATIO}",
        rate / untraced >= TARGET_TRACING_RATIO,
    )


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
