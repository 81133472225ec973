"""The status consumer's rows as plain objects, read and written with SQLAlchemy Core.

Applying a report changes a work point's state and an agency's latest report, many attributes
each. On ORM instances every attribute set goes through the unit of work's instrumentation;
these slotted dataclasses cost a plain attribute set, and the batch writes them back with one
upsert per table (`rows.write`). The classes carry the columns of their tables
(store.models) one for one, plus the few methods the domain calls on them; a test keeps the
two in step.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

from duban_shared.events import ReportStatus
from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from progress.domain.chain import NewReport
from progress.store.models import (
    AgencyProgress,
    EpisodeReading,
    Inbox,
    OutboxMessage,
    StatusReport,
    TransitionRecord,
    WorkPointState,
    WorkPointView,
)
from progress.store.sql import among


def table(model: type[Any]) -> Table:
    """The Core table of a model."""
    found: Table = model.__table__
    return found


STATE, PROGRESS, VIEW = table(WorkPointState), table(AgencyProgress), table(WorkPointView)
REPORT, INBOX = table(StatusReport), table(Inbox)
TRANSITION, OUTBOX = table(TransitionRecord), table(OutboxMessage)


@dataclass(slots=True)
class ViewRow:
    """A work_point_view row (read only)."""

    id: str
    plan_slug: str
    number: int
    code: str
    title: str
    responsibilities: list[dict[str, Any]]
    section: int
    plan_title: str
    section_title: str
    report_every_working_days: int
    grace_working_days: int
    warn_before_due_working_days: int
    pace_tolerance_pct: float
    flatline_reports: int
    starts_on: date | None
    due_on: date | None
    targets: list[dict[str, Any]]
    coordinating_agency_id: uuid.UUID | None
    deleted: bool
    registry_traceparent: str | None
    snapshot_at: datetime

    def role_of(self, agency_id: uuid.UUID) -> str | None:
        """Return 'lead', 'co' or None for an agency (as WorkPointView.role_of)."""
        wanted = str(agency_id)
        for r in self.responsibilities:
            if r["agency_id"] == wanted:
                return str(r["role"])
        return None

    def agency_ids(self, role: str | None = None) -> list[uuid.UUID]:
        """The responsible agencies (of one role, if given)."""
        return [
            uuid.UUID(r["agency_id"])
            for r in self.responsibilities
            if role is None or r["role"] == role
        ]


@dataclass(slots=True)
class StateRow(EpisodeReading):
    """A work_point_state row."""

    work_point_id: str
    tracking_since: datetime
    last_lead_report_at: datetime | None = None
    report_seq: int = 0
    chain_head: str | None = None
    status: str | None = None
    percent: int | None = None
    kpis: dict[str, float] = field(default_factory=dict)
    recent_percents: list[int | None] = field(default_factory=list)
    level: str = "green"
    reasons: list[str] = field(default_factory=list)
    expected_percent: float | None = None
    judged_at: datetime | None = None
    stall_episode_id: uuid.UUID | None = None
    stalled_since: datetime | None = None
    closure: str | None = None
    closure_requested_at: datetime | None = None
    closed_at: datetime | None = None
    next_check_at: datetime | None = None
    provisional_years: list[int] | None = None
    last_traceparent: str | None = None


@dataclass(slots=True)
class ProgressRow:
    """An agency_progress row: one agency's latest report on one work point."""

    work_point_id: str
    agency_id: uuid.UUID
    status: str
    last_report_at: datetime
    percent: int | None = None
    kpis: dict[str, float] = field(default_factory=dict)


ROW_CLASSES: dict[type[Any], tuple[Table, type[Any]]] = {
    ViewRow: (VIEW, WorkPointView),
    StateRow: (STATE, WorkPointState),
    ProgressRow: (PROGRESS, AgencyProgress),
}
"""Each plain row class with its table and model (their columns must be the same)."""


def column_names(row_class: type[Any]) -> list[str]:
    """The attributes of a plain row class, which are its table's columns."""
    return [f.name for f in fields(row_class)]


