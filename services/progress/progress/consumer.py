"""Progress's Kafka consumers: status events, and the registry's work point snapshots.

Each batch is applied in one database transaction; offsets are committed only after it (see
duban_shared.kafka.run_batch_consumer). A record known to be inapplicable (a status event that
is invalid JSON, about an unknown work point, from an agency not responsible or dated out of
bounds; a snapshot due outside its plan's window) is parked on progress's dead-letter topic
with its reason at once; any other record that keeps failing (a snapshot that cannot be read, a
date the calendar cannot count) is parked by the consumer loop after a few attempts. Nothing is
dropped silently, and nothing blocks the records behind it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from aiokafka import ConsumerRecord
from duban_shared.clock import Clock
from duban_shared.events import StatusEvent, WorkPointSnapshot, coded_error
from duban_shared.failures import RecordRejected
from duban_shared.kafka import Parker, headers_to_dict, process_span
from duban_shared.metrics import ServiceMetrics
from duban_shared.outbox import OutboxRelay
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from opentelemetry.trace import Status, StatusCode, Tracer
from pydantic import ValidationError
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.checks import (
    DEFAULT_EARLIEST_BEFORE_PLAN,
    DEFAULT_LATEST_DUE_YEARS_AFTER_PLAN,
    ReportProblem,
    check_due_on,
    check_report,
)
from progress.models import Inbox, WorkPointView
from progress.store import (
    DEFAULT_LATE_AFTER,
    Loaded,
    among,
    apply_report,
    load,
    upsert_view,
    write_back,
)

log = logging.getLogger(__name__)


class Rejected(RecordRejected):
    """A status event that can never be applied; it goes to the dead-letter topic."""


@dataclass
class _Batch:
    """What a batch of status events needs from the database, read once."""

    views: dict[str, WorkPointView]
    loaded: dict[str, Loaded]
    seen: set[uuid.UUID]
    inbox: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    async def read(cls, session: AsyncSession, events: list[StatusEvent]) -> _Batch:
        wp_ids = {e.work_point_id for e in events}
        views = await session.exec(
            select(WorkPointView).where(among(session, col(WorkPointView.id), wp_ids))
        )
        ids = [e.event_id for e in events]
        seen = await session.exec(
            select(Inbox.event_id).where(among(session, col(Inbox.event_id), ids))
        )
        return cls(
            views={v.id: v for v in views.all()},
            loaded=await load(session, wp_ids),
            seen=set(seen.all()),
        )


@dataclass
class StatusConsumer:
    """Applies status events to progress state."""

    sessions: async_sessionmaker[AsyncSession]
    dead_letters: Parker
    tracer: Tracer
    clock: Clock
    relay: OutboxRelay
    calendar: WorkingCalendar = OFFICIAL
    late_after: timedelta = DEFAULT_LATE_AFTER
    earliest_before_plan: timedelta = DEFAULT_EARLIEST_BEFORE_PLAN
    metrics: ServiceMetrics | None = None
    seconds: Callable[[], float] = time.time  # real time, as Kafka's record timestamps

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch in one transaction; dead-letter what can never be applied.

        The batch's work points, their states, the agencies' latest reports and the inbox
        entries are read up front in four queries; each event is then applied in memory and
        everything is written at the commit.
        """
        events: list[StatusEvent | Rejected] = []
        for record in records:
            try:
                events.append(StatusEvent.model_validate_json(record.value or b""))
            except ValidationError as exc:
                code, message = coded_error(exc) or ("invalid_event", str(exc))
                events.append(Rejected(code, message))
        transitions = 0
        applied: list[ConsumerRecord[bytes, bytes]] = []
        async with self.sessions() as session, session.begin():
            batch = await _Batch.read(session, [e for e in events if isinstance(e, StatusEvent)])
            now = self.clock.now()
            for record, event in zip(records, events, strict=True):
                with process_span(self.tracer, record) as span:
                    try:
                        inbox_before = len(batch.inbox)
                        if await self._apply(session, batch, record, event, now):
                            transitions += 1
                        if len(batch.inbox) > inbox_before:
                            applied.append(record)
                    except Rejected as rejected:
                        span.set_status(Status(StatusCode.ERROR, rejected.code))
                        await self.dead_letters.park(record, rejected.code, str(rejected), 1)
            # write_back first: any statement autoflushes the session, and a flush would update
            # the changed states and agency rows one statement each instead of in bulk.
            await write_back(session, batch.loaded.values())
            if batch.inbox:
                await session.exec(insert(Inbox), params=batch.inbox)
        if transitions:
            self.relay.wake()
        self._record_durations(applied)

    def _record_durations(self, applied: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Acceptance (the record's broker timestamp) to application, for each applied event."""
        if self.metrics is None:
            return
        done = self.seconds()
        for record in applied:
            self.metrics.event_processing_duration.record(max(done - record.timestamp / 1000, 0.0))

    async def _apply(
        self,
        session: AsyncSession,
        batch: _Batch,
        record: ConsumerRecord[bytes, bytes],
        event: StatusEvent | Rejected,
        now: datetime,
    ) -> bool:
        if isinstance(event, Rejected):
            raise event
        try:
            view = check_report(
                batch.views.get(event.work_point_id),
                event.work_point_id,
                event.agency_id,
                event.kpis,
                event.occurred_at,
                self.earliest_before_plan,
            )
        except ReportProblem as problem:
            raise Rejected(problem.code, problem.message) from problem
        if event.event_id in batch.seen:
            return False
        batch.seen.add(event.event_id)
        batch.inbox.append({"event_id": event.event_id, "topic": record.topic, "processed_at": now})
        transition = await apply_report(
            session,
            event,
            view,
            now,
            self.calendar,
            self.late_after,
            batch.loaded[event.work_point_id],
        )
        return transition is not None


@dataclass
class WorkPointConsumer:
    """Keeps the read model of the registry's work points."""

    sessions: async_sessionmaker[AsyncSession]
    tracer: Tracer
    clock: Clock
    calendar: WorkingCalendar = OFFICIAL
    latest_due_years_after_plan: int = DEFAULT_LATEST_DUE_YEARS_AFTER_PLAN

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Upsert every snapshot of the batch in one transaction."""
        async with self.sessions() as session, session.begin():
            for record in records:
                with process_span(self.tracer, record):
                    if record.value is None:
                        continue  # a compaction tombstone: the deleted snapshot came before
                    try:
                        snap = WorkPointSnapshot.model_validate_json(record.value)
                    except ValidationError as exc:
                        # A bug of the registry's: the consumer loop parks it, the other work
                        # points of the partition go on.
                        code, message = coded_error(exc) or ("invalid_snapshot", str(exc))
                        raise RecordRejected(code, message) from exc
                    self._check_dates(snap)
                    origin = headers_to_dict(record.headers).get("traceparent")
                    await upsert_view(session, snap, origin, self.clock.now(), self.calendar)

    def _check_dates(self, snap: WorkPointSnapshot) -> None:
        """Park a snapshot whose dates the registry would have refused (produced around it, or
        published before the registry checked them): the calendar could never count them."""
        try:
            starts_on = date.fromisoformat(snap.starts_on) if snap.starts_on else None
            due_on = date.fromisoformat(snap.due_on) if snap.due_on else None
        except ValueError as exc:
            raise RecordRejected("invalid_snapshot", f"{snap.work_point_id}: {exc}") from exc
        try:
            check_due_on(snap.work_point_id, starts_on, due_on, self.latest_due_years_after_plan)
        except ReportProblem as problem:
            raise RecordRejected(problem.code, problem.message) from problem
