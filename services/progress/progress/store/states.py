"""The rows judging works on: work point states, agencies' latest reports, due rows.

A batch of reports loads its work points' rows once (`load`), changes them in memory, and writes
them back in bulk (`write_back`); the sweeper's rows are in progress.store.due.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from duban_shared.events import ReportStatus
from duban_shared.workdays import WorkingCalendar
from sqlalchemy import Table, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.chain import NewReport
from progress.store.models import AgencyProgress, Inbox, StatusReport, WorkPointState, WorkPointView
from progress.store.sql import among


@dataclass
class Loaded:
    """A work point's mutable rows, loaded once (for a whole batch of reports) and kept current
    in memory, so applying a report needs no queries of its own."""

    state: WorkPointState | None
    progress: dict[uuid.UUID, AgencyProgress] = field(default_factory=dict)
    reports: list[NewReport] = field(default_factory=list)
    """Reports applied and not yet written (see write_back)."""

    def any_blocked(self) -> bool:
        """Some agency's latest report says `blocked`."""
        return any(p.status == ReportStatus.BLOCKED.value for p in self.progress.values())


async def load(session: AsyncSession, wp_ids: Collection[str]) -> dict[str, Loaded]:
    """Load the states and agencies' latest reports of some work points, in two queries."""
    states = await session.exec(
        select(WorkPointState).where(among(session, col(WorkPointState.work_point_id), wp_ids))
    )
    loaded = {wp: Loaded(state=None) for wp in wp_ids}
    for state in states.all():
        loaded[state.work_point_id].state = state
    rows = await session.exec(
        select(AgencyProgress).where(among(session, col(AgencyProgress.work_point_id), wp_ids))
    )
    for row in rows.all():
        loaded[row.work_point_id].progress[row.agency_id] = row
    return loaded


async def write_back(session: AsyncSession, loaded: Iterable[Loaded]) -> None:
    """Write what a batch changed: its reports in one executemany INSERT, its changed states and
    agency rows in one executemany UPDATE per table.

    The unit of work would update them one statement per row (their changed columns differ);
    taking them out of the session and updating every column by primary key costs one round
    trip per table. Other new rows stay with the session, which inserts them in bulk already.
    """
    changed: dict[type[Any], list[dict[str, Any]]] = {WorkPointState: [], AgencyProgress: []}
    reports: list[dict[str, Any]] = []
    dirty = session.dirty  # computed from the whole session on every access: once
    for item in loaded:
        reports += [vars(r) for r in item.reports]
        item.reports.clear()
        rows: list[Any] = [item.state, *item.progress.values()]
        for row in rows:
            if row is None or row not in dirty or not sa_inspect(row).persistent:
                continue
            changed[type(row)].append(_columns(row))
            session.expunge(row)
    if reports:
        # Core, not the ORM's bulk insert: that splits the rows by which columns are None (a
        # statement per pattern); every row here names every column, so one executemany.
        await session.exec(insert(_table(StatusReport)), params=reports)
    for model, values in changed.items():
        if values:
            await session.exec(update(model), params=values)


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


def _columns(row: Any) -> dict[str, Any]:
    return {a.key: getattr(row, a.key) for a in sa_inspect(type(row)).column_attrs}


async def views(session: AsyncSession, wp_ids: Collection[str]) -> dict[str, WorkPointView]:
    """The read model of some work points, by id (unknown ones left out)."""
    rows = await session.exec(
        select(WorkPointView).where(among(session, col(WorkPointView.id), wp_ids))
    )
    return {v.id: v for v in rows.all()}


async def seen_events(session: AsyncSession, event_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """The status events among `event_ids` already applied (in the inbox)."""
    rows = await session.exec(
        select(Inbox.event_id).where(among(session, col(Inbox.event_id), event_ids))
    )
    return set(rows.all())


async def add_to_inbox(session: AsyncSession, entries: list[dict[str, object]]) -> None:
    """Record applied status events in the inbox, in one executemany INSERT."""
    if entries:
        await session.exec(insert(Inbox), params=entries)


async def blocked_work_points(session: AsyncSession, wp_ids: Sequence[str]) -> set[str]:
    """The work points among `wp_ids` where some agency's latest report is `blocked`."""
    rows = await session.exec(
        select(AgencyProgress.work_point_id)
        .where(
            col(AgencyProgress.work_point_id).in_(wp_ids),
            AgencyProgress.status == ReportStatus.BLOCKED.value,
        )
        .distinct()
    )
    return set(rows.all())


async def due_where_now_official(
    session: AsyncSession, calendar: WorkingCalendar, now: datetime, chunk: int = 1000
) -> int:
    """Make due at `now` every work point judged on a provisional year whose official
    arrangement the calendar now has (a year file added, chinese-calendar upgraded); return how
    many. The sweep that follows judges them again on the official calendar."""
    rows = await session.stream(
        select(WorkPointState.work_point_id, WorkPointState.provisional_years).where(
            col(WorkPointState.provisional_years).is_not(None)
        )
    )
    official: dict[int, bool] = {}
    stale: list[str] = []
    async for wp_id, years in rows:
        for year in years or ():
            if official.setdefault(year, calendar.is_official(year)):
                stale.append(wp_id)
                break
    for start in range(0, len(stale), chunk):
        ids = stale[start : start + chunk]
        await session.exec(
            update(WorkPointState)
            .where(among(session, col(WorkPointState.work_point_id), ids))
            .values(next_check_at=now)
        )
    return len(stale)
