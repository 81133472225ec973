"""Escalation: what each alert's policy says is due, planned as deliveries.

The consumer advances an alert in the transaction that fired or changed it (the at-once steps
go out with no timer in between); the escalator advances alerts whose `next_step_at` has come,
claimed with FOR UPDATE SKIP LOCKED so replicas never plan the same step twice (and the
notification log's unique cause id would refuse it anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from duban_shared.clock import Clock
from duban_shared.events import Level, StallReason
from duban_shared.runtime import run_periodically
from duban_shared.workdays import WorkingCalendar
from opentelemetry import context as otel_context
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import ACKNOWLEDGED, ISSUED, NOTICE, RESOLVED
from notifier.domain.delivery import NOTICE_OVERDUE, step_event
from notifier.domain.planner import AlertClock, due_steps
from notifier.domain.policy import PolicySet
from notifier.store import alerts as alert_store
from notifier.store.models import Alert
from notifier.use_cases.planning import plan, recipients

log = logging.getLogger(__name__)


async def advance(
    session: AsyncSession,
    alert: Alert,
    policies: PolicySet,
    now: datetime,
    calendar: WorkingCalendar,
) -> int:
    """Plan every step of the alert's policy that is due at `now`; return rows planned."""
    if alert.state == RESOLVED:
        alert.next_step_at = None
        return 0
    policy = policies.for_plan(alert.plan_slug or "")
    if alert.kind == NOTICE:
        if alert.state == ISSUED:  # not overdue: nothing escalates yet
            alert.next_step_at = None
            return 0
        policy = policy.for_notices()
    levels, reasons = Level(alert.level), tuple(StallReason(r) for r in alert.reasons)
    alert.urgent = policy.is_urgent(levels, reasons)
    clock = AlertClock(
        fired_at=alert.fired_at,
        acknowledged_at=alert.acknowledged_at if alert.state == ACKNOWLEDGED else None,
        level=levels,
        reasons=reasons,
        done={k: [datetime.fromisoformat(t) for t in v] for k, v in alert.steps_done.items()},
    )
    due, next_at = due_steps(policy, clock, now, calendar)
    planned = 0
    done = {k: list(v) for k, v in alert.steps_done.items()}
    for item in due:
        step = item.step
        occurrence = f"{step.id}@{item.due_at.isoformat()}"
        event = (
            NOTICE_OVERDUE
            if alert.kind == NOTICE
            else step_event(step.notify, repeat=bool(done.get(step.id)))
        )
        people = await recipients(session, alert, step.notify)
        planned += await plan(
            session,
            alert,
            people,
            occurrence=occurrence,
            event=event,
            now=now,
            group_wait=timedelta(minutes=policy.group_window_minutes),
        )
        done.setdefault(step.id, []).append(item.due_at.isoformat())
    alert.steps_done = done
    alert.next_step_at = next_at
    session.add(alert)
    return planned


class Escalator:
    """Advances alerts whose next step has come; run escalate_once() from a timer."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policies: PolicySet,
        calendar: WorkingCalendar,
        clock: Clock,
        tracer: Tracer,
        *,
        skip_locked: bool,
        batch_size: int = 200,
    ) -> None:
        self._sessions = sessions
        self._policies = policies
        self._calendar = calendar
        self._clock = clock
        self._tracer = tracer
        self._skip_locked = skip_locked
        self._batch_size = batch_size
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at due alerts now instead of at the next tick."""
        self._wake.set()

    async def escalate_once(self) -> int:
        """Plan every due step of every due alert; return the deliveries planned."""
        planned = 0
        with self._tracer.start_as_current_span("escalate alerts", context=otel_context.Context()):
            while True:
                now = self._clock.now()
                async with self._sessions() as session, session.begin():
                    alerts = await alert_store.due_alerts(
                        session, now, self._batch_size, skip_locked=self._skip_locked
                    )
                    for alert in alerts:
                        planned += await advance(
                            session, alert, self._policies, now, self._calendar
                        )
                if len(alerts) < self._batch_size:
                    return planned

    async def run(
        self, stop: asyncio.Event, interval_seconds: float, on_planned: Callable[[], None]
    ) -> None:
        """Escalate every interval (or when woken) until stopped; `on_planned()` after new rows."""

        async def once() -> None:
            if await self.escalate_once():
                on_planned()

        await run_periodically(
            once, stop, interval_seconds, name="escalation", wake=self._wake, log=log
        )
