"""Archiving a plan year: its reports move, as they are, from `status_report` to
`status_report_archive`, a batch of whole work points (whole chains) per transaction."""

from __future__ import annotations

from datetime import date, datetime

from duban_shared.db import UtcDateTime
from sqlalchemy import delete, func, insert, literal, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.store.models import ArchivedReport, ReportFields, StatusReport, WorkPointView

REPORT_COLUMNS = tuple(ReportFields.model_fields)
"""The columns a report keeps when it moves (the hash covers them)."""


def _of_year(year: int) -> list[object]:
    return [
        col(WorkPointView.starts_on) >= date(year, 1, 1),
        col(WorkPointView.starts_on) < date(year + 1, 1, 1),
    ]


async def reports_left(session: AsyncSession, year: int) -> tuple[int, int]:
    """(work points, reports) of the plan year still in `status_report`."""
    query = (
        select(func.count(func.distinct(col(StatusReport.work_point_id))), func.count())
        .select_from(StatusReport)
        .join(WorkPointView, col(WorkPointView.id) == col(StatusReport.work_point_id))
        .where(*_of_year(year))  # type: ignore[arg-type]
    )
    work_points, reports = (await session.execute(query)).one()
    return int(work_points), int(reports)


async def move_batch(
    session: AsyncSession, year: int, now: datetime, limit: int
) -> tuple[int, int]:
    """Move the reports of up to `limit` work points of the plan year to the archive; return
    (work points, reports) moved. The caller commits."""
    chosen = (
        select(col(StatusReport.work_point_id))
        .join(WorkPointView, col(WorkPointView.id) == col(StatusReport.work_point_id))
        .where(*_of_year(year))  # type: ignore[arg-type]
        .distinct()
        .order_by(col(StatusReport.work_point_id))
        .limit(limit)
    )
    wp_ids = list((await session.execute(chosen)).scalars())
    if not wp_ids:
        return 0, 0
    source = [getattr(StatusReport, name) for name in REPORT_COLUMNS]
    rows = select(*source, literal(year), literal(now, UtcDateTime()))
    rows = rows.where(col(StatusReport.work_point_id).in_(wp_ids))
    await session.execute(
        insert(ArchivedReport).from_select([*REPORT_COLUMNS, "plan_year", "archived_at"], rows)
    )
    moved = await session.execute(
        delete(StatusReport)
        .where(col(StatusReport.work_point_id).in_(wp_ids))
        .execution_options(synchronize_session=False)
    )
    return len(wp_ids), int(getattr(moved, "rowcount", 0) or 0)