@dataclass
class Loaded:
    """A work point's mutable rows, loaded once (for a whole batch of reports) and kept current
    in memory, so applying a report needs no queries of its own."""

    state: StateRow | None
    progress: dict[uuid.UUID, ProgressRow] = field(default_factory=dict)
    reports: list[NewReport] = field(default_factory=list)
    """Reports applied and not yet written (see write)."""
    touched: set[uuid.UUID] = field(default_factory=set)
    """Agencies whose latest report changed."""

    def any_blocked(self) -> bool:
        """Some agency's latest report says `blocked`."""
        return any(p.status == ReportStatus.BLOCKED.value for p in self.progress.values())


@dataclass
class Writes:
    """What a batch adds besides its work points' rows: inbox entries, transitions, outbox."""

    inbox: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


def values(row: Any, names: list[str]) -> dict[str, Any]:
    """A plain row's columns by name (shallow: its lists and dicts are not copied)."""
    return {name: getattr(row, name) for name in names}


VIEW_COLUMNS = column_names(ViewRow)
STATE_COLUMNS = column_names(StateRow)
PROGRESS_COLUMNS = column_names(ProgressRow)


async def views(conn: AsyncConnection, wp_ids: Collection[str]) -> dict[str, ViewRow]:
    """The read model of some work points, by id (unknown ones left out)."""
    rows = await conn.execute(
        select(*(VIEW.c[name] for name in VIEW_COLUMNS)).where(among(conn, VIEW.c.id, wp_ids))
    )
    return {row[0]: ViewRow(*row) for row in rows}


async def seen_events(conn: AsyncConnection, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """The status events among `event_ids` already applied (in the inbox)."""
    rows = await conn.execute(
        select(INBOX.c.event_id).where(among(conn, INBOX.c.event_id, event_ids))
    )
    return set(rows.scalars())


async def load(conn: AsyncConnection, wp_ids: Collection[str]) -> dict[str, Loaded]:
    """Load the states and agencies' latest reports of some work points, in two queries."""
    loaded = {wp: Loaded(state=None) for wp in wp_ids}
    if not wp_ids:
        return loaded
    states = await conn.execute(
        select(*(STATE.c[name] for name in STATE_COLUMNS)).where(
            among(conn, STATE.c.work_point_id, wp_ids)
        )
    )
    for row in states:
        loaded[row[0]].state = StateRow(*row)
    rows = await conn.execute(
        select(*(PROGRESS.c[name] for name in PROGRESS_COLUMNS)).where(
            among(conn, PROGRESS.c.work_point_id, wp_ids)
        )
    )
    for row in rows:
        loaded[row[0]].progress[row[1]] = ProgressRow(*row)
    return loaded


def _upsert(dialect: str, target: Table, keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE every other column (PostgreSQL and SQLite)."""
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(target)
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in target.columns if c.name not in keys},
    )


_UPSERTS: dict[tuple[str, str], Any] = {}


def upsert(dialect: str, target: Table, keys: list[str]) -> Any:
    """The upsert statement of a table, made once per dialect (its compiled form is cached)."""
    made = _UPSERTS.get((dialect, target.name))
    if made is None:
        made = _UPSERTS[(dialect, target.name)] = _upsert(dialect, target, keys)
    return made


async def write(conn: AsyncConnection, loaded: Iterable[Loaded], writes: Writes) -> None:
    """Write what a batch changed, one executemany statement per table: its reports, the states
    of the work points they were about, the agencies' latest reports they changed, the inbox
    entries, and the transitions with their outbox rows (in that order, so the outbox's ids
    follow the transitions')."""
    reports: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    progress: list[dict[str, Any]] = []
    for item in loaded:
        if not item.reports or item.state is None:
            continue
        reports += [vars(r) for r in item.reports]
        item.reports.clear()
        states.append(values(item.state, STATE_COLUMNS))
        progress += [values(item.progress[agency], PROGRESS_COLUMNS) for agency in item.touched]
        item.touched.clear()
    dialect = conn.dialect.name
    if reports:
        await conn.execute(insert(REPORT), reports)
    if states:
        await conn.execute(upsert(dialect, STATE, ["work_point_id"]), states)
    if progress:
        await conn.execute(upsert(dialect, PROGRESS, ["work_point_id", "agency_id"]), progress)
    if writes.inbox:
        await conn.execute(insert(INBOX), writes.inbox)
    if writes.transitions:
        await conn.execute(insert(TRANSITION), writes.transitions)
    if writes.outbox:
        await conn.execute(insert(OUTBOX), writes.outbox)
