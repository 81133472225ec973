"""Progress persistence: read model upkeep, applying reports, judging, and claiming due rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from duban_shared import topics
from duban_shared.events import (
    AgencyRef,
    ReportStatus,
    StallReason,
    StallTransition,
    StallTransitionKind,
    StatusEvent,
    WorkPointSnapshot,
)
from duban_shared.kafka import current_traceparent
from duban_shared.outbox import outbox_row
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress import history
from progress.domain import Policy, judge, transition_needed
from progress.models import (
    AgencyProgress,
    OutboxMessage,
    StatusReport,
    WorkPointState,
    WorkPointView,
)


async def upsert_view(
    session: AsyncSession,
    snap: WorkPointSnapshot,
    traceparent: str | None,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
) -> None:
    """Apply a registry snapshot to the read model; start tracking a new work point."""
    view = await session.get(WorkPointView, snap.work_point_id)
    if view is not None and view.snapshot_at > snap.occurred_at:
        return  # an older snapshot redelivered after a newer one
    fields = {
        "plan_slug": snap.plan_slug,
        "number": snap.number,
        "title": snap.title,
        "responsibilities": [r.model_dump(mode="json") for r in snap.responsibilities],
        "report_every_working_days": snap.report_every_working_days,
        "grace_working_days": snap.grace_working_days,
        "deleted": snap.deleted,
        "registry_traceparent": traceparent,
        "snapshot_at": snap.occurred_at,
    }
    if view is None:
        view = WorkPointView.model_validate({"id": snap.work_point_id, **fields})
    else:
        view.sqlmodel_update(fields)
    session.add(view)
    state = await session.get(WorkPointState, snap.work_point_id)
    if snap.deleted:
        if state is not None:
            state.next_check_at = None
            session.add(state)
        return
    if state is None:
        state = WorkPointState(work_point_id=snap.work_point_id, tracking_since=now)
    blocked = await _any_blocked(session, snap.work_point_id)
    _rejudge(session, view, state, now, any_blocked=blocked, trigger=None, calendar=calendar)


async def apply_report(
    session: AsyncSession,
    event: StatusEvent,
    view: WorkPointView,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
) -> StallTransition | None:
    """Store a report, update the agency's and the work point's state, and judge again.

    An out-of-order report (older than the agency's latest) is stored and flagged but does not
    move any state backwards.
    """
    latest = await session.get(AgencyProgress, (event.work_point_id, event.agency_id))
    out_of_order = latest is not None and event.occurred_at < latest.last_report_at
    await history.append(
        session,
        StatusReport(
            event_id=event.event_id,
            work_point_id=event.work_point_id,
            agency_id=event.agency_id,
            status=event.status.value,
            percent=event.percent,
            note=event.note,
            occurred_at=event.occurred_at,
            received_at=event.received_at,
            stored_at=now,
            out_of_order=out_of_order,
            chain_seq=0,
            prev_hash="",
            row_hash="",
        ),
    )
    state = await session.get(WorkPointState, event.work_point_id)
    if state is None:
        state = WorkPointState(work_point_id=event.work_point_id, tracking_since=now)
    if not out_of_order:
        if latest is None:
            latest = AgencyProgress(
                work_point_id=event.work_point_id,
                agency_id=event.agency_id,
                status=event.status.value,
                last_report_at=event.occurred_at,
            )
        latest.status, latest.percent = event.status.value, event.percent
        latest.last_report_at = event.occurred_at
        session.add(latest)
        # With several leads, an older report of one lead must not replace a newer one's.
        if view.role_of(event.agency_id) == "lead" and (
            state.last_lead_report_at is None or event.occurred_at >= state.last_lead_report_at
        ):
            state.status, state.percent = event.status.value, event.percent
            state.last_lead_report_at = event.occurred_at
        await session.flush()
    state.last_traceparent = current_traceparent()
    any_blocked = await _any_blocked(session, event.work_point_id)
    return _rejudge(
        session, view, state, now, any_blocked=any_blocked, trigger=event, calendar=calendar
    )


async def _any_blocked(session: AsyncSession, wp_id: str) -> bool:
    rows = await session.exec(
        select(AgencyProgress.agency_id).where(
            AgencyProgress.work_point_id == wp_id,
            AgencyProgress.status == ReportStatus.BLOCKED.value,
        )
    )
    return rows.first() is not None


def _rejudge(
    session: AsyncSession,
    view: WorkPointView,
    state: WorkPointState,
    now: datetime,
    *,
    any_blocked: bool,
    trigger: StatusEvent | None,
    calendar: WorkingCalendar,
) -> StallTransition | None:
    """Judge the work point, persist the verdict, and queue a transition if one happened."""
    policy = Policy(view.report_every_working_days, view.grace_working_days)
    verdict = judge(
        now=now,
        last_heard=state.last_heard(),
        any_blocked=any_blocked,
        policy=policy,
        calendar=calendar,
    )
    state.next_check_at = verdict.next_check_at
    kind = transition_needed(state.stall_reason, verdict)
    transition = None
    if kind == "opened":
        assert verdict.reason is not None
        state.stall_episode_id = uuid.uuid4()
        state.stall_reason = verdict.reason.value
        state.stalled_since = now
        transition = _transition(view, state, StallTransitionKind.OPENED, verdict.reason, now)
    elif kind == "recovered":
        assert state.stall_reason is not None
        transition = _transition(
            view, state, StallTransitionKind.RECOVERED, StallReason(state.stall_reason), now
        )
        state.stall_episode_id = state.stall_reason = state.stalled_since = None
    session.add(state)
    if transition is not None:
        transition = transition.model_copy(
            update={
                "triggered_by_event_id": trigger.event_id if trigger else None,
                "silent_working_days": verdict.silent_working_days,
                "note": trigger.note if trigger else None,
            }
        )
        session.add(outbox_row(OutboxMessage, topics.STALLS, view.id, transition.to_bytes(), now))
    return transition


def _transition(
    view: WorkPointView,
    state: WorkPointState,
    kind: StallTransitionKind,
    reason: StallReason,
    now: datetime,
) -> StallTransition:
    assert state.stall_episode_id is not None
    refs = view.responsibilities
    return StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=now,
        work_point_id=view.id,
        episode_id=state.stall_episode_id,
        kind=kind,
        reason=reason,
        work_point_number=view.number,
        work_point_title=view.title,
        lead_agencies=[
            AgencyRef(agency_id=r["agency_id"], name=r["name"]) for r in refs if r["role"] == "lead"
        ],
        co_agencies=[
            AgencyRef(agency_id=r["agency_id"], name=r["name"]) for r in refs if r["role"] == "co"
        ],
    )


def _refs(responsibilities: list[dict[str, Any]], role: str) -> list[AgencyRef]:
    return [
        AgencyRef(agency_id=r["agency_id"], name=r["name"])
        for r in responsibilities
        if r["role"] == role
    ]


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool
) -> list[WorkPointState]:
    """Lock and return the work points whose next check is due (other sweepers skip them)."""
    query = (
        select(WorkPointState)
        .where(col(WorkPointState.next_check_at) <= now)
        .order_by(col(WorkPointState.next_check_at))
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list((await session.exec(query)).all())


async def rejudge_due(
    session: AsyncSession,
    state: WorkPointState,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
) -> StallTransition | None:
    """Re-judge a claimed due work point; return the transition queued, if any."""
    view = await session.get(WorkPointView, state.work_point_id)
    if view is None or view.deleted:
        state.next_check_at = None
        session.add(state)
        return None
    blocked = await _any_blocked(session, state.work_point_id)
    return _rejudge(session, view, state, now, any_blocked=blocked, trigger=None, calendar=calendar)
