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
- `DeliveryReplay` (topic `duban.deliveries.v1`): at start-up, before anything is sent, the
  deliveries sent that the database does not know of yet (`notifier.use_cases.delivery_records`).
A record that cannot be decoded was written by a bug upstream: RecordRejected makes the
consumer loop park it as a dead letter while the rest goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from duban_shared import attributes as attr
from duban_shared.events import (
    AgencySnapshot,
    CircularPublished,
    DeliverySent,
    NoticeTransition,
    StallTransition,
)
from duban_shared.failures import RecordRejected
from duban_shared.kafka import Parker, decode_or_park, process_span
from duban_shared.offsets import OffsetStore
from opentelemetry.trace import Tracer
from pydantic import ValidationError

from notifier.use_cases.agencies import Agencies
from notifier.use_cases.circulars import CircularMail
from notifier.use_cases.delivery_records import DeliveryRecords
from notifier.use_cases.notices import NoticeTransitions
from notifier.use_cases.transitions import Transitions

log = logging.getLogger(__name__)


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


@dataclass
class DeliveryReplay:
    """Reads the deliveries topic once, at start-up, from the position the database stored to
    the end the topic had then, keeping each delivery as sent; then stores the new position.

    A consumer without a group (each notifier reads every partition; replicas sharing a
    database read the same records, which is harmless): the position lives in the database
    (`consumer_offset`, group `group`), so after a restore it is the backup's and the records
    written since are read again; with none stored the topic is read from its beginning.
    """

    bootstrap_servers: str
    topic: str  # the actual (prefixed) topic
    group: str  # the name its position is stored under
    client_id: str
    offsets: OffsetStore
    records: DeliveryRecords
    dead_letters: Parker
    kept: int = 0  # deliveries read by the last run (for logs and tests)

    async def run(self) -> None:
        """Read to the end (start_soon retries an outage; nothing is sent until this returns)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            self.kept = await self._read(consumer)
        finally:
            await consumer.stop()
        log.info("deliveries topic read: %d delivery record(s) kept as sent", self.kept)

    async def _read(self, consumer: AIOKafkaConsumer) -> int:
        partitions = await self._partitions(consumer)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        stored = await self.offsets.load(self.group, partitions)
        for tp in partitions:
            if tp in stored:
                consumer.seek(tp, stored[tp])
            else:
                await consumer.seek_to_beginning(tp)
        kept = 0
        while True:
            left = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not left:
                break
            batches = await consumer.getmany(*left, timeout_ms=500)
            events = []
            for records in batches.values():
                for record in records:
                    event = await self._decode(record)
                    if event is not None:
                        events.append(event)
            kept += await self.records.keep(events)
            await self.offsets.save(self.group, {tp: await consumer.position(tp) for tp in batches})
        return kept

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """The topic's partitions (a missing topic is an outage the start retries)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
        )
        await admin.start()
        try:
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        numbers = sorted(
            p["partition"] for t in described if not t.get("error_code") for p in t["partitions"]
        )
        if not numbers:
            raise ConnectionError(f"topic {self.topic} does not exist (yet)")
        return [TopicPartition(self.topic, n) for n in numbers]

    async def _decode(self, record: ConsumerRecord[bytes, bytes]) -> DeliverySent | None:
        """The record's delivery; a tombstone has none, a record that is no delivery is parked."""
        if record.value is None:
            return None
        try:
            return DeliverySent.model_validate_json(record.value)
        except ValidationError as exc:
            await self.dead_letters.park(record, "invalid_delivery_record", str(exc), 1)
            return None
