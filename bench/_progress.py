"""Progress-specific helpers of the benchmarks: a progress service wired by its own build(), and
a read model seeded with SQLAlchemy Core inserts that name only the columns they need (every
other column gets its model default, so columns added later do not break the seeding).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from _common import KAFKA, ROOT, note, quiet_tracer_provider
from duban_shared.clock import Clock, ManualClock
from duban_shared.db import create_engine
from progress.main import build
from progress.service import SERVICE, ProgressService
from progress.settings import ProgressSettings
from progress.store.models import WorkPointState, WorkPointView
from sqlalchemy import Table, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

NOW = datetime(2025, 6, 16, 2, 0, tzinfo=UTC)
"""The benchmarks' fixed 'now': Monday 16 June 2025, 10:00 in Zhaoqing (a working day of a year
the installed calendar knows, so the figures do not depend on the day they are taken)."""

PLAN_STARTS_ON = date(2025, 1, 1)
PLAN_DUE_ON = date(2025, 12, 31)

VIEW = cast(Table, WorkPointView.__table__)  # type: ignore[attr-defined]
STATE = cast(Table, WorkPointState.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Agency:
    """A responsible agency of the benchmark's plan."""

    agency_id: uuid.UUID
    name: str


@dataclass(frozen=True)
class WorkPoint:
    """A seeded work point: its id and its lead and co-responsible agency."""

    work_point_id: str
    lead: Agency
    co: Agency


def bench_agencies(count: int) -> list[Agency]:
    """`count` agencies with stable ids."""
    return [
        Agency(uuid.uuid5(uuid.NAMESPACE_URL, f"duban-bench-agency-{i}"), f"基准测试局{i:02d}")
        for i in range(count)
    ]


def work_point_id(index: int) -> str:
    """A valid work point id for index 0, 1, 2, ... (plans of 9,999 work points each)."""
    return f"bench-{index // 9999:04d}/{index % 9999 + 1}"


def responsibilities(lead: Agency, co: Agency) -> list[dict[str, str]]:
    """The read model's JSON of a work point's responsible agencies."""
    return [
        {"agency_id": str(lead.agency_id), "name": lead.name, "role": "lead"},
        {"agency_id": str(co.agency_id), "name": co.name, "role": "co"},
    ]


def view_row(index: int, lead: Agency, co: Agency, snapshot_at: datetime) -> dict[str, Any]:
    """A work_point_view row: only the columns a registry snapshot always fills, plus the plan's
    start and due day where the read model has them (a whole-year plan)."""
    row: dict[str, Any] = {
        "id": work_point_id(index),
        "plan_slug": work_point_id(index).split("/")[0],
        "number": index % 9999 + 1,
        "title": f"基准工作要点{index}",
        "responsibilities": responsibilities(lead, co),
        "report_every_working_days": 10,
        "grace_working_days": 3,
        "snapshot_at": snapshot_at,
    }
    optional = {
        "starts_on": PLAN_STARTS_ON,
        "due_on": PLAN_DUE_ON,
        "code": str(index % 9999 + 1),
    }
    row.update({k: v for k, v in optional.items() if k in VIEW.c})
    return row


async def seed_work_points(
    database_url: str, count: int, agencies: Sequence[Agency], now: datetime
) -> list[WorkPoint]:
    """Insert `count` tracked work points (view and state rows), as if the registry had
    published them a month ago; return them with their agencies."""
    points, views, states = [], [], []
    for i in range(count):
        lead = agencies[i % len(agencies)]
        co = agencies[(i * 7 + 3) % len(agencies)]
        if co == lead:
            co = agencies[(i + 1) % len(agencies)]
        points.append(WorkPoint(work_point_id(i), lead, co))
        views.append(view_row(i, lead, co, now.replace(day=1)))
        states.append(
            {
                "work_point_id": work_point_id(i),
                "tracking_since": now.replace(day=1),
                "next_check_at": now.replace(day=28),
            }
        )
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for start in range(0, count, 5000):
                await conn.execute(insert(VIEW), views[start : start + 5000])
                await conn.execute(insert(STATE), states[start : start + 5000])
    finally:
        await engine.dispose()
    return points


def build_progress(
    database_url: str, topic_prefix: str, clock: Clock | None = None, **settings: Any
) -> ProgressService:
    """The progress service as progress.main.build() wires it (sweeper timer off: benchmarks
    call it), on the benchmark's database and topics, with a fixed clock by default."""
    return build(
        ProgressSettings(
            database_url=database_url,
            kafka_bootstrap_servers=KAFKA,
            topic_prefix=topic_prefix,
            run_sweeper=False,
            environment="test",
            **settings,
        ),
        clock=clock or ManualClock(NOW),
        tracer_provider=quiet_tracer_provider(SERVICE),
    )


class SqlStats:
    """Counts and times every SQL statement an engine runs (SQLAlchemy cursor events, attached
    from outside: the service is not changed). Time is the caller's wall time per statement, so
    it includes other coroutines that ran while it waited."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.stats: dict[str, list[float]] = {}  # statement -> [count, seconds, rows]
        self._engine = engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._before)
        event.listen(self._engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cursor: Any, *_args: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(
        self, conn: Any, cursor: Any, statement: str, _params: Any, _ctx: Any, many: bool
    ) -> None:
        elapsed = time.perf_counter() - conn.info["bench_started"].pop()
        key = ("executemany " if many else "") + " ".join(statement.split())[:110]
        entry = self.stats.setdefault(key, [0, 0.0, 0])
        entry[0] += 1
        entry[1] += elapsed
        entry[2] += max(cursor.rowcount, 0)

    def print(self, title: str, per: int, unit: str, limit: int = 15) -> None:
        """Print the statements by total time, with counts per `unit` (e.g. per event)."""
        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)
        count = sum(int(v[0]) for v in self.stats.values())
        seconds = sum(v[1] for v in self.stats.values())
        note(
            f"sql {title}: {count} statements ({count / max(per, 1):.2f} per {unit}), "
            f"{seconds:.2f} s waited in all"
        )
        ranked = sorted(self.stats.items(), key=lambda kv: -kv[1][1])[:limit]
        for statement, (n, secs, rows) in ranked:
            note(
                f"  {n:7.0f} x {1000 * secs / max(n, 1):6.2f} ms = {secs:6.2f} s  "
                f"rows {rows:7.0f}  {statement}"
            )


def print_profile(
    profiler: cProfile.Profile, title: str, dump_to: str | None = None, limit: int = 25
) -> None:
    """Print a cProfile summary as comment lines: the top functions by own time, and the
    project's own functions (services/, shared/) by cumulative time; save the stats if asked."""
    if dump_to:
        profiler.dump_stats(dump_to)
        note(f"profile saved to {dump_to} (python -m pstats {dump_to})")
    for sort, restriction, what in (
        ("tottime", r".", "own time (tottime)"),
        ("cumulative", r"/(services|shared)/", "cumulative time, project code only"),
    ):
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats(sort).print_stats(restriction, limit)
        note(f"profile {title}: top {limit} by {what}")
        keep = False
        for line in buffer.getvalue().splitlines():
            if line.strip().startswith("ncalls"):
                keep = True
            if keep and line.strip():
                note("  " + _short_paths(line.rstrip()))


def _short_paths(line: str) -> str:
    """Paths relative to the repository, or to site-packages, to keep profile lines short."""
    line = line.replace(str(ROOT) + "/", "")
    return re.sub(r"\S*/site-packages/", "", line)
