"""Applying status reports: the report joins the history, the agency's and the work point's
state follow, and the work point is judged again at once (use_cases.judging)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from duban_shared.clock import Clock
from duban_shared.events import StallTransition, StatusEvent
from duban_shared.kafka import current_traceparent
from duban_shared.outbox import OutboxRelay
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain import chain
from progress.domain.checks import DEFAULT_EARLIEST_BEFORE_PLAN, check_report
from progress.domain.reports import (
    CLOSED,
    DEFAULT_LATE_AFTER,
    IN_REVIEW,
    RECENT_PERCENTS_KEPT,
    closure_after_lead_report,
    delay_working_days,
    is_late,
    work_point_kpis,
)
from progress.store import states
from progress.store.models import AgencyProgress, WorkPointState, WorkPointView
from progress.store.states import Loaded
from progress.use_cases.judging import rejudge


def apply_report(
    session: AsyncSession,
    event: StatusEvent,
    view: WorkPointView,
    now: datetime,
    loaded: Loaded,
    calendar: WorkingCalendar = OFFICIAL,
    late_after: timedelta = DEFAULT_LATE_AFTER,
) -> StallTransition | None:
    """Store a report, update the agency's and the work point's state, and judge again.

    1. The report joins the work point's hash-chained history, flagged late when it arrived
       more than `late_after` after the moment it describes, and out of order when older than
       the agency's latest report. An out-of-order report moves no state.
    2. The agency's latest status, percent and KPIs (merged by metric) are updated, with its
       delay: working days past its report period since its previous report.
    3. A lead's report sets the work point's status, percent and recent percents; `done` from
       every lead puts the work point in closure review, anything else from a lead withdraws a
       pending review. A closed work point keeps its reports but is judged no more.

    `loaded` is the work point's rows (states.load); the caller writes them back
    (states.write_back) once its reports are applied.
    """
    latest = loaded.progress.get(event.agency_id)
    state = loaded.state
    if state is None:
        state = loaded.state = WorkPointState(work_point_id=event.work_point_id, tracking_since=now)
    out_of_order = latest is not None and event.occurred_at < latest.last_report_at
    delay = None
    if not out_of_order:
        previous = latest.last_report_at if latest is not None else state.tracking_since
        delay = delay_working_days(
            previous, event.occurred_at, view.report_every_working_days, calendar
        )
    report = chain.NewReport(
        event_id=event.event_id,
        work_point_id=event.work_point_id,
        agency_id=event.agency_id,
        status=event.status.value,
        percent=event.percent,
        kpis=dict(event.kpis),
        note=event.note,
        evidence=list(event.evidence),
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        stored_at=now,
        out_of_order=out_of_order,
        late=is_late(event.occurred_at, event.received_at or now, late_after),
        delay_working_days=delay,
        reported_by=event.reported_by,
    )
    chain.extend(state, report)
    loaded.reports.append(report)
    state.last_traceparent = current_traceparent()
    if out_of_order:
        session.add(state)
        return None
    if latest is None:
        latest = loaded.progress[event.agency_id] = AgencyProgress(
            work_point_id=event.work_point_id,
            agency_id=event.agency_id,
            status=event.status.value,
            last_report_at=event.occurred_at,
        )
    latest.status, latest.percent = event.status.value, event.percent
    latest.kpis = {**latest.kpis, **event.kpis}
    latest.last_report_at = event.occurred_at
    session.add(latest)
    if state.closure == CLOSED:
        session.add(state)
        return None
    # With several leads, an older report of one lead must not replace a newer one's.
    if view.role_of(event.agency_id) == "lead" and (
        state.last_lead_report_at is None or event.occurred_at >= state.last_lead_report_at
    ):
        state.status, state.percent = event.status.value, event.percent
        state.last_lead_report_at = event.occurred_at
        state.recent_percents = [*state.recent_percents, event.percent][-RECENT_PERCENTS_KEPT:]
        leads = [loaded.progress.get(a) for a in view.agency_ids("lead")]
        closure = closure_after_lead_report(
            state.closure, event.status, (p.status if p is not None else None for p in leads)
        )
        if closure != state.closure:
            state.closure = closure
            state.closure_requested_at = now if closure == IN_REVIEW else None
    if event.kpis:
        state.kpis = work_point_kpis(
            view.targets, view.agency_ids("lead"), loaded.progress.values()
        )
    return rejudge(
        session, view, state, now, blocked=loaded.any_blocked(), trigger=event, calendar=calendar
    )


async def apply_one_report(
    session: AsyncSession,
    event: StatusEvent,
    view: WorkPointView,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
    late_after: timedelta = DEFAULT_LATE_AFTER,
) -> StallTransition | None:
    """Apply a single report: load its work point's rows, apply it, write them back."""
    loaded = (await states.load(session, [event.work_point_id]))[event.work_point_id]
    transition = apply_report(session, event, view, now, loaded, calendar, late_after)
    await states.write_back(session, [loaded])
    return transition


