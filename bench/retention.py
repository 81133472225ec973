"""Benchmark: table sizes before and after retention prunes a simulated year.

1. Fresh progress and notifier databases (their own migrations) get a year (2024) of the rows
   that only grow, spread evenly over the year, in one server-side INSERT ... SELECT FROM
   generate_series per table (SQLAlchemy Core; the models' defaults fill the rest):
   progress's inbox, outbox (published, a stall transition's ~600 bytes each) and ingested
   events, `--reports-per-day` of each; the notifier's inbox (`--transitions-per-day`), its
   notification log (two deliveries per transition, all sent, of resolved alerts) and
   acknowledgement links (one per transition). Then VACUUM ANALYZE.
2. Each service's own pruner (store.retention.pruner with the default retention settings:
   inbox 14 days, outbox 7, ingested events 30, notification log 400, links 30 days after
   they expired) runs at 31 December 2024, batch by batch (DUBAN_*_RETENTION_BATCH_SIZE,
   1,000), without pauses; each batch's duration is timed (a hot path waits at most that long
   for a row lock pruning holds: none, it skips locked rows; and it shares the server).
3. Rows and bytes (pg_total_relation_size: table, indexes, TOAST) of every table: before,
   after pruning plus VACUUM ANALYZE (what the routine leaves: the freed space is reused by
   new rows, so the files stop growing), and after VACUUM FULL (the bench only: what the kept
   rows take).

Prints `retention_<service>_<table>_{rows,mb}_{before,after}` figures and the batch times.

Run: .venv/bin/python bench/retention.py [--reports-per-day 5000] [--transitions-per-day 500]
     [--quick]
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from _common import (
    Database,
    bench_databases,
    note,
    percentile,
    print_environment,
    quiet_tracer_provider,
    result,
    run,
    run_id,
    setup,
)
from duban_shared.clock import ManualClock
from duban_shared.db import create_engine, session_factory
from duban_shared.retention import Pruner
from notifier.settings import NotifierSettings
from notifier.store import models as nm
from notifier.store import retention as notifier_retention
from progress.settings import ProgressSettings
from progress.store import models as pm
from progress.store import retention as progress_retention
from sqlalchemy import insert, literal_column, select, text
from sqlalchemy.sql.elements import ColumnElement

YEAR = 2024
DAYS = 366
START = datetime(YEAR, 1, 1, tzinfo=UTC)
NOW = datetime(YEAR, 12, 31, 18, tzinfo=UTC)
PAYLOAD_BYTES = 600  # a stall transition's JSON, about


def _sql(expression: str, label: str) -> ColumnElement[Any]:
    return literal_column(expression).label(label)


def _moment(per_day: int) -> str:
    """Row i's moment: per_day rows a day, evenly over the year."""
    return f"'{START.isoformat()}'::timestamptz + (i * interval '1 day' / {per_day})"


TRACEPARENT = "'00-' || md5(i::text) || '-' || left(md5(i::text), 16) || '-01'"


def _inbox_columns(topic: str, at: str) -> list[ColumnElement[Any]]:
    return [
        _sql("gen_random_uuid()", "event_id"),
        _sql(f"'{topic}'", "topic"),
        _sql(at, "processed_at"),
    ]


def _series(rows: int) -> Any:
    return text(f"generate_series(0, {rows - 1}) AS g(i)")


