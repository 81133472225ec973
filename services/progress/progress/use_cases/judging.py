"""Judging a work point and announcing what changed: every change of its facts re-judges it at
once (progress.domain.stall); a change of its episode (opened, level changed, recovered, closed)
is recorded in `stall_transition` and queued in the outbox in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duban_shared import topics
from duban_shared.events import (
    AgencyRef,
    Level,
    StallReason,
    StallTransition,
    StallTransitionKind,
    StatusEvent,
)
from duban_shared.kafka import current_traceparent
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.stall import Verdict, judge, transition_needed
from progress.store.mapping import facts_of, policy_of
from progress.store.models import OutboxMessage, TransitionRecord, WorkPointState, WorkPointView
from progress.store.rows import StateRow, ViewRow

AnyView = WorkPointView | ViewRow
"""A work point's read model: the ORM instance, or the status consumer's plain row."""
AnyState = WorkPointState | StateRow
"""A work point's state: the ORM instance, or the status consumer's plain row."""


def rejudge(
    session: AsyncSession,
    view: WorkPointView,
    state: WorkPointState,
    now: datetime,
    *,
    blocked: bool,
    trigger: StatusEvent | None = None,
    calendar: WorkingCalendar = OFFICIAL,
) -> StallTransition | None:
    """Judge the work point, persist the verdict, and queue a transition if one happened
    (`judge_again`, its rows added to the session)."""
    judged = judge_again(view, state, now, blocked=blocked, trigger=trigger, calendar=calendar)
    session.add(state)
    if judged is None:
        return None
    transition, record, outbox = judged
    outbox["traceparent"] = current_traceparent()
    session.add(TransitionRecord(**record))
    session.add(OutboxMessage(**outbox))
    return transition


Judged = tuple[StallTransition, dict[str, Any], dict[str, Any]]
"""A transition, its stall_transition row and its outbox row (columns by name; the outbox
row's `traceparent` is for the caller to set)."""


def judge_again(
    view: AnyView,
    state: AnyState,
    now: datetime,
    *,
    blocked: bool,
    trigger: StatusEvent | None = None,
    calendar: WorkingCalendar = OFFICIAL,
) -> Judged | None:
    """Judge the work point and keep the verdict on its state; the transition, if one
    happened, with the rows that record and queue it (nothing is written here).

    The years the judgement counted on a provisional calendar are kept with it, so it is marked
    as provisional and made again once their official arrangement is installed.
    """
    with calendar.recording() as provisional:
        verdict = judge(
            now=now,
            facts=facts_of(view, state, blocked=blocked),
            policy=policy_of(view),
            calendar=calendar,
        )
    state.provisional_years = sorted(provisional) or None
    before = Episode.of(state)
    state.level = verdict.level.value
    state.reasons = [r.value for r in verdict.reasons]
    state.expected_percent = verdict.expected_percent
    state.judged_at = now
    state.next_check_at = verdict.next_check_at
    kind = transition_needed(before.level, verdict)
    judged = None
    if kind == StallTransitionKind.OPENED:
        state.stall_episode_id, state.stalled_since = derived_id(trigger, "episode"), now
    if kind is not None:
        judged = transition_rows(view, state, kind, verdict, before, now, trigger)
    if kind == StallTransitionKind.RECOVERED:
        end_episode(state)
    return judged


def derived_id(trigger: StatusEvent | None, what: str) -> uuid.UUID:
    """The id of what a report caused (an episode, a transition): derived from the report's
    event_id, so applying the same report again (re-read after a database restore) makes the
    same ids and the notifier's inbox and alerts recognise them; random without a report (a
    sweep, a closure, a notice)."""
    return uuid.uuid5(trigger.event_id, what) if trigger is not None else uuid.uuid4()


@dataclass(frozen=True)
class Episode:
    """The open episode's colour and headline reason before a new verdict replaces them."""

    level: Level | None
    reason: StallReason | None

    @classmethod
    def of(cls, state: AnyState) -> Episode:
        """The episode open on a work point (both None without one)."""
        level, reason = state.open_level, state.stall_reason
        return cls(Level(level) if level else None, StallReason(reason) if reason else None)


def end_episode(state: AnyState) -> None:
    """The work point's episode is over (recovered or closed)."""
    state.stall_episode_id = state.stalled_since = None


def emit(
    session: AsyncSession,
    view: WorkPointView,
    state: WorkPointState,
    kind: StallTransitionKind,
    verdict: Verdict,
    before: Episode,
    now: datetime,
    trigger: StatusEvent | None,
    note: str | None = None,
) -> StallTransition:
    """Record a transition for the timeline and queue it for the notifier (in the session's
    transaction, in the current trace)."""
    transition, record, outbox = transition_rows(
        view, state, kind, verdict, before, now, trigger, note
    )
    outbox["traceparent"] = current_traceparent()
    session.add(TransitionRecord(**record))
    session.add(OutboxMessage(**outbox))
    return transition


def transition_rows(
    view: AnyView,
    state: AnyState,
    kind: StallTransitionKind,
    verdict: Verdict,
    before: Episode,
    now: datetime,
    trigger: StatusEvent | None,
    note: str | None = None,
) -> Judged:
    """A transition, the row that records it for the timeline and the outbox row that queues
    it for the notifier."""
    ended = kind in (StallTransitionKind.RECOVERED, StallTransitionKind.CLOSED)
    headline = before.reason if ended else verdict.reason
    previous = before.level
    transition = StallTransition(
        event_id=derived_id(trigger, f"transition:{kind.value}"),
        occurred_at=now,
        work_point_id=view.id,
        episode_id=state.stall_episode_id,
        kind=kind,
        level=verdict.level,
        previous_level=previous,
        reason=headline,
        reasons=list(verdict.reasons),
        work_point_number=view.number,
        work_point_code=view.code,
        work_point_title=view.title,
        lead_agencies=_refs(view, "lead"),
        co_agencies=_refs(view, "co"),
        coordinating_agency_id=view.coordinating_agency_id,
        plan_slug=view.plan_slug,
        silent_working_days=verdict.silent_working_days,
        triggered_by_event_id=trigger.event_id if trigger else None,
        note=trigger.note if trigger else note,
    )
    record = {
        "event_id": transition.event_id,
        "work_point_id": view.id,
        "episode_id": transition.episode_id,
        "kind": kind.value,
        "level": transition.level.value,
        "previous_level": previous.value if previous else None,
        "reasons": [r.value for r in verdict.reasons],
        "triggered_by_event_id": transition.triggered_by_event_id,
        "after_report_seq": state.report_seq,
        "occurred_at": now,
    }
    outbox = {
        "topic": topics.STALLS,
        "key": view.id,
        "payload": transition.to_bytes(),
        "traceparent": None,
        "created_at": now,
    }
    return transition, record, outbox


def _refs(view: AnyView, role: str) -> list[AgencyRef]:
    return [
        AgencyRef(agency_id=r["agency_id"], name=r["name"])
        for r in view.responsibilities
        if r["role"] == role
    ]
