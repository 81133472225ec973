"""Benchmark (long): does the progress worker's memory grow with the events it processes?

Seeds progress's read model (as bench/consumer.py), starts one worker process as bench/workers.py
does (progress's consumers and outbox relay, the clock fixed), and feeds it --events status
events (1,000,000) in chunks of --every (100,000), producing the next chunk while the worker
consumes the last. Each time another --every reports are stored, the worker's resident set
(VmRSS) is sampled. The first sample is the warm-up (caches, pools, the interpreter's arenas);
the slope over the later samples (least squares) is what the worker keeps per event processed.

Prints memory_worker_rss_first_mib, memory_worker_rss_last_mib,
memory_worker_rss_slope_mib_per_100k and the peak RSS of the worker and of this process.

Run: .venv/bin/python bench/memory.py [--events 1000000] [--every 100000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import timedelta

from _common import (
    KAFKA,
    ROOT,
    bench_databases,
    bench_topics,
    note,
    print_environment,
    report_peak_rss,
    result,
    rss_mib,
    run,
    run_id,
    setup,
    verdict,
)
from _progress import NOW, WorkPoint, bench_agencies, seed_work_points
from aiokafka import AIOKafkaProducer
from duban_shared import topics
from duban_shared.events import ReportStatus, StatusEvent
from workers import count_rows

TARGET_SLOPE_MIB_PER_100K = 2.0
"""Growth per 100k events below which the resident set counts as flat (noise of the
allocator's arenas and of the database driver's buffers)."""


Message = tuple[bytes, bytes, list[tuple[str, bytes]]]


async def produce(topic: str, messages: list[Message]) -> None:
    """Produce every message (acks=all, idempotent, batched), as an agency gateway would."""
    producer = AIOKafkaProducer(
        bootstrap_servers=KAFKA,
        client_id="duban-bench-memory",
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        pending = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in messages
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def chunk(points: list[WorkPoint], start: int, count: int, total: int) -> list[Message]:
    """Events start .. start+count of a run of `total`: in time order over the whole run (one
    second apart, ending at NOW), mostly on-track reports by the lead with a climbing percent."""
    rng = random.Random(start)
    first = NOW - timedelta(seconds=total)
    messages = []
    for i in range(start, start + count):
        point = points[i % len(points)]
        status = ReportStatus.BLOCKED if i % 97 == 0 else ReportStatus.ON_TRACK
        occurred = first + timedelta(seconds=i)
        event = StatusEvent(
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            occurred_at=occurred,
            work_point_id=point.work_point_id,
            agency_id=point.lead.agency_id,
            status=status,
            percent=min(99, 20 + (i // len(points)) % 80),
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


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 for fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


async def main(args: argparse.Namespace) -> None:
    """Seed, start the worker, feed and sample it, print the figures."""
    tag = run_id()
    prefix = f"bench-memory-{tag}."
    samples: list[tuple[int, float]] = []
    with bench_databases(tag, "progress") as dbs:
        db = dbs["progress"]
        async with bench_topics(prefix):
            topic = prefix + topics.STATUS
            points = await seed_work_points(db.url, args.work_points, bench_agencies(52), NOW)
            env = {**os.environ, "PYTHONPATH": str(ROOT / "bench")}
            worker = subprocess.Popen(  # noqa: ASYNC220 - our own module, started once
                [sys.executable, str(ROOT / "bench" / "workers.py"), "--child", db.url, prefix],
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
            try:
                produced = 0
                started = time.perf_counter()
                for target in range(args.every, args.events + 1, args.every):
                    while produced < min(target + args.every, args.events):
                        await produce(topic, chunk(points, produced, args.every, args.events))
                        produced += args.every
                    stored = 0
                    while stored < target:
                        if worker.poll() is not None:
                            raise SystemExit(f"bench: the worker exited at {stored} reports")
                        await asyncio.sleep(0.5)
                        stored = await count_rows(db.dsn)
                    samples.append((stored, rss_mib(worker.pid)))
                    note(
                        f"{stored:,} stored after {time.perf_counter() - started:.0f} s: "
                        f"worker RSS {samples[-1][1]:.1f} MiB"
                    )
                report_peak_rss("memory", {"progress_worker": worker.pid})
            finally:
                worker.terminate()
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
    later = samples[1:]
    per_100k = 100_000 * slope([float(n) for n, _ in later], [mib for _, mib in later])
    result("memory_worker_rss_first_mib", samples[0][1], "MiB")
    result("memory_worker_rss_last_mib", samples[-1][1], "MiB")
    result("memory_worker_rss_slope_mib_per_100k", per_100k, "MiB")
    verdict(
        "memory_worker_rss_slope_mib_per_100k",
        per_100k,
        f"< {TARGET_SLOPE_MIB_PER_100K:.0f} MiB per 100k events after the first sample",
        per_100k < TARGET_SLOPE_MIB_PER_100K,
    )


def parse_args() -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in all (1000000)")
    parser.add_argument("--every", type=int, default=100_000, help="events per sample (100000)")
    parser.add_argument("--work-points", type=int, default=5000, help="tracked (5000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30k events, every 10k")
    args = parser.parse_args()
    if args.quick:
        args.events, args.every = 30_000, 10_000
    if args.events % args.every:
        parser.error("--events must be a multiple of --every")
    return args


if __name__ == "__main__":
    setup()
    options = parse_args()
    print_environment("memory", vars(options))
    run(lambda: main(options))
