"""The sweeper: judges work points whose next check is due, on a timer, and marks supervision
notices whose reply deadline passed `overdue`.

Cost follows the due rows (an indexed `next_check_at`), not all rows. On PostgreSQL due rows are
claimed with FOR UPDATE SKIP LOCKED, so replicas side by side never judge the same row twice.
The hot path holds no ORM objects: a batch is claimed as plain rows (progress.store.due), judged
by the domain (progress.domain.stall), and written with one statement per table: the verdicts,
the timeline records and the outbox rows, in the transaction that claimed them.
Each sweep is a new trace; each transition it causes gets a span linked to the work point's last
status event's span (the trace the report started).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from duban_shared import attributes as attr
from duban_shared import topics
from duban_shared.clock import Clock
from duban_shared.events import AgencyRef, Level, StallReason, StallTransition, StallTransitionKind
from duban_shared.kafka import current_traceparent, link_to
from duban_shared.metrics import ServiceMetrics
from duban_shared.outbox import OutboxRelay
from duban_shared.runtime import run_periodically
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from opentelemetry import context as otel_context
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.stall import Facts, Policy, Target, Verdict, judge, transition_needed
from progress.store import due as due_rows
from progress.store import states
from progress.store.due import DueRow
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
                    conn = await session.connection()
                    claimed = await due_rows.claim_due(
                        conn, now, self._batch_size, skip_locked=self._skip_locked
                    )
                    batch = await judge_claimed(claimed, now, self._calendar)
                    await batch.write(conn, now)
                for row, transition in batch.transitions:
                    # A span per transition, linked to the last report's trace: a sweep
                    # judging thousands of rows stays one small trace.
                    self._tracer.start_span(
                        "stall transition",
                        links=link_to(row.last_traceparent),
                        attributes=_span_attributes(row, transition),
                    ).end()
                total += len(batch.transitions)
                if batch.transitions:
                    self._relay.wake()
                if len(claimed) < self._batch_size:
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


def _span_attributes(row: DueRow, transition: StallTransition) -> dict[str, str]:
    attributes = {
        attr.WORK_POINT_ID: row.work_point_id,
        attr.STALL_TRANSITION: transition.kind.value,
        attr.STALL_LEVEL: transition.level.value,
    }
    if transition.reason is not None:
        attributes[attr.STALL_REASON] = transition.reason.value
    return attributes


YIELD_EVERY = 100
"""Work points judged between two turns of the event loop during a sweep (a few ms)."""


@dataclass
class JudgedBatch:
    """What judging a claimed batch decided, as rows to write."""

    verdicts: list[dict[str, Any]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    """Work points no longer in the read model (deleted, or never published): not checked."""
    transitions: list[tuple[DueRow, StallTransition]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    async def write(self, conn: AsyncConnection, now: datetime) -> None:
        """Write the batch in the claiming transaction: verdicts, then the timeline and the
        outbox (the outbox rows remember the sweep's trace)."""
        await due_rows.write_verdicts(conn, self.verdicts)
        await due_rows.never_due(conn, self.gone)
        traceparent = current_traceparent()
        outbox = [
            {
                "topic": topics.STALLS,
                "key": row.work_point_id,
                "payload": transition.to_bytes(),
                "traceparent": traceparent,
                "created_at": now,
            }
            for row, transition in self.transitions
        ]
        await due_rows.add_transitions(conn, self.records, outbox)


async def judge_claimed(
    claimed: Iterable[DueRow], now: datetime, calendar: WorkingCalendar = OFFICIAL
) -> JudgedBatch:
    """Judge claimed due work points on plain data; give the event loop a turn every
    YIELD_EVERY judgements (requests and consumers share it)."""
    batch = JudgedBatch()
    for position, row in enumerate(claimed):
        if position and position % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if not row.view_found or row.deleted:
            batch.gone.append(row.work_point_id)
            continue
        judge_due(row, now, calendar, batch)
    return batch


def judge_due(row: DueRow, now: datetime, calendar: WorkingCalendar, batch: JudgedBatch) -> None:
    """Judge one due work point at `now` and add its verdict (and transition, if its episode
    changed) to the batch: the sweeper's counterpart of progress.use_cases.judging.rejudge,
    on plain rows."""
    with calendar.recording() as provisional:
        verdict = judge(now=now, facts=_facts(row), policy=_policy(row), calendar=calendar)
    before_level = Level(row.open_level) if row.open_level else None
    before_reason = StallReason(row.stall_reason) if row.stall_reason else None
    kind = transition_needed(before_level, verdict)
    episode_id, stalled_since = row.stall_episode_id, row.stalled_since
    if kind == StallTransitionKind.OPENED:
        episode_id, stalled_since = uuid.uuid4(), now
    if kind is not None:
        transition = _transition(row, kind, verdict, before_level, before_reason, episode_id, now)
        batch.transitions.append((row, transition))
        batch.records.append(_record(row, transition, verdict))
    if kind == StallTransitionKind.RECOVERED:
        episode_id = stalled_since = None
    batch.verdicts.append(
        {
            "work_point_id": row.work_point_id,
            "level": verdict.level.value,
            "reasons": [r.value for r in verdict.reasons],
            "expected_percent": verdict.expected_percent,
            "judged_at": now,
            "next_check_at": verdict.next_check_at,
            "provisional_years": sorted(provisional) or None,
            "stall_episode_id": episode_id,
            "stalled_since": stalled_since,
        }
    )


def _facts(row: DueRow) -> Facts:
    return Facts(
        last_heard=row.last_lead_report_at or row.tracking_since,
        any_blocked=row.blocked,
        percent=row.percent,
        recent_percents=tuple(row.recent_percents),
        kpis=row.kpis,
        targets=tuple(
            Target(metric=t["metric"], value=float(t["value"]), comparator=t["comparator"])
            for t in row.targets
        ),
        settled=row.closure is not None,
    )


def _policy(row: DueRow) -> Policy:
    return Policy(
        report_every=row.report_every_working_days,
        grace=row.grace_working_days,
        warn_before_due=row.warn_before_due_working_days,
        pace_tolerance_pct=row.pace_tolerance_pct,
        flatline_reports=row.flatline_reports,
        starts_on=row.starts_on,
        due_on=row.due_on,
    )


def _transition(
    row: DueRow,
    kind: StallTransitionKind,
    verdict: Verdict,
    before_level: Level | None,
    before_reason: StallReason | None,
    episode_id: uuid.UUID | None,
    now: datetime,
) -> StallTransition:
    ended = kind in (StallTransitionKind.RECOVERED, StallTransitionKind.CLOSED)
    return StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=now,
        work_point_id=row.work_point_id,
        episode_id=episode_id,
        kind=kind,
        level=verdict.level,
        previous_level=before_level,
        reason=before_reason if ended else verdict.reason,
        reasons=list(verdict.reasons),
        work_point_number=row.number,
        work_point_code=row.code,
        work_point_title=row.title,
        lead_agencies=_refs(row, "lead"),
        co_agencies=_refs(row, "co"),
        coordinating_agency_id=row.coordinating_agency_id,
        plan_slug=row.plan_slug,
        silent_working_days=verdict.silent_working_days,
    )


def _record(row: DueRow, transition: StallTransition, verdict: Verdict) -> dict[str, Any]:
    previous = transition.previous_level
    return {
        "event_id": transition.event_id,
        "work_point_id": row.work_point_id,
        "episode_id": transition.episode_id,
        "kind": transition.kind.value,
        "level": transition.level.value,
        "previous_level": previous.value if previous else None,
        "reasons": [r.value for r in verdict.reasons],
        "triggered_by_event_id": None,
        "after_report_seq": row.report_seq,
        "occurred_at": transition.occurred_at,
    }


def _refs(row: DueRow, role: str) -> list[AgencyRef]:
    return [
        AgencyRef(agency_id=r["agency_id"], name=r["name"])
        for r in row.responsibilities
        if r["role"] == role
    ]
