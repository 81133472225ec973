"""Progress's Kafka consumers: status events, and the registry's work point snapshots.

Each batch is applied in one database transaction; offsets are committed only after it (see
duban_shared.kafka.run_batch_consumer). A status event that cannot be applied (invalid JSON,
unknown work point, agency not responsible) goes to the dead-letter topic with the reason in a
header: it is never dropped silently, and never blocks the partition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import AIOKafkaProducer, ConsumerRecord
from duban_shared import topics
from duban_shared.clock import Clock
from duban_shared.events import StatusEvent, WorkPointSnapshot
from duban_shared.inbox import first_delivery
from duban_shared.kafka import headers_to_dict, process_span, send_traced
from duban_shared.outbox import OutboxRelay
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from opentelemetry.trace import Status, StatusCode, Tracer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.checks import ReportProblem, check_report
from progress.models import Inbox, WorkPointView
from progress.store import DEFAULT_LATE_AFTER, apply_report, upsert_view

log = logging.getLogger(__name__)


class Rejected(Exception):
    """A status event that can never be applied; it goes to the dead-letter topic."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StatusConsumer:
    """Applies status events to progress state."""

    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    tracer: Tracer
    clock: Clock
    relay: OutboxRelay
    topic_prefix: str = ""
    calendar: WorkingCalendar = OFFICIAL
    late_after: timedelta = DEFAULT_LATE_AFTER

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch in one transaction; dead-letter what can never be applied."""
        transitions = 0
        async with self.sessions() as session, session.begin():
            for record in records:
                with process_span(self.tracer, record) as span:
                    try:
                        if await self._apply(session, record):
                            transitions += 1
                    except Rejected as rejected:
                        span.set_status(Status(StatusCode.ERROR, rejected.code))
                        await self._dead_letter(record, rejected)
        if transitions:
            self.relay.wake()

    async def _apply(self, session: AsyncSession, record: ConsumerRecord[bytes, bytes]) -> bool:
        try:
            event = StatusEvent.model_validate_json(record.value or b"")
        except ValidationError as exc:
            raise Rejected("invalid_event", str(exc)) from exc
        try:
            view = check_report(
                await session.get(WorkPointView, event.work_point_id),
                event.work_point_id,
                event.agency_id,
                event.kpis,
            )
        except ReportProblem as problem:
            raise Rejected(problem.code, problem.message) from problem
        now = self.clock.now()
        if not await first_delivery(session, Inbox, event.event_id, record.topic, now):
            return False
        transition = await apply_report(session, event, view, now, self.calendar, self.late_after)
        return transition is not None

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], rejected: Rejected) -> None:
        log.warning("status event dead-lettered: %s (%s)", rejected.code, rejected)
        headers = [
            ("duban.error.code", rejected.code.encode()),
            ("duban.error.message", str(rejected)[:1000].encode()),
            ("duban.source.offset", f"{record.partition}:{record.offset}".encode()),
        ]
        key = (record.key or b"").decode("utf-8", "replace")
        await send_traced(
            self.producer,
            self.tracer,
            self.topic_prefix + topics.STATUS_DLQ,
            key,
            record.value or b"",
            extra_headers=headers,
        )


@dataclass
class WorkPointConsumer:
    """Keeps the read model of the registry's work points."""

    sessions: async_sessionmaker[AsyncSession]
    tracer: Tracer
    clock: Clock
    calendar: WorkingCalendar = OFFICIAL

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Upsert every snapshot of the batch in one transaction."""
        async with self.sessions() as session, session.begin():
            for record in records:
                with process_span(self.tracer, record):
                    if record.value is None:
                        continue  # a compaction tombstone: the deleted snapshot came before
                    try:
                        snap = WorkPointSnapshot.model_validate_json(record.value)
                    except ValidationError:
                        # The registry wrote it, so this is a bug there; skipping keeps the other
                        # work points of the partition flowing, and the error is loud.
                        log.exception(
                            "unreadable work point snapshot %s:%s skipped",
                            record.partition,
                            record.offset,
                        )
                        continue
                    origin = headers_to_dict(record.headers).get("traceparent")
                    await upsert_view(session, snap, origin, self.clock.now(), self.calendar)
