"""Kafka entry points of the notifier: decode records, then call the use cases.

- `StallConsumer` (topic `duban.stalls.v1`): each stall transition in its own transaction
  (`notifier.use_cases.transitions`), so a failure part-way leaves the records before it
  applied and the inbox skips them when the batch comes again.
- `NoticeConsumer` (topic `duban.notices.v1`): each supervision notice transition in its own
  transaction (`notifier.use_cases.notices`).
- `AgencyConsumer` (topic `duban.registry.agencies.v1`): a batch of agency snapshots in one
  transaction (`notifier.use_cases.agencies`).
- `CircularConsumer` (topic `duban.circulars.v1`): each published circular mailed to the
  configured list (`notifier.use_cases.circulars`).
A record that cannot be decoded was written by a bug upstream: RecordRejected makes the
consumer loop park it as a dead letter while the rest goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import ConsumerRecord
from duban_shared import attributes as attr
from duban_shared.events import AgencySnapshot, CircularPublished, NoticeTransition, StallTransition
from duban_shared.failures import RecordRejected
from duban_shared.kafka import decode_or_park, process_span
from opentelemetry.trace import Tracer
from pydantic import ValidationError

from notifier.use_cases.agencies import Agencies
from notifier.use_cases.circulars import CircularMail
from notifier.use_cases.notices import NoticeTransitions
from notifier.use_cases.transitions import Transitions


@dataclass
class StallConsumer:
    """Handles batches of the stall topic."""

    transitions: Transitions
    tracer: Tracer

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Handle records in order, each in its own span and transaction."""
        for record in records:
            with process_span(self.tracer, record) as span:
                transition = decode_or_park(StallTransition, record, span, "invalid_transition")
                span.set_attribute(attr.WORK_POINT_ID, transition.work_point_id)
                span.set_attribute(attr.PLAN_SLUG, transition.work_point_id.rpartition("/")[0])
                if transition.reason is not None:
                    span.set_attribute(attr.STALL_REASON, transition.reason.value)
                span.set_attribute(attr.STALL_TRANSITION, transition.kind.value)
                span.set_attribute(attr.STALL_LEVEL, transition.level.value)
                await self.handle(transition, record.topic)

    async def handle(self, transition: StallTransition, topic: str) -> None:
        """Apply one decoded transition of `topic`."""
        await self.transitions.apply(transition, topic)


@dataclass
class NoticeConsumer:
    """Handles batches of the notice topic (`duban.notices.v1`), each record in its own span
    and transaction."""

    notices: NoticeTransitions
    tracer: Tracer

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Handle records in order; a record that is no notice transition is parked."""
        for record in records:
            with process_span(self.tracer, record) as span:
                event = decode_or_park(NoticeTransition, record, span, "invalid_notice_transition")
                span.set_attribute(attr.WORK_POINT_ID, event.work_point_id)
                span.set_attribute(attr.NOTICE_ID, str(event.notice_id))
                span.set_attribute(attr.NOTICE_STATE, event.kind.value)
                await self.notices.apply(event, record.topic)


@dataclass
class AgencyConsumer:
    """Handles batches of agency snapshots."""

    agencies: Agencies
    tracer: Tracer

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Decode every snapshot of the batch (tombstones carry none), then apply them."""
        snapshots = []
        for record in records:
            with process_span(self.tracer, record):
                if record.value is None:
                    continue
                try:
                    snapshots.append(AgencySnapshot.model_validate_json(record.value))
                except ValidationError as exc:
                    raise RecordRejected("invalid_snapshot", str(exc)) from exc
        await self.agencies.apply(snapshots)


@dataclass
class CircularConsumer:
    """Handles batches of the circulars topic."""

    mail: CircularMail
    tracer: Tracer

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Mail each circular in order, each in its own span."""
        for record in records:
            with process_span(self.tracer, record) as span:
                event = decode_or_park(CircularPublished, record, span, "invalid_circular")
                span.set_attribute(attr.CIRCULAR_ID, str(event.circular_id))
                span.set_attribute(attr.PLAN_SLUG, event.plan_slug)
                await self.mail.apply(event, record.topic)
