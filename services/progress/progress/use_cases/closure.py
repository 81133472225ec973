"""Closure review (办结销号): the coordinating office approves or rejects a work point whose lead
agencies all reported `done`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from duban_shared.audit import Actor, record_audit
from duban_shared.auth import Principal, require_office
from duban_shared.clock import Clock
from duban_shared.events import Level, StallTransition, StallTransitionKind
from duban_shared.outbox import OutboxRelay
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.reports import CLOSED, IN_REVIEW
from progress.domain.stall import Verdict
from progress.store import queries, states
from progress.store.models import (
    AgencyProgress,
    AuditLog,
    ClosureDecision,
    WorkPointState,
    WorkPointView,
)
from progress.use_cases.judging import Episode, emit, end_episode, rejudge
from progress.use_cases.reading import tracked


class ClosureConflict(Exception):
    """A closure decision on a work point that is not in review."""

    def __init__(self, closure: str | None) -> None:
        super().__init__(closure)
        self.closure = closure


async def decide_closure(
    session: AsyncSession,
    view: WorkPointView,
    state: WorkPointState,
    *,
    approve: bool,
    reason: str | None,
    decided_by: str,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
) -> StallTransition | None:
    """The coordinating office's decision on a work point in review (办结销号).

    Approved: closed, no more checks; an open episode ends with a `closed` transition (one is
    emitted without an episode too, so the lead hears of it). Rejected: back in progress with the
    reason on record, judged again at once.
    """
    if state.closure != IN_REVIEW:
        raise ClosureConflict(state.closure)
    session.add(
        ClosureDecision(
            work_point_id=view.id,
            decision="approved" if approve else "rejected",
            reason=reason,
            decided_by=decided_by,
            after_report_seq=state.report_seq,
            decided_at=now,
        )
    )
    if not approve:
        state.closure = state.closure_requested_at = None
        blocked = await states.blocked_work_points(session, [view.id])
        return rejudge(session, view, state, now, blocked=bool(blocked), calendar=calendar)
    before = Episode.of(state)
    state.closure, state.closed_at, state.next_check_at = CLOSED, now, None
    state.provisional_years = None
    state.level, state.reasons = Level.GREEN.value, []
    verdict = Verdict(reasons=(), silent_working_days=0, next_check_at=None)
    transition = emit(
        session, view, state, StallTransitionKind.CLOSED, verdict, before, now, None, reason
    )
    end_episode(state)
    session.add(state)
    return transition


def _closure_state(state: WorkPointState) -> dict[str, object]:
    """What the audit trail shows of a work point's closure."""
    return {"closure": state.closure, "level": state.level, "reasons": list(state.reasons or [])}


Decided = tuple[WorkPointView, WorkPointState, dict[uuid.UUID, AgencyProgress]]
"""A work point after a decision: its view, its state and its agencies' latest reports."""


@dataclass
class ClosureReview:
    """The office's closure decisions, each in a transaction of its own."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    relay: OutboxRelay
    calendar: WorkingCalendar = OFFICIAL

    async def decide(
        self,
        principal: Principal,
        plan_slug: str,
        code: str,
        *,
        approve: bool,
        reason: str | None,
    ) -> Decided:
        """Decide on a work point in review as `principal` (the office only); return its rows
        after the decision (the view, the state and the agencies' latest reports).

        Raises ApiError 403/404 when the caller may not or the work point is not tracked, and
        ClosureConflict when it is not in review.
        """
        require_office(principal)
        async with self.sessions() as session:
            view, state = await tracked(session, principal, plan_slug, code)
            await session.refresh(state, with_for_update=True)
            now = self.clock.now()
            before = _closure_state(state)
            transition = await decide_closure(
                session,
                view,
                state,
                approve=approve,
                reason=reason,
                decided_by=principal.client_id,
                now=now,
                calendar=self.calendar,
            )
            record_audit(
                session,
                AuditLog,
                actor=Actor.of(principal),
                action="closure.approved" if approve else "closure.rejected",
                subject=view.id,
                at=now,
                before=before,
                after={**_closure_state(state), "reason": reason},
            )
            await session.commit()
            if transition is not None:
                self.relay.wake()
            latest = await queries.latest_reports(session, [view.id])
            return view, state, latest.get(view.id, {})
