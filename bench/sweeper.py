"""Benchmark: the sweeper's cost follows the due rows, not the tracked rows.

For each size (1,000,000 and 100,000 tracked work points, 10,000 of them due):
1. A fresh progress database (progress's migrations) gets the rows in work_point_view and
   work_point_state in one server-side INSERT ... SELECT FROM generate_series per table
   (SQLAlchemy Core, naming only the columns needed; the model's defaults fill the rest), then
   VACUUM ANALYZE. Due rows are spread evenly over the table: their `next_check_at` has passed
   and their lead agency was last heard 21 days (14 working days) ago, one more than the 10 + 3
   allowed: each just became silent, so judging it opens a (red, silent) stall. The others are
   checked again in 1 to 20 days.
2. Progress's own Sweeper and OutboxRelay (from progress.main.build) run: sweep_once() judges
   the due rows batch by batch while the relay publishes the transitions; the clock stops when
   the stalls topic holds all 10,000 (counted by its end offsets).

Prints sweeper_due_10k_of_1m_s, sweeper_due_10k_of_100k_s and their ratio (1.0 = the total does
not matter; the 100k run is the 1M run's anchor), how the time splits between judging
(sweep_once) and relaying, the CPU seconds this process spent on both (what the wall time would
be on an idle core: on a busy machine the wall time also counts waiting for one), and the
process's peak RSS. Goal: at most 2 s for 10k due among 1M.

Run: .venv/bin/python bench/sweeper.py [--rows 1000000] [--small-rows 100000] [--due 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from _common import (
    KAFKA,
    CpuMeter,
    LoopLag,
    bench_databases,
    bench_topics,
    note,
    partitions_of,
    print_environment,
    process_cpu_seconds,
    report_peak_rss,
    result,
    run,
    run_id,
    setup,
    verdict,
)
from _progress import (
    NOW,
    PLAN_DUE_ON,
    PLAN_STARTS_ON,
    STATE,
    VIEW,
    SqlStats,
    bench_agencies,
    build_progress,
    print_profile,
)
from aiokafka import AIOKafkaConsumer, TopicPartition
from duban_shared import topics
from duban_shared.app import settle_heap
from duban_shared.db import create_engine
from duban_shared.kafka import make_producer
from sqlalchemy import insert, literal_column, select, text
from sqlalchemy.sql.elements import ColumnElement

TARGET_SECONDS = 2.0
TS = f"'{NOW.isoformat()}'::timestamptz"


def _sql(expression: str, label: str) -> ColumnElement[Any]:
    return literal_column(expression).label(label)


def view_select(rows: int) -> tuple[list[str], Any]:
    """The SELECT producing `rows` work_point_view rows (id scheme of _progress.work_point_id),
    each with a lead and a co-responsible agency among 52."""
    agencies = bench_agencies(52)
    ids = "ARRAY[" + ",".join(f"'{a.agency_id}'" for a in agencies) + "]"
    names = "ARRAY[" + ",".join(f"'{a.name}'" for a in agencies) + "]"
    lead, co = "(i % 52) + 1", "((i * 7 + 3) % 52) + 1"
    responsibilities = (
        f"json_build_array("
        f"json_build_object('agency_id', ({ids})[{lead}], 'name', ({names})[{lead}], "
        f"'role', 'lead'),"
        f"json_build_object('agency_id', ({ids})[{co}], 'name', ({names})[{co}], 'role', 'co'))"
    )
    columns = [
        _sql("'bench-' || lpad((i / 9999)::text, 4, '0') || '/' || (i % 9999 + 1)::text", "id"),
        _sql("'bench-' || lpad((i / 9999)::text, 4, '0')", "plan_slug"),
        _sql("i % 9999 + 1", "number"),
        _sql("'基准工作要点' || i::text", "title"),
        _sql(responsibilities, "responsibilities"),
        _sql("10", "report_every_working_days"),
        _sql("3", "grace_working_days"),
        _sql(f"{TS} - interval '120 days'", "snapshot_at"),
    ]
    if "code" in VIEW.c:
        columns.append(_sql("(i % 9999 + 1)::text", "code"))
    if "starts_on" in VIEW.c and "due_on" in VIEW.c:
        columns.append(_sql(f"'{PLAN_STARTS_ON.isoformat()}'::date", "starts_on"))
        columns.append(_sql(f"'{PLAN_DUE_ON.isoformat()}'::date", "due_on"))
    return _from_series(columns, rows)


def state_select(rows: int, due: int) -> tuple[list[str], Any]:
    """The SELECT producing the work_point_state rows: every (rows // due)-th one due."""
    step = rows // due
    is_due = f"(i % {step} = 0 AND i / {step} < {due})"
    columns = [
        _sql("'bench-' || lpad((i / 9999)::text, 4, '0') || '/' || (i % 9999 + 1)::text", "wp"),
        _sql(f"{TS} - interval '120 days'", "tracking_since"),
        _sql(
            f"CASE WHEN {is_due} THEN {TS} - interval '21 days' ELSE {TS} - interval '3 days' END",
            "last_lead_report_at",
        ),
        _sql(
            f"CASE WHEN {is_due} THEN {TS} - interval '1 hour' - (i % 60) * interval '1 minute' "
            f"ELSE {TS} + interval '1 day' + (i % 20) * interval '1 day' END",
            "next_check_at",
        ),
    ]
    names, query = _from_series(columns, rows)
    return ["work_point_id", *names[1:]], query


def _from_series(columns: list[ColumnElement[Any]], rows: int) -> tuple[list[str], Any]:
    series = text(f"generate_series(0, {rows - 1}) AS g(i)")
    return [str(c.key) for c in columns], select(*columns).select_from(series)


async def load(database_url: str, dsn: str, rows: int, due: int) -> float:
    """Fill the tables; return the seconds it took (VACUUM ANALYZE included)."""
    started = time.perf_counter()
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for table, (names, query) in (
                (VIEW, view_select(rows)),
                (STATE, state_select(rows, due)),
            ):
                await conn.execute(insert(table).from_select(names, query, include_defaults=True))
    finally:
        await engine.dispose()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("VACUUM ANALYZE work_point_view")
        await conn.execute("VACUUM ANALYZE work_point_state")
    return time.perf_counter() - started


async def count_due(dsn: str) -> int:
    """Rows whose next check has passed at the benchmark's 'now'."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM work_point_state WHERE next_check_at <= %s", (NOW,)
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


@dataclass
class Timing:
    """How one sweep went."""

    total: float  # sweep start -> all transitions on the topic
    sweep: float  # sweep_once() alone
    transitions: int  # what sweep_once() returned
    produced: int  # what reached the topic
    produced_during_sweep: int  # what the relay had published when sweep_once() returned
    cpu: str
    loop_lag: str  # how long the event loop was blocked during sweep_once()
    cpu_seconds: float  # this process's CPU (sweep and relay) from start to the last message


async def sweep_and_relay(
    database_url: str, prefix: str, due: int, profile: cProfile.Profile | None
) -> Timing:
    """Run progress's Sweeper once with its OutboxRelay running; time until the stalls topic
    has `due` new messages."""
    stalls = prefix + topics.STALLS
    partitions = [TopicPartition(stalls, p) for p in range(partitions_of(topics.STALLS))]
    offsets = AIOKafkaConsumer(bootstrap_servers=KAFKA, client_id="duban-bench-offsets")
    await offsets.start()
    service = build_progress(database_url, prefix)
    sql = SqlStats(service.engine) if profile else None
    await service.producer.start()
    try:
        baseline = sum((await offsets.end_offsets(partitions)).values())
        service.background.spawn("progress-outbox", service.relay.run(service.background.stop))
        settle_heap()  # as `duban-progress worker` does once started (and frees below)
        meter = CpuMeter()
        meter.start()
        if profile:
            profile.enable()
        lag = LoopLag()
        lag.start()
        cpu_before = process_cpu_seconds(os.getpid())
        started = time.perf_counter()
        transitions = await service.sweeper.sweep_once()
        swept = time.perf_counter() - started
        loop_lag = await lag.stop()
        during = sum((await offsets.end_offsets(partitions)).values()) - baseline
        deadline = time.monotonic() + 600
        produced = 0
        while produced < due and time.monotonic() < deadline:
            produced = sum((await offsets.end_offsets(partitions)).values()) - baseline
            if produced < due:
                await asyncio.sleep(0.02)
        total = time.perf_counter() - started
        cpu_seconds = process_cpu_seconds(os.getpid()) - cpu_before
        if profile:
            profile.disable()
        cpu = meter.report()
    finally:
        await service.close()
        await offsets.stop()
        gc.unfreeze()
    if produced < due:
        raise SystemExit(f"bench: only {produced} of {due} transitions reached {stalls}")
    if sql is not None:
        sql.print("sweep + relay", due, "due row")
    return Timing(total, swept, transitions, produced, during, cpu, loop_lag, cpu_seconds)


async def calibrate_producer(topic: str, messages: int = 500) -> str:
    """What one message costs with the services' producer (make_producer: acks=all, idempotent,
    linger_ms=2): sent one at a time with send_and_wait (as OutboxRelay does), and all at once."""
    producer = make_producer(KAFKA, client_id="duban-bench-calibration")
    await producer.start()
    try:
        payload = b"x" * 700  # about the size of a stall transition
        started = time.perf_counter()
        for i in range(messages):
            await producer.send_and_wait(topic, value=payload, key=str(i).encode())
        one_by_one = (time.perf_counter() - started) / messages
        started = time.perf_counter()
        sent = [
            await producer.send(topic, value=payload, key=str(i).encode()) for i in range(messages)
        ]
        await asyncio.gather(*sent)
        together = (time.perf_counter() - started) / messages
    finally:
        await producer.stop()
    return (
        f"producer calibration ({messages} messages, make_producer): send_and_wait one at a time "
        f"{1000 * one_by_one:.2f} ms/message ({1 / one_by_one:.0f}/s); sent together "
        f"{1000 * together:.3f} ms/message ({1 / together:.0f}/s)"
    )


async def scenario(
    rows: int, due: int, prefix: str, tag: str, profile: cProfile.Profile | None
) -> Timing:
    """Load `rows` tracked work points (`due` of them due) in a fresh database and sweep."""
    with bench_databases(f"{tag}_{rows}", "progress") as dbs:
        db = dbs["progress"]
        seconds = await load(db.url, db.dsn, rows, due)
        found_due = await count_due(db.dsn)
        note(f"loaded {rows:,} tracked work points ({found_due:,} due) in {seconds:.1f} s")
        if found_due != due:
            raise SystemExit(f"bench: {found_due} rows due, expected {due}")
        timing = await sweep_and_relay(db.url, prefix, due, profile)
    note(
        f"{rows:,} tracked: sweep_once {timing.sweep:.2f} s ({timing.transitions:,} transitions "
        f"queued), all {timing.produced:,} on the topic after {timing.total:.2f} s "
        f"(relay tail {timing.total - timing.sweep:.2f} s)"
    )
    tail = timing.total - timing.sweep
    note(
        f"{rows:,} tracked: relay published {timing.produced_during_sweep:,} while sweep_once "
        f"ran, the other {timing.produced - timing.produced_during_sweep:,} in the tail "
        f"({(timing.produced - timing.produced_during_sweep) / max(tail, 1e-9):.0f} messages/s; "
        f"{timing.produced / timing.total:.0f}/s overall)"
    )
    note(f"{rows:,} tracked: {timing.cpu}; sweep and relay used {timing.cpu_seconds:.2f} CPU s")
    note(f"{rows:,} tracked: event loop blocked during sweep_once: {timing.loop_lag}")
    return timing


def label(rows: int) -> str:
    """1000000 -> 1m, 100000 -> 100k."""
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


async def main(args: argparse.Namespace) -> None:
    """Both sizes on the same topics, one database each; print the figures."""
    tag = run_id()
    prefix = f"bench-sweeper-{tag}."
    profile = cProfile.Profile() if args.profile else None
    async with bench_topics(prefix):
        big = await scenario(args.rows, args.due, prefix, tag, profile)
        small = await scenario(args.small_rows, args.due, prefix, tag, None)
        note(await calibrate_producer(prefix + topics.PROGRESS_DLQ))
    if profile:
        print_profile(profile, f"sweep + relay, {args.rows:,} tracked (profiled run)")
    due = label(args.due)
    big_name = f"sweeper_due_{due}_of_{label(args.rows)}_s"
    small_name = f"sweeper_due_{due}_of_{label(args.small_rows)}_s"
    result(big_name, big.total, "s", 2)
    result(small_name, small.total, "s", 2)
    ratio = big.total / small.total
    result(f"sweeper_{label(args.rows)}_to_{label(args.small_rows)}_ratio", ratio, "ratio", 2)
    result(f"sweeper_sweep_once_{label(args.rows)}_s", big.sweep, "s", 2)
    result(f"sweeper_sweep_once_{label(args.small_rows)}_s", small.sweep, "s", 2)
    # CPU seconds of the sweep and the relay: what the figures above would be on an idle core
    # (the wall times also count waiting for a core on a busy machine)
    result(f"sweeper_cpu_{label(args.rows)}_s", big.cpu_seconds, "s", 2)
    result(f"sweeper_cpu_{label(args.small_rows)}_s", small.cpu_seconds, "s", 2)
    report_peak_rss("sweeper", {})
    verdict(big_name, big.total, f"<= {TARGET_SECONDS:.0f} s", big.total <= TARGET_SECONDS)
    verdict(
        "the time follows the due rows (ratio)",
        ratio,
        "about 1 (at most 1.5)",
        ratio <= 1.5,
    )


def parse_args() -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="tracked (1000000)")
    parser.add_argument("--small-rows", type=int, default=100_000, help="tracked (100000)")
    parser.add_argument("--due", type=int, default=10_000, help="due among them (10000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100k/10k, 1000 due")
    parser.add_argument("--profile", action="store_true", help="cProfile the large sweep")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.small_rows, args.due = 100_000, 10_000, 1000
    if args.rows % args.due or args.small_rows % args.due:
        parser.error("--rows and --small-rows must be multiples of --due")
    return args


if __name__ == "__main__":
    setup()
    options = parse_args()
    print_environment("sweeper", vars(options))
    run(lambda: main(options))
