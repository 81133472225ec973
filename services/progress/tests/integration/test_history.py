"""The report history is hash-chained per work point: verification passes on untouched rows and
names the first row that was changed, removed or relinked, on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from duban_shared.db import create_engine, session_factory
from duban_shared.events import ReportStatus, StatusEvent
from progress.domain import chain
from progress.store import history
from progress.store.models import StatusReport, WorkPointView
from progress.use_cases.reports import apply_one_report
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

Sessions = async_sessionmaker[AsyncSession]
LEAD = uuid.uuid5(uuid.NAMESPACE_URL, "lead")
START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")
WORK_POINTS = ("zhaoqing-digital-2024/35", "zhaoqing-digital-2024/41")


@pytest.fixture(params=["postgresql", "sqlite"])
async def sessions(request: pytest.FixtureRequest) -> AsyncIterator[Sessions]:
    fixture = "make_database" if request.param == "postgresql" else "sqlite_url"
    make: Callable[[str], str] = request.getfixturevalue(fixture)
    engine = create_engine(make("progress"))
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        for number, wp_id in enumerate(WORK_POINTS, start=1):
            session.add(
                WorkPointView(
                    id=wp_id,
                    plan_slug="zhaoqing-digital-2024",
                    number=number,
                    code=wp_id.rpartition("/")[2],
                    title=f"wp {number}",
                    responsibilities=[{"agency_id": str(LEAD), "name": "市林业局", "role": "lead"}],
                    report_every_working_days=10,
                    grace_working_days=3,
                    snapshot_at=START,
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
        note=f"进度{percent}%",
    )
    async with sessions() as session, session.begin():
        view = await session.get(WorkPointView, wp_id)
        assert view is not None
        await apply_one_report(session, event, view, at)


async def _history(sessions: Sessions, n: int = 3) -> None:
    for wp_id in WORK_POINTS:
        for i in range(n):
            await _report(sessions, wp_id, 10 * (i + 1), START + timedelta(hours=i))


async def _rows(sessions: Sessions, wp_id: str) -> list[StatusReport]:
    async with sessions() as session:
        query = (
            select(StatusReport)
            .where(StatusReport.work_point_id == wp_id)
            .order_by(col(StatusReport.chain_seq))
        )
        return list((await session.exec(query)).all())


async def _verify(sessions: Sessions, wp_id: str | None = None) -> chain.Verification:
    async with sessions() as session:
        return await history.verify(session, wp_id)


async def test_an_untouched_history_verifies_and_links_each_row_to_the_last(
    sessions: Sessions,
) -> None:
    await _history(sessions)
    rows = await _rows(sessions, WORK_POINTS[0])
    assert [r.chain_seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == chain.GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.row_hash for r in rows[:-1]]
    result = await _verify(sessions)
    assert (result.ok, result.rows_checked, result.first_broken) == (True, 6, None)


async def test_a_changed_note_is_found_at_its_row(sessions: Sessions) -> None:
    await _history(sessions)
    target = (await _rows(sessions, WORK_POINTS[1]))[1]
    async with sessions() as session, session.begin():
        row = await session.get(StatusReport, target.event_id)
        assert row is not None
        row.note = "进度90%"  # someone edits the record after the fact
        session.add(row)
    result = await _verify(sessions)
    assert result.first_broken == chain.Broken(
        WORK_POINTS[1], 2, str(target.event_id), "content_changed"
    )
    assert (await _verify(sessions, WORK_POINTS[0])).ok  # the other chain is intact


async def test_a_removed_row_is_found_where_the_chain_skips(sessions: Sessions) -> None:
    await _history(sessions)
    rows = await _rows(sessions, WORK_POINTS[0])
    async with sessions() as session, session.begin():
        row = await session.get(StatusReport, rows[1].event_id)
        await session.delete(row)
    broken = (await _verify(sessions)).first_broken
    assert broken is not None
    assert (broken.chain_seq, broken.event_id, broken.problem) == (
        3,
        str(rows[2].event_id),
        "sequence_gap",
    )


async def test_a_rehashed_forgery_still_breaks_the_link_to_the_next_row(
    sessions: Sessions,
) -> None:
    await _history(sessions)
    rows = await _rows(sessions, WORK_POINTS[0])
    async with sessions() as session, session.begin():
        row = await session.get(StatusReport, rows[0].event_id)
        assert row is not None
        row.percent = 95
        row.row_hash = chain.hash_row(row.prev_hash, row)  # a careful forger rehashes it
        session.add(row)
    broken = (await _verify(sessions)).first_broken
    assert broken is not None
    assert (broken.chain_seq, broken.problem) == (2, "link_broken")
