"""The rows judging works on outside the status consumer (store.rows) and the sweeper
(store.due): work points' read model and blocked work points.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from duban_shared.events import ReportStatus
from duban_shared.workdays import WorkingCalendar
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.store.models import AgencyProgress, WorkPointState, WorkPointView
from progress.store.sql import among


async def views(session: AsyncSession, wp_ids: Collection[str]) -> dict[str, WorkPointView]:
    """The read model of some work points, by id (unknown ones left out)."""
    rows = await session.exec(
        select(WorkPointView).where(among(session, col(WorkPointView.id), wp_ids))
    )
    return {v.id: v for v in rows.all()}


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
