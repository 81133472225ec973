"""The sweeper's rows as plain data: claiming due work points and writing their verdicts.

No ORM objects on this path (SQLAlchemy Core only): a due row is claimed with its read model
and its blocked flag in one statement, and a batch's verdicts, timeline records and outbox rows
are written with one executemany statement per table. On PostgreSQL the claim locks the state
rows (FOR UPDATE OF work_point_state SKIP LOCKED), so sweepers side by side never share a row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from progress.store.models import EpisodeReading
from progress.store.rows import OUTBOX, PROGRESS, STATE, TRANSITION, VIEW

BLOCKED = "blocked"


@dataclass(slots=True)
class DueRow(EpisodeReading):
    """A due work point: what judging it reads (its state, its read model, its blocked flag)."""

    work_point_id: str
    tracking_since: datetime
    last_lead_report_at: datetime | None
    report_seq: int
    percent: int | None
    kpis: dict[str, float]
    recent_percents: list[int | None]
    level: str
    reasons: list[str]
    stall_episode_id: uuid.UUID | None
    stalled_since: datetime | None
    closure: str | None
    last_traceparent: str | None
    blocked: bool
    # The read model (view_found False: the registry never published it)
    view_found: bool
    deleted: bool
    plan_slug: str
    number: int
    code: str
    title: str
    responsibilities: list[dict[str, Any]]
    report_every_working_days: int
    grace_working_days: int
    warn_before_due_working_days: int
    pace_tolerance_pct: float
    flatline_reports: int
    starts_on: date | None
    due_on: date | None
    targets: list[dict[str, Any]]
    coordinating_agency_id: uuid.UUID | None


_STATE_COLUMNS = (
    "work_point_id",
    "tracking_since",
    "last_lead_report_at",
    "report_seq",
    "percent",
    "kpis",
    "recent_percents",
    "level",
    "reasons",
    "stall_episode_id",
    "stalled_since",
    "closure",
    "last_traceparent",
)
_VIEW_COLUMNS = (
    "deleted",
    "plan_slug",
    "number",
    "code",
    "title",
    "responsibilities",
    "report_every_working_days",
    "grace_working_days",
    "warn_before_due_working_days",
    "pace_tolerance_pct",
    "flatline_reports",
    "starts_on",
    "due_on",
    "targets",
    "coordinating_agency_id",
)


async def claim_due(
    conn: AsyncConnection, now: datetime, limit: int, *, skip_locked: bool
) -> list[DueRow]:
    """Lock and return the work points whose next check is due, oldest due first, with their
    read model and whether some agency's latest report says `blocked` (one statement)."""
    blocked = exists().where(
        PROGRESS.c.work_point_id == STATE.c.work_point_id, PROGRESS.c.status == BLOCKED
    )
    query = (
        select(
            *(STATE.c[name] for name in _STATE_COLUMNS),
            blocked.label("blocked"),
            VIEW.c.id.label("view_id"),
            *(VIEW.c[name] for name in _VIEW_COLUMNS),
        )
        .select_from(STATE.outerjoin(VIEW, VIEW.c.id == STATE.c.work_point_id))
        .where(STATE.c.next_check_at <= now)
        .order_by(STATE.c.next_check_at)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True, of=STATE)
    rows = (await conn.execute(query)).all()
    return [_due_row(row._mapping) for row in rows]


def _due_row(row: Any) -> DueRow:
    found = row["view_id"] is not None
    return DueRow(
        **{name: row[name] for name in _STATE_COLUMNS},
        blocked=bool(row["blocked"]),
        view_found=found,
        **{name: row[name] for name in _VIEW_COLUMNS},
    )


_VERDICT_COLUMNS = (
    "level",
    "reasons",
    "expected_percent",
    "judged_at",
    "next_check_at",
    "provisional_years",
    "stall_episode_id",
    "stalled_since",
)

_WRITE_VERDICT = (
    update(STATE)
    .where(STATE.c.work_point_id == bindparam("b_work_point_id"))
    .values({name: bindparam(f"b_{name}") for name in _VERDICT_COLUMNS})
)
_NOT_DUE = (
    update(STATE)
    .where(STATE.c.work_point_id == bindparam("b_work_point_id"))
    .values(next_check_at=None)
)


async def write_verdicts(conn: AsyncConnection, verdicts: Sequence[dict[str, Any]]) -> None:
    """Write judged work points' verdicts (one executemany UPDATE): each dict names
    work_point_id and the columns of _VERDICT_COLUMNS."""
    if verdicts:
        await conn.execute(
            _WRITE_VERDICT, [{f"b_{k}": v for k, v in verdict.items()} for verdict in verdicts]
        )


async def never_due(conn: AsyncConnection, work_point_ids: Sequence[str]) -> None:
    """Stop checking work points that are gone from the read model (deleted or never known)."""
    if work_point_ids:
        await conn.execute(_NOT_DUE, [{"b_work_point_id": wp} for wp in work_point_ids])


async def add_transitions(
    conn: AsyncConnection, records: Sequence[dict[str, Any]], outbox: Sequence[dict[str, Any]]
) -> None:
    """Insert timeline records and outbox rows (one executemany INSERT each; outbox ids follow
    the order given, which is the order the relay publishes them in)."""
    if records:
        await conn.execute(insert(TRANSITION), list(records))
    if outbox:
        await conn.execute(insert(OUTBOX), list(outbox))
