"""Archiving an old plan year moves its reports out of the history's working table, unchanged:
the chains still verify (also one that goes on after archiving), timelines and scorecards still
count them, and the current year is refused; on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta

import pytest
from duban_shared.clock import ManualClock
from duban_shared.db import create_engine, session_factory
from duban_shared.events import ReportStatus, StatusEvent
from opentelemetry.sdk.trace import TracerProvider
from progress.domain.scorecards import Scorecard
from progress.store import history, queries
from progress.store.models import ArchivedReport, StatusReport, WorkPointView
from progress.use_cases.archive import PLAN_YEAR_NOT_OVER, ArchivePlanYear, ArchiveRefused
from progress.use_cases.reports import apply_one_report
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

Sessions = async_sessionmaker[AsyncSession]
LEAD = uuid.uuid5(uuid.NAMESPACE_URL, "lead")
START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")
OLD = [f"plan-2024/{n}" for n in range(1, 6)]  # 2024 plan: archived
NEW = ["plan-2025/1"]  # 2025 plan: stays
TRACER = TracerProvider().get_tracer("test")


@pytest.fixture(params=["postgresql", "sqlite"])
async def sessions(request: pytest.FixtureRequest) -> AsyncIterator[Sessions]:
    fixture = "make_database" if request.param == "postgresql" else "sqlite_url"
    make: Callable[[str], str] = request.getfixturevalue(fixture)
    engine = create_engine(make("progress"))
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        for wp_id in OLD + NEW:
            slug, _, code = wp_id.partition("/")
            year = int(slug[-4:])
            session.add(
                WorkPointView(
                    id=wp_id,
                    plan_slug=slug,
                    number=int(code),
                    code=code,
                    title=f"wp {wp_id}",
                    responsibilities=[{"agency_id": str(LEAD), "name": "市林业局", "role": "lead"}],
                    report_every_working_days=10,
                    grace_working_days=3,
                    snapshot_at=START,
                    starts_on=date(year, 1, 1),
                    due_on=date(year, 12, 31),
                )
            )
    yield factory
    await engine.dispose()


async def _report(sessions: Sessions, wp_id: str, percent: int, at: datetime) -> None:
    event = StatusEvent(
        event_id=uuid.uuid4(),
        occurred_at=at,
        work_point_id=wp_id,
        agency_id=LEAD,
        status=ReportStatus.ON_TRACK,
        percent=percent,
    )
    async with sessions() as session, session.begin():
        view = await session.get(WorkPointView, wp_id)
        assert view is not None
        await apply_one_report(session, event, view, at)


async def _count(sessions: Sessions, model: type[StatusReport] | type[ArchivedReport]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _cards(session: AsyncSession) -> list[Scorecard]:
    return list(await queries.scorecards(session, await queries.work_points(session, "plan-2024")))


async def test_an_archived_plan_year_still_verifies_and_is_still_read(sessions: Sessions) -> None:
    for wp_id in OLD + NEW:
        for i in range(3):
            await _report(sessions, wp_id, 10 * (i + 1), START + timedelta(days=i))
    async with sessions() as session:
        cards_before = await _cards(session)
    clock = ManualClock(datetime.fromisoformat("2025-03-01T09:00:00+08:00"))
    archive = ArchivePlanYear(sessions, clock, TRACER, batch_work_points=2)

    with pytest.raises(ArchiveRefused) as refused:
        await archive(2025)
    assert refused.value.code == PLAN_YEAR_NOT_OVER
    dry = await archive(2024, dry_run=True)
    assert (dry.work_points, dry.reports) == (5, 15)
    assert await _count(sessions, ArchivedReport) == 0

    done = await archive(2024)
    assert (done.work_points, done.reports, done.batches) == (5, 15, 3)  # 2 work points a batch
    assert await _count(sessions, StatusReport) == 3  # the 2025 plan's
    assert await _count(sessions, ArchivedReport) == 15
    assert (await archive(2024)).reports == 0  # nothing left

    async with sessions() as session:
        assert (await history.verify(session)).ok
        assert (await history.verify(session, OLD[0])).rows_checked == 3
        entries, total = await queries.timeline(session, OLD[0], 10, 0)
        assert total >= 3 and sum(e.kind == "report" for e in entries) == 3
        cards_after = await _cards(session)
    assert [(c.agency_id, c.reports) for c in cards_after] == [
        (c.agency_id, c.reports) for c in cards_before
    ]
    assert cards_before and cards_before[0].reports > 0

    # a late report on an archived work point extends its chain in the history table
    await _report(sessions, OLD[0], 90, START + timedelta(days=30))
    async with sessions() as session:
        verification = await history.verify(session, OLD[0])
    assert verification.ok and verification.rows_checked == 4

    # an archived row changed is still caught
    async with sessions() as session, session.begin():
        query = select(ArchivedReport).where(ArchivedReport.work_point_id == OLD[1])
        row = (await session.execute(query)).scalars().first()
        assert row is not None
        row.note = "改过"
        session.add(row)
    async with sessions() as session:
        broken = (await history.verify(session)).first_broken
    assert broken is not None and broken.work_point_id == OLD[1]
