"""Circulars (通报): compose one from the API's own reads, render its files, store it with its
version and number, and publish `CircularPublished` through the outbox, in one transaction.

The figures come from the functions the API answers with: `queries.work_points` and
`plan_counts` (GET /v1/plans/{slug}/summary), `queries.scorecards` (GET
/v1/plans/{slug}/scorecards), so a circular and the API agree at the same clock. The
acknowledgement times come from progress's copy of the notifier's alerts (`alert_ack`, fed by
duban.alerts.v1), so they agree with the notifier's GET /v1/alerts once its events arrived.

Scheduled circulars (weekly, monthly: `progress.domain.circulars`) are made by `run_due()` from
progress's background loop; each (plan, kind, period) at most once, held by the table's unique
`scheduled_key` across restarts and replicas.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from duban_shared import attributes as attr
from duban_shared import topics
from duban_shared.audit import Actor, record_audit
from duban_shared.clock import Clock
from duban_shared.events import CircularPublished
from duban_shared.metrics import ServiceMetrics
from duban_shared.outbox import OutboxRelay, outbox_row
from duban_shared.runtime import run_periodically
from duban_shared.workdays import WorkingCalendar, local_day
from opentelemetry import context as otel_context
from opentelemetry.trace import Tracer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.adapters.circular_files import ISSUER, render_docx, render_xlsx, title_of
from progress.domain.circulars import (
    CardLine,
    Content,
    Kind,
    PointLine,
    compose,
    days_overdue,
    document_number,
    due_periods,
    period_key,
)
from progress.domain.counts import plan_counts
from progress.domain.scorecards import Scorecard
from progress.store import alert_acks, queries
from progress.store import circulars as store
from progress.store.models import (
    AuditLog,
    Circular,
    OutboxMessage,
    WorkPointState,
    WorkPointView,
)

log = logging.getLogger(__name__)

SCHEDULED, ON_DEMAND = "scheduled", "on_demand"
SCHEDULER = Actor("system:circular-schedule", "system")
"""Who makes a scheduled circular, in the audit trail."""
ATTEMPTS = 3
"""Tries of a circular whose version or number another process took at the same moment."""


class UnknownPlan(Exception):
    """The plan has no tracked work point."""


def card_lines(cards: Sequence[Scorecard]) -> list[CardLine]:
    """The scorecards as the circular reads them, the on-time rate rounded as the API
    answers it (three decimals)."""
    return [
        CardLine(
            agency_id=c.agency_id,
            name=c.name,
            lead_of=c.lead_of,
            reports=c.reports,
            reports_on_time=c.reports_on_time,
            on_time_rate=round(c.on_time_rate, 3) if c.on_time_rate is not None else None,
            open_stalls=dict(c.open_stalls),
            silent_now=c.silent_now,
        )
        for c in cards
    ]


def point_lines(
    rows: Sequence[tuple[WorkPointView, WorkPointState]], now: datetime
) -> list[PointLine]:
    """The work points as the circular reads them, with days overdue at `now`."""
    today = local_day(now)
    return [
        PointLine(
            code=view.code,
            title=view.title,
            level=state.level,
            reasons=list(state.reasons),
            closure=state.closure,
            due_on=view.due_on,
            leads=[r["name"] for r in view.responsibilities if r["role"] == "lead"],
            lead_ids=view.agency_ids("lead"),
            days_overdue=days_overdue(view.due_on, today)
            if "overdue" in state.reasons and state.closure is None
            else 0,
        )
        for view, state in rows
    ]


async def content_of(
    session: AsyncSession, plan_slug: str, kind: Kind, now: datetime
) -> tuple[Content, Circular | None]:
    """What a circular of the plan says at `now`, and the previous circular it compares with."""
    rows = await queries.work_points(session, plan_slug)
    if not rows:
        raise UnknownPlan(plan_slug)
    totals, _ = plan_counts(rows)
    cards = await queries.scorecards(session, rows)
    plan_title, _ = await queries.plan_titles(session, plan_slug)
    previous = await store.latest(session, plan_slug)
    content = compose(
        plan_slug=plan_slug,
        plan_title=plan_title,
        kind=kind,
        period=period_key(kind, local_day(now)),
        now=now,
        totals=totals.as_dict(),
        cards=card_lines(cards),
        points=point_lines(rows, now),
        previous_colours=previous.summary.get("colours") if previous else None,
        previous_number=previous.number if previous else None,
        alerts=await alert_acks.facts_of_plan(session, plan_slug),
    )
    return content, previous


@dataclass
class Circulars:
    """Makes circulars on demand and on schedule."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    tracer: Tracer
    relay: OutboxRelay
    metrics: ServiceMetrics
    calendar: WorkingCalendar
    number_prefix: str
    scheduled_kinds: tuple[Kind, ...]
    issuer: str = ISSUER

    async def issue(self, plan_slug: str, kind: Kind, *, actor: Actor | None = None) -> Circular:
        """A new circular of the plan now (the next version of its period), recorded in the
        audit trail as the actor's; raises UnknownPlan."""
        for attempt in range(ATTEMPTS):
            try:
                made = await self._make(plan_slug, kind, ON_DEMAND, actor=actor)
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            assert made is not None
            return made
        raise AssertionError("unreachable")

    async def run_due(self) -> list[Circular]:
        """Make the scheduled circulars due now that were not made yet (every tracked plan)."""
        now = self.clock.now()
        made: list[Circular] = []
        due = due_periods(now, self.calendar, self.scheduled_kinds)
        if not due:
            return made
        async with self.sessions() as session:
            plans = await queries.plan_slugs(session)
        for kind, period in due:
            for plan_slug in plans:
                key = scheduled_key(plan_slug, kind, period)
                async with self.sessions() as session:
                    if await store.scheduled_exists(session, key):
                        continue
                try:
                    circular = await self._make(plan_slug, kind, SCHEDULED, scheduled=key)
                except IntegrityError:
                    log.info("scheduled circular %s made by another process", key)
                    continue
                if circular is not None:
                    made.append(circular)
        return made

    async def run(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Look for due scheduled circulars every interval until stopped."""
        await run_periodically(self.run_due, stop, interval_seconds, name="circulars", log=log)

    async def _make(
        self,
        plan_slug: str,
        kind: Kind,
        trigger: str,
        *,
        actor: Actor | None = None,
        scheduled: str | None = None,
    ) -> Circular | None:
        now = self.clock.now()
        with self.tracer.start_as_current_span(
            "circular",
            context=otel_context.Context() if trigger == SCHEDULED else None,
            attributes={
                attr.PLAN_SLUG: plan_slug,
                attr.CIRCULAR_KIND: kind.value,
                attr.CIRCULAR_TRIGGER: trigger,
            },
        ) as span:
            async with self.sessions() as session, session.begin():
                if scheduled is not None and await store.scheduled_exists(session, scheduled):
                    return None
                content, _ = await content_of(session, plan_slug, kind, now)
                day = local_day(now)
                seq = await store.next_seq(session, day.year)
                number = document_number(self.number_prefix, day.year, seq)
                circular = Circular(
                    plan_slug=plan_slug,
                    kind=kind.value,
                    period=content.period,
                    version=await store.next_version(session, plan_slug, content.period),
                    year=day.year,
                    seq=seq,
                    number=number,
                    trigger=trigger,
                    scheduled_key=scheduled,
                    created_by=actor.client_id if actor else None,
                    created_at=now,
                    summary=content.to_json(),
                    docx=render_docx(content, number, day, self.issuer),
                    xlsx=render_xlsx(content, number),
                )
                session.add(circular)
                await session.flush()
                record_audit(
                    session,
                    AuditLog,
                    actor=actor or SCHEDULER,
                    action="circular.issued",
                    subject=f"{plan_slug}/{circular.period}",
                    at=now,
                    after={
                        "number": number,
                        "kind": kind.value,
                        "version": circular.version,
                        "trigger": trigger,
                    },
                )
                span.set_attribute(attr.CIRCULAR_ID, str(circular.id))
                span.set_attribute(attr.CIRCULAR_PERIOD, circular.period)
                event = published(circular, content)
                session.add(
                    outbox_row(
                        OutboxMessage, topics.CIRCULARS, str(circular.id), event.to_bytes(), now
                    )
                )
            self.relay.wake()
            self.metrics.circulars.add(
                1, {attr.CIRCULAR_KIND: kind.value, attr.CIRCULAR_TRIGGER: trigger}
            )
            log.info("circular %s of %s (%s) made", circular.number, plan_slug, circular.period)
            return circular


def scheduled_key(plan_slug: str, kind: Kind, period: str) -> str:
    """The unique key of a period's scheduled circular."""
    return f"{plan_slug}:{kind.value}:{period}"


def published(circular: Circular, content: Content) -> CircularPublished:
    """The event that has the notifier mail the circular."""
    return CircularPublished(
        event_id=uuid.uuid5(circular.id, "published"),
        occurred_at=circular.created_at,
        circular_id=circular.id,
        plan_slug=circular.plan_slug,
        plan_title=content.plan_title,
        number=circular.number,
        kind=Kind(circular.kind).value,
        period=circular.period,
        version=circular.version,
        title=title_of(content),
        docx_base64=base64.b64encode(circular.docx).decode(),
        xlsx_base64=base64.b64encode(circular.xlsx).decode(),
    )