@dataclass
class ReportBatch:
    """A batch of status events being applied in one transaction (see ApplyReports.batch)."""

    session: AsyncSession
    now: datetime
    views: dict[str, WorkPointView]
    loaded: dict[str, Loaded]
    seen: set[uuid.UUID]
    calendar: WorkingCalendar
    late_after: timedelta
    earliest_before_plan: timedelta
    inbox: list[dict[str, object]] = field(default_factory=list)
    transitions: int = 0

    def apply(self, event: StatusEvent, topic: str) -> bool:
        """Apply one event; False for one applied before (a redelivery: nothing changes).

        Raises progress.domain.checks.ReportProblem for an event that can never be applied.
        """
        view = check_report(
            self.views.get(event.work_point_id),
            event.work_point_id,
            event.agency_id,
            event.kpis,
            event.occurred_at,
            self.earliest_before_plan,
        )
        if event.event_id in self.seen:
            return False
        self.seen.add(event.event_id)
        self.inbox.append({"event_id": event.event_id, "topic": topic, "processed_at": self.now})
        transition = apply_report(
            self.session,
            event,
            view,
            self.now,
            self.loaded[event.work_point_id],
            self.calendar,
            self.late_after,
        )
        if transition is not None:
            self.transitions += 1
        return True


@dataclass
class ApplyReports:
    """The status consumer's use case: a batch of events, applied in one transaction."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    relay: OutboxRelay
    calendar: WorkingCalendar = OFFICIAL
    late_after: timedelta = DEFAULT_LATE_AFTER
    earliest_before_plan: timedelta = DEFAULT_EARLIEST_BEFORE_PLAN

    @asynccontextmanager
    async def batch(self, events: list[StatusEvent]) -> AsyncIterator[ReportBatch]:
        """A transaction for a batch: the batch's work points, their states, the agencies'
        latest reports and the inbox entries are read up front in four queries; each event is
        then applied in memory (ReportBatch.apply) and everything is written when the block
        ends, then committed; the outbox relay is woken when a transition was queued. An
        exception out of the block rolls everything back."""
        wp_ids = {e.work_point_id for e in events}
        async with self.sessions() as session, session.begin():
            batch = ReportBatch(
                session=session,
                now=self.clock.now(),
                views=await states.views(session, wp_ids),
                seen=await states.seen_events(session, [e.event_id for e in events]),
                loaded=await states.load(session, wp_ids),
                calendar=self.calendar,
                late_after=self.late_after,
                earliest_before_plan=self.earliest_before_plan,
            )
            yield batch
            # write_back first: any statement autoflushes the session, and a flush would update
            # the changed states and agency rows one statement each instead of in bulk.
            await states.write_back(session, batch.loaded.values())
            await states.add_to_inbox(session, batch.inbox)
        if batch.transitions:
            self.relay.wake()
