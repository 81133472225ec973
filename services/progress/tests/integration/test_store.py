"""Applying reports and sweeping (progress.use_cases) on a real PostgreSQL database, without Kafka.

A work point view is inserted by hand (what the registry consumer would have written), then
reports are applied the way the status consumer applies them: inbox first, then apply_report.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.db import create_engine, session_factory
from duban_shared.events import (
    ReportStatus,
    StallReason,
    StallTransition,
    StallTransitionKind,
    StatusEvent,
)
from duban_shared.inbox import first_delivery
from progress.store.due import claim_due
from progress.store.models import (
    AgencyProgress,
    Inbox,
    OutboxMessage,
    StatusReport,
    WorkPointState,
    WorkPointView,
)
from progress.use_cases import sweep
from progress.use_cases.reports import apply_one_report
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

WP = "zhaoqing-digital-2024/35"
LEAD = uuid.uuid5(uuid.NAMESPACE_URL, "lead")
CO = uuid.uuid5(uuid.NAMESPACE_URL, "co")
OUTSIDER = uuid.uuid5(uuid.NAMESPACE_URL, "outsider")
START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")  # Monday


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
                plan_slug="zhaoqing-digital-2024",
                number=35,
                code="35",
                title="加强林业数字化应用",
                responsibilities=[
                    {"agency_id": str(LEAD), "name": "市林业局", "role": "lead"},
                    {"agency_id": str(CO), "name": "市自然资源局", "role": "co"},
                ],
                report_every_working_days=10,
                grace_working_days=3,
                snapshot_at=START,
            )
        )
    yield factory
    await engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def _event(
    agency: uuid.UUID,
    status: ReportStatus,
    occurred_at: datetime,
    *,
    percent: int | None = None,
    event_id: uuid.UUID | None = None,
    note: str | None = None,
) -> StatusEvent:
    return StatusEvent(
        event_id=event_id or uuid.uuid4(),
        occurred_at=occurred_at,
        work_point_id=WP,
        agency_id=agency,
        status=status,
        percent=percent,
        note=note,
    )


async def _deliver(
    session: AsyncSession, event: StatusEvent, now: datetime
) -> tuple[bool, StallTransition | None]:
    """What the status consumer does per record: inbox, then apply."""
    view = await session.get(WorkPointView, event.work_point_id)
    assert view is not None
    if not await first_delivery(session, Inbox, event.event_id, topics.STATUS, now):
        return False, None
    return True, await apply_one_report(session, event, view, now)


async def _apply(
    sessions: async_sessionmaker[AsyncSession], event: StatusEvent, now: datetime
) -> StallTransition | None:
    async with sessions() as session, session.begin():
        applied, transition = await _deliver(session, event, now)
        assert applied
        return transition


async def _state(sessions: async_sessionmaker[AsyncSession]) -> WorkPointState:
    async with sessions() as session:
        state = await session.get(WorkPointState, WP)
        assert state is not None
        return state


async def _outbox(sessions: async_sessionmaker[AsyncSession]) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(
            (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
        )


async def test_out_of_order_report_is_stored_flagged_and_does_not_move_state_back(
    sessions: async_sessionmaker[AsyncSession], clock: ManualClock
) -> None:
    newer = _event(LEAD, ReportStatus.AT_RISK, START + timedelta(days=2), percent=40)
    older = _event(LEAD, ReportStatus.ON_TRACK, START + timedelta(days=1), percent=20)
    clock.advance(timedelta(days=3))
    await _apply(sessions, newer, clock.now())
    await _apply(sessions, older, clock.now())

    async with sessions() as session:
        stored = {r.event_id: r for r in (await session.exec(select(StatusReport))).all()}
        latest = await session.get(AgencyProgress, (WP, LEAD))
    assert set(stored) == {newer.event_id, older.event_id}
    assert stored[newer.event_id].out_of_order is False
    assert stored[older.event_id].out_of_order is True
    assert stored[older.event_id].percent == 20  # kept as reported, for the record
    assert latest is not None
    assert (latest.status, latest.percent, latest.last_report_at) == (
        "at_risk",
        40,
        newer.occurred_at,
    )
    state = await _state(sessions)
    assert (state.status, state.percent) == ("at_risk", 40)
    assert state.last_lead_report_at == newer.occurred_at


async def test_co_agency_blocked_opens_a_stall_and_its_later_report_recovers_it(
    sessions: async_sessionmaker[AsyncSession], clock: ManualClock
) -> None:
    await _apply(sessions, _event(LEAD, ReportStatus.ON_TRACK, START, percent=30), clock.now())
    assert await _outbox(sessions) == []

    clock.advance(timedelta(hours=2))
    blocked = _event(CO, ReportStatus.BLOCKED, clock.now(), note="用地审批未完成")
    opened = await _apply(sessions, blocked, clock.now())
    assert opened is not None
    assert (opened.kind, opened.reason) == (StallTransitionKind.OPENED, StallReason.BLOCKED)
    assert opened.triggered_by_event_id == blocked.event_id
    assert opened.note == "用地审批未完成"
    assert [a.name for a in opened.lead_agencies] == ["市林业局"]
    assert [a.name for a in opened.co_agencies] == ["市自然资源局"]
    state = await _state(sessions)
    assert state.stall_reason == "blocked"
    assert state.stall_episode_id == opened.episode_id
    assert state.stalled_since == clock.now()
    assert (state.status, state.percent) == ("on_track", 30)  # a co-agency never sets these

    clock.advance(timedelta(days=1))
    cleared = _event(CO, ReportStatus.ON_TRACK, clock.now())
    recovered = await _apply(sessions, cleared, clock.now())
    assert recovered is not None
    assert (recovered.kind, recovered.reason) == (
        StallTransitionKind.RECOVERED,
        StallReason.BLOCKED,
    )
    assert recovered.episode_id == opened.episode_id
    state = await _state(sessions)
    assert (state.stall_reason, state.stall_episode_id, state.stalled_since) == (None, None, None)

    rows = await _outbox(sessions)
    assert [(r.topic, r.key) for r in rows] == [(topics.STALLS, WP), (topics.STALLS, WP)]
    published = [StallTransition.model_validate_json(r.payload) for r in rows]
    assert published == [opened, recovered]
    assert all(r.published_at is None for r in rows)  # waiting for the relay


async def test_a_second_blocked_report_while_stalled_opens_no_second_episode(
    sessions: async_sessionmaker[AsyncSession], clock: ManualClock
) -> None:
    assert await _apply(sessions, _event(CO, ReportStatus.BLOCKED, clock.now()), clock.now())
    clock.advance(timedelta(hours=1))
    assert (
        await _apply(sessions, _event(LEAD, ReportStatus.BLOCKED, clock.now()), clock.now()) is None
    )
    clock.advance(timedelta(hours=1))
    # The co-agency is fine again, but the lead is still blocked: no recovery yet.
    assert (
        await _apply(sessions, _event(CO, ReportStatus.ON_TRACK, clock.now()), clock.now()) is None
    )
    assert (await _state(sessions)).stall_reason == "blocked"
    assert len(await _outbox(sessions)) == 1


async def test_duplicate_event_ids_are_absorbed_by_the_inbox(
    sessions: async_sessionmaker[AsyncSession], clock: ManualClock
) -> None:
    event = _event(CO, ReportStatus.BLOCKED, clock.now())
    assert await _apply(sessions, event, clock.now()) is not None

    # Redelivered in a later batch...
    clock.advance(timedelta(minutes=5))
    async with sessions() as session, session.begin():
        assert await _deliver(session, event, clock.now()) == (False, None)
    # ...and twice within one batch (one transaction) of another event id.
    again = _event(LEAD, ReportStatus.ON_TRACK, clock.now(), percent=10)
    async with sessions() as session, session.begin():
        first = await _deliver(session, again, clock.now())
        second = await _deliver(session, again, clock.now())
    assert first[0] is True
    assert second == (False, None)

    async with sessions() as session:
        reports = (await session.exec(select(func.count()).select_from(StatusReport))).one()
        inbox = (await session.exec(select(func.count()).select_from(Inbox))).one()
    assert (reports, inbox) == (2, 2)
    assert len(await _outbox(sessions)) == 1  # one episode opened, once


async def _add_states(
    sessions: async_sessionmaker[AsyncSession], due: list[datetime], not_due: datetime
) -> None:
    async with sessions() as session, session.begin():
        for i, next_check in enumerate([*due, not_due], start=1):
            session.add(
                WorkPointState(
                    work_point_id=f"zhaoqing-digital-2024/{i}",
                    tracking_since=START,
                    next_check_at=next_check,
                )
            )


async def test_concurrent_sweeper_claims_on_postgresql_never_share_a_row(
    sessions: async_sessionmaker[AsyncSession], clock: ManualClock
) -> None:
    clock.set(datetime.fromisoformat("2024-09-23T08:00:00+08:00"))
    now = clock.now()
    due = [now - timedelta(days=d) for d in (4, 3, 2, 1)]
    await _add_states(sessions, due, not_due=now + timedelta(days=1))
    due_ids = {f"zhaoqing-digital-2024/{i}" for i in range(1, 5)}

    async with sessions() as first, sessions() as second:
        await first.begin()
        await second.begin()
        claimed_first = await claim_due(await first.connection(), now, 2, skip_locked=True)
        claimed_second = await claim_due(await second.connection(), now, 10, skip_locked=True)
        ids_first = {s.work_point_id for s in claimed_first}
        ids_second = {s.work_point_id for s in claimed_second}
        assert len(ids_first) == 2
        assert [s.work_point_id for s in claimed_first] == [
            "zhaoqing-digital-2024/1",
            "zhaoqing-digital-2024/2",
        ]  # oldest due first
        assert ids_first.isdisjoint(ids_second)
        assert ids_first | ids_second == due_ids  # the row not yet due is never claimed

        # When the first sweeper gives up its claim, its rows become claimable again,
        # still never the ones the second sweeper holds.
        await first.rollback()
        async with sessions() as third, third.begin():
            claimed = await claim_due(await third.connection(), now, 10, skip_locked=True)
            ids_third = {s.work_point_id for s in claimed}
        assert ids_third == ids_first
        await second.rollback()


async def test_an_older_report_of_a_second_lead_does_not_move_the_work_point_back(
    sessions: async_sessionmaker[AsyncSession], clock: ManualClock
) -> None:
    second_lead = uuid.uuid5(uuid.NAMESPACE_URL, "second-lead")
    async with sessions() as session, session.begin():
        view = await session.get(WorkPointView, WP)
        assert view is not None
        view.responsibilities = [
            *view.responsibilities,
            {"agency_id": str(second_lead), "name": "市工信局", "role": "lead"},
        ]
        session.add(view)
    newer = _event(LEAD, ReportStatus.AT_RISK, START + timedelta(days=2), percent=40)
    older = _event(second_lead, ReportStatus.ON_TRACK, START + timedelta(days=1), percent=20)
    clock.advance(timedelta(days=3))
    await _apply(sessions, newer, clock.now())
    await _apply(sessions, older, clock.now())  # the second lead's first report: in order for it

    async with sessions() as session:
        second = await session.get(AgencyProgress, (WP, second_lead))
    assert second is not None and (second.status, second.percent) == ("on_track", 20)
    state = await _state(sessions)
    assert (state.status, state.percent) == ("at_risk", 40)  # still the latest lead report
    assert state.last_lead_report_at == newer.occurred_at


async def test_a_sweep_batch_gives_the_event_loop_a_turn_every_few_judgements(
    sessions: async_sessionmaker[AsyncSession],
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.set(datetime.fromisoformat("2024-09-23T08:00:00+08:00"))
    now = clock.now()
    count = 3 * sweep.YIELD_EVERY + 5
    await _add_states(sessions, [now - timedelta(hours=1)] * count, not_due=now + timedelta(days=1))
    async with sessions() as session, session.begin():
        template = await session.get(WorkPointView, WP)
        assert template is not None
        for i in range(1, count + 1):
            if f"zhaoqing-digital-2024/{i}" == WP:
                continue  # the template itself
            fields = {
                **template.model_dump(),
                "id": f"zhaoqing-digital-2024/{i}",
                "number": i,
                "code": str(i),
            }
            session.add(WorkPointView(**fields))

    turns = 0  # turns the event loop gave to other work (a request, a consumer)
    judged_at: list[int] = []  # `turns` when each work point was judged
    real_judge = sweep.judge_due

    def counting_judge(*args: object, **kwargs: object) -> None:
        judged_at.append(turns)
        real_judge(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sweep, "judge_due", counting_judge)
    done = asyncio.Event()

    async def other_work() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    async with sessions() as session, session.begin():
        claimed = await claim_due(await session.connection(), now, 500, skip_locked=True)
        judged = await sweep.judge_claimed(claimed, now)
    done.set()
    await other
    assert len(judged.verdicts) == len(judged_at) == count
    every = sweep.YIELD_EVERY
    assert all(judged_at[i + every] > judged_at[i] for i in range(count - every))
    assert judged_at[every - 1] == judged_at[0]  # in between, judgements run back to back