async def _fill(url: str, tables: list[tuple[Any, list[ColumnElement[Any]], int]]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for table, columns, rows in tables:
                query = select(*columns).select_from(_series(rows))
                names = [str(c.key) for c in columns]
                await conn.execute(insert(table).from_select(names, query, include_defaults=True))
    finally:
        await engine.dispose()


async def fill_progress(url: str, per_day: int) -> None:
    """A year of progress's inbox, published outbox rows and ingested events."""
    rows, at = per_day * DAYS, _moment(per_day)
    uid = "gen_random_uuid()"
    await _fill(
        url,
        [
            (
                pm.Inbox.__table__,
                [
                    _sql(uid, "event_id"),
                    _sql("'duban.status.v1'", "topic"),
                    _sql(at, "processed_at"),
                ],
                rows,
            ),
            (
                pm.OutboxMessage.__table__,
                [
                    _sql("'duban.stalls.v1'", "topic"),
                    _sql("'plan-' || (i % 50)::text", "key"),
                    _sql(f"convert_to(repeat('x', {PAYLOAD_BYTES}), 'UTF8')", "payload"),
                    _sql(
                        "'00-' || md5(i::text) || '-' || left(md5(i::text), 16) || '-01'",
                        "traceparent",
                    ),
                    _sql(at, "created_at"),
                    _sql(at, "published_at"),
                ],
                rows,
            ),
            (
                pm.IngestedEvent.__table__,
                [
                    _sql(uid, "event_id"),
                    _sql(uid, "agency_id"),
                    _sql("md5(i::text) || md5((i + 1)::text)", "body_sha256"),
                    _sql("i % 6", "partition"),
                    _sql("i / 6", "offset"),
                    _sql(at, "accepted_at"),
                ],
                rows,
            ),
        ],
    )


async def fill_notifier(url: str, per_day: int) -> None:
    """A year of the notifier's inbox, deliveries (two per transition) and links."""
    engine = create_engine(url)
    alert = nm.Alert(
        episode_id=uuid.uuid4(),
        work_point_id="bench/1",
        number=1,
        code="2024-001",
        title="基准",
        level="red",
        lead_agencies=[],
        state="resolved",
        fired_at=START,
        updated_at=START,
    )
    async with session_factory(engine)() as session, session.begin():
        session.add(alert)
    await engine.dispose()
    rows, at = per_day * DAYS, _moment(per_day)
    uid = "gen_random_uuid()"
    deliveries, delivery_at = 2 * rows, _moment(2 * per_day)
    await _fill(
        url,
        [
            (
                nm.Inbox.__table__,
                [
                    _sql(uid, "event_id"),
                    _sql("'duban.stalls.v1'", "topic"),
                    _sql(at, "processed_at"),
                ],
                rows,
            ),
            (
                nm.NotificationLog.__table__,
                [
                    _sql(uid, "transition_event_id"),
                    _sql(uid, "episode_id"),
                    _sql(f"'{alert.id}'::uuid", "alert_id"),
                    _sql("'bench/' || (i % 50)::text", "work_point_id"),
                    _sql(uid, "agency_id"),
                    _sql("'email'", "channel"),
                    _sql("'lead' || (i % 52)::text || '@agency.example.org'", "recipient"),
                    _sql("'sent'", "status"),
                    _sql("1", "attempts"),
                    _sql(delivery_at, "created_at"),
                    _sql(delivery_at, "sent_at"),
                ],
                deliveries,
            ),
            (
                nm.AckCode.__table__,
                [
                    _sql("left(md5(i::text), 16)", "code"),
                    _sql(f"'{alert.id}'::uuid", "alert_id"),
                    _sql(uid, "agency_id"),
                    _sql(at, "created_at"),
                    _sql(f"{at} + interval '72 hours'", "expires_at"),
                ],
                rows,
            ),
        ],
    )


@dataclass(frozen=True)
class Size:
    rows: int
    bytes: int


async def sizes(dsn: str, tables: list[str]) -> dict[str, Size]:
    """Rows and pg_total_relation_size of each table."""
    found = {}
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        for table in tables:
            cur = await conn.execute(
                f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"
            )
            count, size = await cur.fetchone() or (0, 0)
            found[table] = Size(int(count), int(size))
    return found


async def vacuum(dsn: str, tables: list[str], *, full: bool = False) -> float:
    """VACUUM (FULL) ANALYZE the tables; the seconds it took."""
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for table in tables:
            await conn.execute(f"VACUUM {'FULL ' if full else ''}ANALYZE {table}")
    return time.perf_counter() - started


class TimedPruner:
    """Times each batch of a service's pruner (its delete statement and commit)."""

    def __init__(self, pruner: Pruner) -> None:
        self.pruner = pruner
        self.batches: list[float] = []
        original = pruner._delete_batch

        async def timed(target: Any, cutoff: datetime) -> int:
            started = time.perf_counter()
            try:
                return await original(target, cutoff)
            finally:
                self.batches.append(time.perf_counter() - started)

        pruner._delete_batch = timed  # type: ignore[method-assign]


async def scenario(
    service: str, db: Database, pruner: Pruner, tables: list[str]
) -> tuple[dict[str, Size], dict[str, Size], dict[str, Size]]:
    """Sizes before, after pruning (+ VACUUM ANALYZE) and after VACUUM FULL; prints figures."""
    await vacuum(db.dsn, tables)
    before = await sizes(db.dsn, tables)
    timed = TimedPruner(pruner)
    started = time.perf_counter()
    outcomes = await pruner.prune()
    took = time.perf_counter() - started
    vacuum_s = await vacuum(db.dsn, tables)
    after = await sizes(db.dsn, tables)
    await vacuum(db.dsn, tables, full=True)
    compact = await sizes(db.dsn, tables)
    for o in outcomes:
        note(f"{service}: {o.describe(dry_run=False)}")
    deleted = sum(o.rows for o in outcomes)
    result(f"retention_{service}_pruned_rows", deleted, "rows", 0)
    result(f"retention_{service}_prune_s", took, "s", 1)
    result(f"retention_{service}_prune_rows_per_s", deleted / took if took else 0, "rows/s", 0)
    result(f"retention_{service}_batch_p50_ms", 1000 * percentile(timed.batches, 50), "ms", 1)
    result(f"retention_{service}_batch_p99_ms", 1000 * percentile(timed.batches, 99), "ms", 1)
    result(f"retention_{service}_batch_max_ms", 1000 * max(timed.batches, default=0), "ms", 1)
    result(f"retention_{service}_vacuum_after_s", vacuum_s, "s", 1)
    note(f"{service}: table            rows before -> after      MB before -> after (VACUUM FULL)")
    for table in tables:
        b, a, c = before[table], after[table], compact[table]
        note(
            f"{service}: {table:<17}{b.rows:>11,} -> {a.rows:<11,}"
            f"{b.bytes / 2**20:>8.1f} -> {a.bytes / 2**20:.1f} ({c.bytes / 2**20:.1f})"
        )
        result(f"retention_{service}_{table}_rows_before", b.rows, "rows", 0)
        result(f"retention_{service}_{table}_rows_after", a.rows, "rows", 0)
        result(f"retention_{service}_{table}_mb_before", b.bytes / 2**20, "MiB", 1)
        result(f"retention_{service}_{table}_mb_after", a.bytes / 2**20, "MiB", 1)
        result(f"retention_{service}_{table}_mb_after_vacuum_full", c.bytes / 2**20, "MiB", 1)
    return before, after, compact


async def main(args: argparse.Namespace) -> None:
    """Fill, prune and measure both services' databases."""
    tracer = quiet_tracer_provider("duban-bench-retention").get_tracer("bench")
    clock = ManualClock(NOW)
    with bench_databases(run_id(), "progress", "notifier") as dbs:
        started = time.perf_counter()
        await fill_progress(dbs["progress"].url, args.reports_per_day)
        await fill_notifier(dbs["notifier"].url, args.transitions_per_day)
        note(f"filled a simulated year in {time.perf_counter() - started:.0f} s")
        progress_db, notifier_db = dbs["progress"], dbs["notifier"]
        engine = create_engine(progress_db.url)
        try:
            settings = ProgressSettings(database_url=progress_db.url, retention_pause_seconds=0)
            pruner = progress_retention.pruner(
                settings, session_factory(engine), tracer, clock, clock
            )
            await scenario("progress", progress_db, pruner, ["inbox", "outbox", "ingested_event"])
        finally:
            await engine.dispose()
        engine = create_engine(notifier_db.url)
        try:
            n_settings = NotifierSettings(database_url=notifier_db.url, retention_pause_seconds=0)
            pruner = notifier_retention.pruner(n_settings, session_factory(engine), tracer, clock)
            tables = ["inbox", "notification_log", "ack_code"]
            await scenario("notifier", notifier_db, pruner, tables)
        finally:
            await engine.dispose()


def parse_args() -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reports-per-day", type=int, default=5000, help="status reports a day (5000)"
    )
    parser.add_argument(
        "--transitions-per-day", type=int, default=500, help="stall transitions a day (500)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 and 50 a day")
    args = parser.parse_args()
    if args.quick:
        args.reports_per_day, args.transitions_per_day = 500, 50
    return args


if __name__ == "__main__":
    setup()
    options = parse_args()
    print_environment("retention", vars(options))
    run(lambda: main(options))
