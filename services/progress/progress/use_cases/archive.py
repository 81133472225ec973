"""Archiving an old plan year: its reports leave the report history's working table for the
archive, whole chains at a time, unchanged, so the history stays small and every chain still
verifies (`GET /v1/history/verify` reads both). Nothing is deleted."""

from __future__ import annotations

from dataclasses import dataclass

from duban_shared.clock import Clock
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.store import archive

PLAN_YEAR_NOT_OVER = "plan_year_not_over"


class ArchiveRefused(Exception):
    """A plan year that may not be archived yet; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Archived:
    """What archiving a plan year did (or, dry, would do)."""

    year: int
    work_points: int
    reports: int
    batches: int


class ArchivePlanYear:
    """Moves a finished plan year's reports to the archive, `batch_work_points` work points
    (their whole chains) per short transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        tracer: Tracer,
        *,
        batch_work_points: int = 100,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.tracer = tracer
        self.batch_work_points = batch_work_points

    async def __call__(self, year: int, *, dry_run: bool = False) -> Archived:
        """Archive the plan year (work points whose plan starts in it); refuse the current
        year and later ones (plan_year_not_over)."""
        now = self.clock.now()
        if year >= now.year:
            raise ArchiveRefused(
                PLAN_YEAR_NOT_OVER,
                f"{PLAN_YEAR_NOT_OVER}: the {year} plan year is not over (today is "
                f"{now.date().isoformat()}); archive only years before {now.year}",
            )
        with self.tracer.start_as_current_span("archive plan year") as span:
            span.set_attribute("duban.plan.year", year)
            if dry_run:
                async with self.sessions() as session:
                    work_points, reports = await archive.reports_left(session, year)
                return Archived(year, work_points, reports, 0)
            work_points = reports = batches = 0
            while True:
                async with self.sessions() as session, session.begin():
                    moved_wps, moved = await archive.move_batch(
                        session, year, now, self.batch_work_points
                    )
                if not moved_wps:
                    break
                work_points, reports = work_points + moved_wps, reports + moved
                batches += 1
            span.set_attribute("duban.archive.reports", reports)
            return Archived(year, work_points, reports, batches)
