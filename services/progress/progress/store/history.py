"""Reading the report history to verify its hash chains (progress.domain.chain)."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.chain import Verification, check_chains
from progress.store.models import ArchivedReport, ReportFields, StatusReport


async def verify(session: AsyncSession, work_point_id: str | None = None) -> Verification:
    """Check one work point's chain, or all of them, in order; name the first broken row.
    Archived plan years' reports (status_report_archive) are read with the rest: a chain may
    lie in both tables (a report that arrived after its year was archived)."""
    rows: list[ReportFields] = []
    for model in (StatusReport, ArchivedReport):
        query = select(model)
        if work_point_id is not None:
            query = query.where(col(model.work_point_id) == work_point_id)
        rows.extend((await session.exec(query)).all())
    rows.sort(key=lambda row: (row.work_point_id, row.chain_seq))
    return check_chains(rows)
