"""Applying status reports: the report joins the history, the agency's and the work point's
state follow, and the work point is judged again at once (use_cases.judging).

This is the status consumer's hot path: it works on plain rows (store.rows) read and written
with SQLAlchemy Core, a few statements per batch, never on ORM instances."""

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
from progress.store import rows
from progress.store.rows import Loaded, ProgressRow, StateRow, ViewRow, Writes
from progress.use_cases.judging import AnyView, Judged, judge_again


def apply_report(
    event: StatusEvent,
    view: AnyView,
    now: datetime,
    loaded: Loaded,
    writes: Writes,
    traceparent: str | None,
    calendar: WorkingCalendar = OFFICIAL,
    late_after: timedelta = DEFAULT_LATE_AFTER,
) -> Judged | None:
    """Apply a report to its work point's rows in memory, and judge the work point again.

    1. The report joins the work point's hash-chained history, flagged late when it arrived
       more than `late_after` after the moment it describes, and out of order when older than
       the agency's latest report. An out-of-order report moves no state.
    2. The agency's latest status, percent and KPIs (merged by metric) are updated, with its
       delay: working days past its report period since its previous report.
    3. A lead's report sets the work point's status, percent and recent percents; `done` from
       every lead puts the work point in closure review, anything else from a lead withdraws a
       pending review. A closed work point keeps its reports but is judged no more.

    `loaded` is the work point's rows (rows.load), `traceparent` the report's trace (kept on
    the state, for the sweeper's links). A transition's rows join `writes` (the outbox row
    without its traceparent: the caller knows the span it belongs to); the caller writes
    everything (rows.write) once its reports are applied.
    """
    latest = loaded.progress.get(event.agency_id)
    state = loaded.state
    if state is None:
        state = loaded.state = StateRow(work_point_id=event.work_point_id, tracking_since=now)
    occurred_at = event.occurred_at
    out_of_order = latest is not None and occurred_at < latest.last_report_at
    delay = None
    if not out_of_order:
        previous = latest.last_report_at if latest is not None else state.tracking_since
        delay = delay_working_days(previous, occurred_at, view.report_every_working_days, calendar)
    status = event.status.value
    report = chain.NewReport(
        event_id=event.event_id,
        work_point_id=event.work_point_id,
        agency_id=event.agency_id,
        status=status,
        percent=event.percent,
        kpis=dict(event.kpis),
        note=event.note,
        evidence=list(event.evidence),
        occurred_at=occurred_at,
        received_at=event.received_at,
        stored_at=now,
        out_of_order=out_of_order,
        late=is_late(occurred_at, event.received_at or now, late_after),
        delay_working_days=delay,
        reported_by=event.reported_by,
    )
    chain.extend(state, report)
    loaded.reports.append(report)
    state.last_traceparent = traceparent
    if out_of_order:
        return None
    if latest is None:
        latest = loaded.progress[event.agency_id] = ProgressRow(
            work_point_id=event.work_point_id,
            agency_id=event.agency_id,
            status=status,
            last_report_at=occurred_at,
        )
    latest.status, latest.percent = status, event.percent
    if event.kpis:
        latest.kpis = {**latest.kpis, **event.kpis}
    latest.last_report_at = occurred_at
    loaded.touched.add(event.agency_id)
    if state.closure == CLOSED:
        return None
    # With several leads, an older report of one lead must not replace a newer one's.
    if view.role_of(event.agency_id) == "lead" and (
        state.last_lead_report_at is None or occurred_at >= state.last_lead_report_at
    ):
        state.status, state.percent = status, event.percent
        state.last_lead_report_at = occurred_at
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
    judged = judge_again(
        view, state, now, blocked=loaded.any_blocked(), trigger=event, calendar=calendar
    )
    if judged is not None:
        _, record, outbox = judged
        writes.transitions.append(record)
        writes.outbox.append(outbox)
    return judged


async def apply_one_report(
    session: AsyncSession,
    event: StatusEvent,
    view: AnyView,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
    late_after: timedelta = DEFAULT_LATE_AFTER,
) -> StallTransition | None:
    """Apply a single report in the session's transaction: load its work point's rows, apply
    it, write them back (in the current trace)."""
    conn = await session.connection()
    loaded = (await rows.load(conn, [event.work_point_id]))[event.work_point_id]
    writes = Writes()
    traceparent = current_traceparent()
    judged = apply_report(event, view, now, loaded, writes, traceparent, calendar, late_after)
    for outbox in writes.outbox:
        outbox["traceparent"] = traceparent
    await rows.write(conn, [loaded], writes)
    return judged[0] if judged is not None else None


@dataclass
class ReportBatch:
    """A batch of status events being applied in one transaction (see ApplyReports.batch)."""

    now: datetime
    views: dict[str, ViewRow]
    loaded: dict[str, Loaded]
    seen: set[uuid.UUID]
    calendar: WorkingCalendar
    late_after: timedelta
    earliest_before_plan: timedelta
    writes: Writes = field(default_factory=Writes)

    def apply(self, event: StatusEvent, topic: str, traceparent: str | None) -> Judged | None:
        """Apply one event; None when it caused no transition, or was applied before (a
        redelivery: nothing changes).

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
            return None
        self.seen.add(event.event_id)
        self.writes.inbox.append(
            {"event_id": event.event_id, "topic": topic, "processed_at": self.now}
        )
        return apply_report(
            event,
            view,
            self.now,
            self.loaded[event.work_point_id],
            self.writes,
            traceparent,
            self.calendar,
            self.late_after,
        )


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
        latest reports and the inbox entries are read up front in four queries (plain rows,
        SQLAlchemy Core); each event is then applied in memory (ReportBatch.apply) and
        everything is written when the block ends, one statement per table, then committed;
        the outbox relay is woken when a transition was queued. An exception out of the block
        rolls everything back."""
        wp_ids = {e.work_point_id for e in events}
        async with self.sessions() as session, session.begin():
            conn = await session.connection()
            batch = ReportBatch(
                now=self.clock.now(),
                views=await rows.views(conn, wp_ids),
                seen=await rows.seen_events(conn, [e.event_id for e in events]),
                loaded=await rows.load(conn, wp_ids),
                calendar=self.calendar,
                late_after=self.late_after,
                earliest_before_plan=self.earliest_before_plan,
            )
            yield batch
            await rows.write(conn, batch.loaded.values(), batch.writes)
        if batch.writes.outbox:
            self.relay.wake()
