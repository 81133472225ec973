"""Dead letters: records a consumer could not apply, parked on its service's dead-letter topic.

A parked record keeps its key, value and headers (the trace context among them), and gains
headers that say why and where it came from (the `HEADER_*` names below). Nothing is dropped:
an operator lists the dead letters, fixes the cause (a calendar file, a registry correction, a
release) and replays them, which re-submits each record to its original topic; the consumers'
inboxes make a replay of something already applied harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry.trace import Tracer

from duban_shared import attributes as attr
from duban_shared.kafka import Headers, extract_context, headers_to_dict, send_traced
from duban_shared.metrics import ServiceMetrics

log = logging.getLogger(__name__)

HEADER_CODE = "duban.error.code"
HEADER_MESSAGE = "duban.error.message"
HEADER_SOURCE_TOPIC = "duban.source.topic"
HEADER_SOURCE_PARTITION = "duban.source.partition"
HEADER_SOURCE_OFFSET = "duban.source.offset"
HEADER_GROUP = "duban.consumer.group"
HEADER_ATTEMPTS = "duban.attempts"
HEADER_PARKED_AT = "duban.parked.at"
HEADER_REPLAY_OF = "duban.replay.of"
"""On a replayed record: the dead letter it came from (`<topic>:<partition>:<offset>`)."""

PARKING_HEADERS = frozenset(
    {
        HEADER_CODE,
        HEADER_MESSAGE,
        HEADER_SOURCE_TOPIC,
        HEADER_SOURCE_PARTITION,
        HEADER_SOURCE_OFFSET,
        HEADER_GROUP,
        HEADER_ATTEMPTS,
        HEADER_PARKED_AT,
    }
)
_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
MAX_MESSAGE_CHARS = 1000


@dataclass
class DeadLetterSink:
    """Parks records of one consumer group on a dead-letter topic."""

    producer: AIOKafkaProducer
    tracer: Tracer
    topic: str  # the actual (prefixed) dead-letter topic
    group: str
    metrics: ServiceMetrics | None = None

    async def park(
        self, record: ConsumerRecord[bytes, bytes], code: str, message: str, attempts: int
    ) -> None:
        """Send the record to the dead-letter topic with the reason, continuing its trace; the
        broker has it (acks=all) when this returns."""
        log.warning(
            "%s: record %s:%d:%d parked as a dead letter after %d attempt(s): %s (%s)",
            self.group,
            record.topic,
            record.partition,
            record.offset,
            attempts,
            code,
            message[:300],
        )
        dropped = _TRACE_HEADERS | PARKING_HEADERS
        kept = [(k, v) for k, v in record.headers or () if k not in dropped]
        parking: Headers = [
            (HEADER_CODE, code.encode()),
            (HEADER_MESSAGE, message[:MAX_MESSAGE_CHARS].encode()),
            (HEADER_SOURCE_TOPIC, record.topic.encode()),
            (HEADER_SOURCE_PARTITION, str(record.partition).encode()),
            (HEADER_SOURCE_OFFSET, str(record.offset).encode()),
            (HEADER_GROUP, self.group.encode()),
            (HEADER_ATTEMPTS, str(attempts).encode()),
            (HEADER_PARKED_AT, datetime.now(UTC).isoformat().encode()),
        ]
        await send_traced(
            self.producer,
            self.tracer,
            self.topic,
            (record.key or b"").decode("utf-8", "replace"),
            record.value or b"",
            parent=extract_context(record.headers),
            extra_headers=kept + parking,
        )
        if self.metrics is not None:
            self.metrics.dead_letters.add(
                1, {attr.MESSAGING_CONSUMER_GROUP_NAME: self.group, attr.ERROR_TYPE: code}
            )


@dataclass(frozen=True)
class DeadLetter:
    """One parked record as read back from a dead-letter topic."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def id(self) -> str:
        """How commands name it: `<partition>:<offset>` on its dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        """A parking header's value ('' when absent)."""
        return headers_to_dict(self.headers).get(name, "")

    @property
    def code(self) -> str:
        """Why it was parked."""
        return self.header(HEADER_CODE)

    @property
    def source(self) -> str:
        """Where it was read: `<topic>:<partition>:<offset>`."""
        where = (HEADER_SOURCE_TOPIC, HEADER_SOURCE_PARTITION, HEADER_SOURCE_OFFSET)
        return ":".join(self.header(h) for h in where)

    def describe(self) -> dict[str, object]:
        """Everything about it, for `dead-letters show` (the value as text when it is UTF-8)."""
        try:
            value: object = (self.value or b"").decode("utf-8")
        except UnicodeDecodeError:
            value = (self.value or b"").hex()
        return {
            "id": self.id,
            "code": self.code,
            "message": self.header(HEADER_MESSAGE),
            "source": self.source,
            "group": self.header(HEADER_GROUP),
            "attempts": self.header(HEADER_ATTEMPTS),
            "parked_at": self.header(HEADER_PARKED_AT)
            or datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).isoformat(),
            "key": (self.key or b"").decode("utf-8", "replace"),
            "headers": {
                k: v.decode("utf-8", "replace") for k, v in self.headers if k not in PARKING_HEADERS
            },
            "value": value,
        }


async def read_dead_letters(bootstrap_servers: str, topic: str) -> list[DeadLetter]:
    """Every record of a dead-letter topic, oldest first per partition (read without a group,
    so reading changes nothing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    if not tps:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[DeadLetter] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000)
            for part in batches.values():
                found.extend(_letter(r) for r in part)
        return sorted(found, key=lambda d: (d.timestamp_ms, d.partition, d.offset))
    finally:
        await consumer.stop()


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    return DeadLetter(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        record.key,
        record.value,
        tuple(record.headers or ()),
    )


async def replay(bootstrap_servers: str, letters: Sequence[DeadLetter]) -> list[str]:
    """Re-submit dead letters to the topics they were read from, with their key, value and
    original headers; return where each went (`<topic>:<partition>:<offset>`)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        placed = []
        for letter in letters:
            topic = letter.header(HEADER_SOURCE_TOPIC)
            if not topic:
                raise ValueError(
                    f"dead letter {letter.id} names no source topic ({HEADER_SOURCE_TOPIC})"
                )
            headers = [(k, v) for k, v in letter.headers if k not in PARKING_HEADERS]
            headers.append((HEADER_REPLAY_OF, f"{letter.topic}:{letter.id}".encode()))
            meta = await producer.send_and_wait(
                topic, value=letter.value, key=letter.key, headers=headers
            )
            placed.append(f"{topic}:{meta.partition}:{meta.offset}")
        return placed
    finally:
        await producer.stop()
