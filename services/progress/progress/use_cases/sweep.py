"""The sweeper: judges work points whose next check is due, on a timer, and marks supervision
notices whose reply deadline passed `overdue`.

Cost follows the due rows (an indexed `next_check_at`), not all rows. On PostgreSQL due rows are
claimed with FOR UPDATE SKIP LOCKED, so replicas side by side never judge the same row twice.
Each sweep is a new trace; each transition it causes gets a span linked to the work point's last
status event's span (the trace the report started).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime

from duban_shared import attributes as attr
from duban_shared.clock import Clock
from duban_shared.events import StallTransition
from duban_shared.kafka import link_to
from duban_shared.metrics import ServiceMetrics
from duban_shared.outbox import OutboxRelay
from duban_shared.runtime import run_periodically
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from opentelemetry import context as otel_context
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.store import states
from progress.store.models import WorkPointState
from progress.use_cases.judging import rejudge
from progress.use_cases.notices import mark_overdue

log = logging.getLogger(__name__)


class Sweeper:
    """Judges work points whose verdict may have changed with time; run sweep_once() from a timer
    or a test."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        tracer: Tracer,
        relay: OutboxRelay,
        *,
        batch_size: int,
        skip_locked: bool,
        calendar: WorkingCalendar = OFFICIAL,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._sessions = sessions
        self._clock = clock
        self._tracer = tracer
        self._relay = relay
        self._batch_size = batch_size
        self._skip_locked = skip_locked
        self._calendar = calendar
        self._official_seen: object = None  # the calendar's official years at the last check

    async def sweep_once(self) -> int:
        """Judge every due work point, batch by batch; return the transitions queued.

        The first sweep (and any after the calendar's official years changed) first makes due
        the work points judged on a provisional year that is now official, so they are judged
        again here on the official arrangement.
        """
        total = 0
        with self._tracer.start_as_current_span(
            "sweep work points", context=otel_context.Context()
        ) as span:
            official = self._calendar.official_fingerprint()
            if official != self._official_seen:
                async with self._sessions() as session, session.begin():
                    again = await states.due_where_now_official(
                        session, self._calendar, self._clock.now()
                    )
                span.set_attribute(attr.SWEEP_CALENDAR_REJUDGED, again)
                if again:
                    log.info(
                        "%d work points judged on a provisional calendar year that is now "
                        "official: judging them again",
                        again,
                    )
                self._official_seen = official
            while True:
                now = self._clock.now()
                async with self._sessions() as session, session.begin():
                    due = await states.claim_due(
                        session, now, self._batch_size, skip_locked=self._skip_locked
                    )
                    judged = await rejudge_claimed(session, due, now, self._calendar)
                    for state, transition in judged:
                        if transition is None:
                            continue
                        total += 1
                        # A span per transition, linked to the last report's trace: a sweep
                        # judging thousands of rows stays one small trace.
                        self._tracer.start_span(
                            "stall transition",
                            links=link_to(state.last_traceparent),
                            attributes={
                                attr.WORK_POINT_ID: state.work_point_id,
                                attr.STALL_TRANSITION: transition.kind.value,
                                attr.STALL_LEVEL: transition.level.value,
                                **(
                                    {attr.STALL_REASON: transition.reason.value}
                                    if transition.reason is not None
                                    else {}
                                ),
                            },
                        ).end()
                if total:
                    self._relay.wake()
                if len(due) < self._batch_size:
                    break
            span.set_attribute(attr.SWEEP_TRANSITIONS, total)
            overdue = await self.mark_overdue_notices()
            span.set_attribute(attr.NOTICE_OVERDUE, overdue)
        return total + overdue

    async def mark_overdue_notices(self) -> int:
        """Mark every issued notice whose reply deadline passed `overdue` (once each: the state
        leaves `issued` in the same transaction that queues the transition); return how many."""
        marked = 0
        while True:
            now = self._clock.now()
            async with self._sessions() as session, session.begin():
                late = await mark_overdue(session, now, self._batch_size)
                for notice in late:
                    self._tracer.start_span(
                        "notice overdue",
                        attributes={
                            attr.NOTICE_ID: str(notice.id),
                            attr.NOTICE_STATE: notice.status,
                            attr.WORK_POINT_ID: notice.work_point_id,
                        },
                    ).end()
            marked += len(late)
            if late:
                if self._metrics is not None:
                    self._metrics.notices.add(len(late), {attr.NOTICE_STATE: "overdue"})
                self._relay.wake()
            if len(late) < self._batch_size:
                return marked

    async def run(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Sweep every interval until stopped; a failed sweep is logged and retried."""
        await run_periodically(self.sweep_once, stop, interval_seconds, name="sweep", log=log)


YIELD_EVERY = 20
"""Work points judged between two turns of the event loop during a sweep (about 10 ms)."""


async def rejudge_claimed(
    session: AsyncSession,
    claimed: Iterable[WorkPointState],
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
) -> list[tuple[WorkPointState, StallTransition | None]]:
    """Re-judge claimed due work points, loading their views and blocked flags in two queries."""
    due = list(claimed)
    ids = [s.work_point_id for s in due]
    views = await states.views(session, ids)
    blocked = await states.blocked_work_points(session, ids)
    results: list[tuple[WorkPointState, StallTransition | None]] = []
    for position, state in enumerate(due):
        if position and position % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a judgement is ~0.5 ms: let requests and consumers run
        view = views.get(state.work_point_id)
        if view is None or view.deleted:
            state.next_check_at = None
            session.add(state)
            results.append((state, None))
            continue
        transition = rejudge(
            session, view, state, now, blocked=state.work_point_id in blocked, calendar=calendar
        )
        results.append((state, transition))
    return results
