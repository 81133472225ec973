"""A work point judged on a provisional calendar year keeps that year with its judgement, and
is judged again on the official arrangement once a year file for it is installed (the first
sweep after the restart that loads it). On a real PostgreSQL database, without Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest
from duban_shared.clock import ManualClock
from duban_shared.db import create_engine, session_factory
from duban_shared.events import ReportStatus, StatusEvent
from duban_shared.kafka import make_producer
from duban_shared.outbox import OutboxRelay
from duban_shared.workdays import WorkingCalendar
from opentelemetry.sdk.trace import TracerProvider
from progress.store.models import OutboxMessage, TransitionRecord, WorkPointState, WorkPointView
from progress.use_cases.reports import apply_one_report
from progress.use_cases.sweep import Sweeper
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

WP = "zhaoqing-digital-2026/7"
LEAD = uuid.uuid5(uuid.NAMESPACE_URL, "lead")
LAST_REPORT = datetime.fromisoformat("2026-12-31T10:00:00+08:00")  # Thursday, last official day


def _at(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}+08:00")


@pytest.fixture
async def sessions(
    make_database: Callable[[str], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(make_database("progress"))
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        session.add(
            WorkPointView(
                id=WP,
                plan_slug="zhaoqing-digital-2026",
                number=7,
                code="7",
                title="推进政务服务一网通办",
                responsibilities=[{"agency_id": str(LEAD), "name": "市林业局", "role": "lead"}],
                report_every_working_days=2,
                grace_working_days=0,
                snapshot_at=LAST_REPORT,
            )
        )
    yield factory
    await engine.dispose()


async def _state(sessions: async_sessionmaker[AsyncSession]) -> WorkPointState:
    async with sessions() as session:
        state = await session.get(WorkPointState, WP)
        assert state is not None
        return state


async def _kinds(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        rows = await session.exec(
            select(TransitionRecord.kind).order_by(col(TransitionRecord.occurred_at))
        )
        return list(rows.all())


def _sweeper(
    sessions: async_sessionmaker[AsyncSession], clock: ManualClock, calendar: WorkingCalendar
) -> Sweeper:
    tracer = TracerProvider().get_tracer("test")
    producer = make_producer("127.0.0.1:1", "unused")  # never started: the relay only wakes
    relay = OutboxRelay(OutboxMessage, sessions, producer, tracer, clock)
    return Sweeper(
        sessions, clock, tracer, relay, batch_size=50, skip_locked=True, calendar=calendar
    )


async def test_an_official_year_file_makes_provisional_judgements_be_made_again(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    # 1. Judged on the provisional 2027: Fri 1 Jan (元旦) and the weekend are off, so the two
    #    working days allowed are Mon 4 and Tue 5 January; silent from Wed 6 January.
    provisional = WorkingCalendar.from_folder(tmp_path)
    clock = ManualClock(LAST_REPORT)
    report = StatusEvent(
        event_id=uuid.uuid4(),
        occurred_at=LAST_REPORT,
        work_point_id=WP,
        agency_id=LEAD,
        status=ReportStatus.ON_TRACK,
        percent=30,
    )
    async with sessions() as session, session.begin():
        view = await session.get(WorkPointView, WP)
        assert view is not None
        assert await apply_one_report(session, report, view, clock.now(), provisional) is None
    state = await _state(sessions)
    assert state.provisional_years == [2027]
    assert state.next_check_at == _at("2027-01-06T00:00:00")

    # 2. On Wednesday the sweeper finds the lead silent, still on the provisional calendar.
    clock.set(_at("2027-01-06T09:00:00"))
    assert await _sweeper(sessions, clock, provisional).sweep_once() == 1
    state = await _state(sessions)
    assert (state.level, state.reasons, state.provisional_years) == ("red", ["silent"], [2027])

    # 3. The State Council's arrangement is published with 4 and 5 January off; the operator
    #    adds 2027.toml and restarts. The first sweep judges the work point again: the lead
    #    still has Wed 6 and Thu 7 January, so it recovers, and it is no longer provisional.
    (tmp_path / "2027.toml").write_text(
        "year = 2027\nholidays = [2027-01-01, 2027-01-04, 2027-01-05]\n", encoding="utf-8"
    )
    official = WorkingCalendar.from_folder(tmp_path)
    restarted = _sweeper(sessions, clock, official)
    assert await restarted.sweep_once() == 1
    state = await _state(sessions)
    assert (state.level, state.reasons, state.provisional_years) == ("green", [], None)
    assert state.judged_at == clock.now()
    assert state.next_check_at == _at("2027-01-08T00:00:00")
    assert await _kinds(sessions) == ["opened", "recovered"]

    # 4. Later sweeps leave it alone until it is due (the official years did not change).
    assert await restarted.sweep_once() == 0
    assert (await _state(sessions)).next_check_at == _at("2027-01-08T00:00:00")


async def test_a_restart_without_new_official_years_judges_nothing_again(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    calendar = WorkingCalendar.from_folder(tmp_path)
    clock = ManualClock(LAST_REPORT)
    report = StatusEvent(
        event_id=uuid.uuid4(),
        occurred_at=LAST_REPORT,
        work_point_id=WP,
        agency_id=LEAD,
        status=ReportStatus.ON_TRACK,
        percent=30,
    )
    async with sessions() as session, session.begin():
        view = await session.get(WorkPointView, WP)
        assert view is not None
        await apply_one_report(session, report, view, clock.now(), calendar)
    before = await _state(sessions)
    clock.set(_at("2027-01-04T09:00:00"))
    restarted = _sweeper(sessions, clock, WorkingCalendar.from_folder(tmp_path))
    assert await restarted.sweep_once() == 0
    after = await _state(sessions)
    assert (after.judged_at, after.next_check_at) == (before.judged_at, before.next_check_at)
    assert after.provisional_years == [2027]
