"""Benchmark: does the status consumer scale with worker processes, and what does a report cost
in storage? (the figures behind docs/capacity.md)

1. Seeds progress's read model with tracked work points (as bench/consumer.py), raises the
   status topic to --partitions partitions, and produces N status events to it.
2. For each worker count in --workers (1,2): a fresh database and topics, then that many worker
   processes, each a progress service as `duban-progress worker` runs it (its consumers, the
   outbox relay; the sweeper off and the clock fixed as in bench/consumer.py), in one consumer
   group. Timed from the first stored report to the last; CPU of each worker process.
3. On the last run's database: bytes per row of the tables that grow with reports
   (status_report, inbox, stall_transition, outbox, ingested_event is not written here),
   from pg_total_relation_size (heap, indexes, TOAST) over the row count.

Run: .venv/bin/python bench/workers.py [--events 20000] [--partitions 12] [--workers 1,2] [--quick]
Prints workers_<n>_events_per_s, workers_scaling_2_over_1, bytes_per_<table>_row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import psycopg
from _common import (
    KAFKA,
    ROOT,
    bench_databases,
    bench_topics,
    note,
    print_environment,
    result,
    run,
    run_id,
    setup,
    tree_cpu_seconds,
)
from _progress import NOW, bench_agencies, build_progress, seed_work_points
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from consumer import make_events, produce, wait_until_relayed
from duban_shared import topics

GROWING_TABLES = ("status_report", "inbox", "stall_transition", "outbox")


async def worker_main(database_url: str, prefix: str) -> None:
    """One worker process: progress's background work until SIGTERM."""
    import signal

    service = build_progress(database_url, prefix)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.close()


async def raise_partitions(topic: str, partitions: int) -> None:
    """Give the status topic more partitions (as `kafka-topics.sh --alter` does)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA, client_id="duban-bench")
    await admin.start()
    try:
        await admin.create_partitions({topic: NewPartitions(total_count=partitions)})
    finally:
        await admin.close()


async def count_rows(dsn: str) -> int:
    """Reports stored so far."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        row = await (await conn.execute("SELECT count(*) FROM status_report")).fetchone()
    return int(row[0]) if row else 0


async def one_run(args: argparse.Namespace, workers: int) -> tuple[float, list[float], str]:
    """Consume N events with `workers` processes; events/s, CPU seconds per worker, and the
    database's dsn is gone afterwards, so the table sizes are measured here (returned as a
    note)."""
    tag = run_id()
    prefix = f"bench-workers-{tag}."
    sizes = ""
    with bench_databases(tag, "progress") as dbs:
        db = dbs["progress"]
        async with bench_topics(prefix):
            topic = prefix + topics.STATUS
            await raise_partitions(topic, args.partitions)
            points = await seed_work_points(
                db.url, args.work_points, bench_agencies(args.agencies), NOW
            )
            seconds = await produce(topic, make_events(args.events, points))
            note(f"{workers} worker(s): produced {args.events} events in {seconds:.1f} s")
            env = {**os.environ, "PYTHONPATH": str(ROOT / "bench")}
            processes = [
                subprocess.Popen(  # noqa: ASYNC220 - our own module, started once
                    [sys.executable, __file__, "--child", db.url, prefix],
                    env=env,
                    cwd=ROOT,
                    start_new_session=True,
                )
                for _ in range(workers)
            ]
            try:
                first_at, first_rows, stored = 0.0, 0, 0
                deadline = time.monotonic() + 600
                while stored < args.events:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                        raise SystemExit(f"bench: stuck or a worker died at {stored} reports")
                    await asyncio.sleep(0.1)
                    stored = await count_rows(db.dsn)
                    if stored and not first_at:
                        first_at, first_rows = time.perf_counter(), stored
                elapsed = time.perf_counter() - first_at
                cpu = [tree_cpu_seconds(p.pid) for p in processes]
                await wait_until_relayed(db.dsn)
                sizes = await table_sizes(db.dsn)
            finally:
                for p in processes:
                    p.terminate()
                for p in processes:
                    try:
                        p.wait(30)
                    except subprocess.TimeoutExpired:
                        p.kill()
    rate = (args.events - first_rows) / elapsed
    note(sizes)
    return rate, cpu, sizes


async def table_sizes(dsn: str) -> str:
    """Bytes per row of the growing tables (heap, indexes and TOAST over rows); printed."""
    lines = []
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("VACUUM ANALYZE")
        for table in GROWING_TABLES:
            cur = await conn.execute(
                f"SELECT pg_total_relation_size('{table}'), count(*) FROM {table}"
            )
            row = await cur.fetchone()
            size, rows = (int(row[0]), int(row[1])) if row else (0, 0)
            if rows:
                result(f"bytes_per_{table}_row", size / rows, "bytes", 0)
            lines.append(f"{table}: {rows} rows, {size} bytes")
    return "; ".join(lines)


async def main(args: argparse.Namespace) -> None:
    """Each worker count in turn, then the scaling figure."""
    rates = {}
    for workers in args.workers:
        rate, cpu, _ = await one_run(args, workers)
        rates[workers] = rate
        note(f"{workers} worker(s): CPU seconds per worker {[round(c, 1) for c in cpu]}")
        result(f"workers_{workers}_events_per_s", rate, "events/s", 0)
    if 1 in rates and 2 in rates:
        result("workers_scaling_2_over_1", rates[2] / rates[1], "ratio", 2)


def parse_args() -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="status events (20000)")
    parser.add_argument("--work-points", type=int, default=5000, help="tracked (5000)")
    parser.add_argument("--agencies", type=int, default=52, help="agencies (52)")
    parser.add_argument("--partitions", type=int, default=12, help="status partitions (12)")
    parser.add_argument(
        "--workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2],
        help="worker counts to run, e.g. 1,2 (1,2)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 4,000 events")
    args = parser.parse_args()
    if args.quick:
        args.events = min(args.events, 4000)
    return args


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        asyncio.run(worker_main(sys.argv[2], sys.argv[3]))
        sys.exit(0)
    setup()
    options = parse_args()
    print_environment("workers", vars(options))
    run(lambda: main(options))
