"""Kafka plumbing: a safe producer, traced sends, and a manual-commit batch consumer loop.

Trace context crosses Kafka as W3C `traceparent` headers. A consumer handler runs *inside* the
process span built from those headers, so everything it does (database, outbox) joins the trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import RecordMetadata
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import (
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from pydantic import BaseModel, ValidationError

from duban_shared import attributes as attr
from duban_shared.failures import OutageLog, RecordRejected, error_code, is_transient

if TYPE_CHECKING:
    from duban_shared.metrics import LagTracker
    from duban_shared.offsets import OffsetKeeper

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    """Create a producer that waits for all in-sync replicas and never duplicates on retry."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=15000,
    )


def make_consumer(
    bootstrap_servers: str,
    group_id: str,
    *topics: str,
    client_id: str,
    max_poll_records: int = 500,
    gather: tuple[int, int] | None = None,
    keeper: OffsetKeeper | None = None,
    **options: Any,
) -> AIOKafkaConsumer:
    """Create a consumer that commits only when told to, after the database transaction.

    `gather` = (bytes, ms): the broker answers a fetch once it has that many bytes or after that
    many milliseconds, so a busy topic comes in larger batches (fewer transactions and offset
    commits per record) for at most that much added latency. By default a fetch returns as soon
    as one record is there. With a `keeper` (duban_shared.offsets) the consumer starts each
    partition where the service's database says it is, not where the group committed (pass it
    to run_batch_consumer too). Other `options` go to AIOKafkaConsumer as they are.
    """
    min_bytes, max_wait_ms = gather or (1, 500)
    consumer = AIOKafkaConsumer(
        *(() if keeper else topics),
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
        fetch_min_bytes=min_bytes,
        fetch_max_wait_ms=max_wait_ms,
        **options,
    )
    if keeper is not None:
        keeper.subscribe(consumer, *topics)
    return consumer


def inject_headers(ctx: otel_context.Context | None = None) -> Headers:
    """Return the W3C trace headers of the given (or current) context."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return [(k, v.encode()) for k, v in carrier.items()]


def headers_to_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """Decode Kafka headers into a str mapping (later duplicates win)."""
    return {k: v.decode("utf-8", "replace") for k, v in headers or ()}


def extract_context(headers: Sequence[tuple[str, bytes]] | None) -> otel_context.Context:
    """Return the trace context carried by Kafka headers (empty when there is none)."""
    return propagate.extract(headers_to_dict(headers))


def _messaging_attributes(topic: str, key: bytes | None, operation: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        attr.MESSAGING_SYSTEM: attr.MESSAGING_SYSTEM_KAFKA,
        attr.MESSAGING_DESTINATION_NAME: topic,
        attr.MESSAGING_OPERATION_TYPE: operation,
        attr.MESSAGING_OPERATION_NAME: operation,
    }
    if key is not None:
        attrs[attr.MESSAGING_KAFKA_MESSAGE_KEY] = key.decode("utf-8", "replace")
    return attrs


async def send_traced(
    producer: AIOKafkaProducer,
    tracer: Tracer,
    topic: str,
    key: str,
    value: bytes,
    *,
    parent: otel_context.Context | None = None,
    extra_headers: Headers | None = None,
) -> RecordMetadata:
    """Send one message in a PRODUCER span and wait until the broker acknowledged it."""
    key_bytes = key.encode()
    with tracer.start_as_current_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=_messaging_attributes(topic, key_bytes, "send"),
    ) as span:
        headers = inject_headers() + list(extra_headers or [])
        meta: RecordMetadata = await producer.send_and_wait(
            topic, value=value, key=key_bytes, headers=headers
        )
        span.set_attribute(attr.MESSAGING_DESTINATION_PARTITION_ID, str(meta.partition))
        span.set_attribute(attr.MESSAGING_KAFKA_OFFSET, meta.offset)
        return meta


async def send_traced_nowait(
    producer: AIOKafkaProducer,
    tracer: Tracer,
    topic: str,
    key: str,
    value: bytes,
    *,
    parent: otel_context.Context | None = None,
) -> asyncio.Future[RecordMetadata]:
    """Queue one message in a PRODUCER span (as send_traced) without waiting for the broker:
    return the delivery future; the span ends when the broker acknowledged the message (or
    refused it). Messages queued one after another go out in batches."""
    key_bytes = key.encode()
    span = tracer.start_span(
        f"send {topic}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=_messaging_attributes(topic, key_bytes, "send"),
    )
    try:
        headers = inject_headers(trace.set_span_in_context(span))
        delivery: asyncio.Future[RecordMetadata] = await producer.send(
            topic, value=value, key=key_bytes, headers=headers
        )
    except BaseException as exc:
        _end_failed(span, exc)
        raise
    delivery.add_done_callback(lambda done: _end_sent(span, done))
    return delivery


def _end_sent(span: Span, done: asyncio.Future[RecordMetadata]) -> None:
    if done.cancelled():
        span.end()
        return
    exc = done.exception()
    if exc is not None:
        _end_failed(span, exc)
        return
    meta = done.result()
    span.set_attribute(attr.MESSAGING_DESTINATION_PARTITION_ID, str(meta.partition))
    span.set_attribute(attr.MESSAGING_KAFKA_OFFSET, meta.offset)
    span.end()


def _end_failed(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.end()


@contextmanager
def process_span(tracer: Tracer, record: ConsumerRecord[bytes, bytes]) -> Iterator[Span]:
    """Run the handling of one record inside a CONSUMER span continued from its headers."""
    attrs = _messaging_attributes(record.topic, record.key, "process")
    attrs[attr.MESSAGING_DESTINATION_PARTITION_ID] = str(record.partition)
    attrs[attr.MESSAGING_KAFKA_OFFSET] = record.offset
    parent = extract_context(record.headers)
    with tracer.start_as_current_span(
        f"process {record.topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attrs
    ) as span:
        yield span


def traceparent_of(record: ConsumerRecord[bytes, bytes]) -> str | None:
    """The W3C traceparent a record was sent with (None without one)."""
    for key, value in record.headers or ():
        if key == "traceparent":
            return str(value.decode("ascii", "replace"))
    return None


def _span_context(traceparent: str | None) -> SpanContext | None:
    """The remote span a traceparent names (version 00: `00-<trace>-<span>-<flags>`), parsed
    directly: a batch links to hundreds of them, and the propagator's parse costs more."""
    if not traceparent or len(traceparent) != 55:
        return None
    try:
        trace_id, span_id = int(traceparent[3:35], 16), int(traceparent[36:52], 16)
        flags = int(traceparent[53:55], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))


@contextmanager
def batch_span(
    tracer: Tracer,
    records: Sequence[ConsumerRecord[bytes, bytes]],
    traceparents: Sequence[str | None],
) -> Iterator[Span]:
    """One CONSUMER span (`process <topic>`) for a whole batch: a trace of its own, linked to
    the trace each record was sent in (`traceparents`, the records' own, in order), with the
    batch's size. The SDK keeps at most OTEL_SPAN_LINK_COUNT_LIMIT links (128 by default); a
    span the sampler drops costs no links at all."""
    topic = records[0].topic if records else ""
    attrs = _messaging_attributes(topic, None, "process")
    attrs[attr.MESSAGING_BATCH_MESSAGE_COUNT] = len(records)
    with tracer.start_as_current_span(
        f"process {topic}",
        context=otel_context.Context(),
        kind=SpanKind.CONSUMER,
        attributes=attrs,
    ) as span:
        if span.is_recording():
            for traceparent in traceparents:
                linked = _span_context(traceparent)
                if linked is not None:
                    span.add_link(linked)
        yield span


EventT = TypeVar("EventT", bound=BaseModel)


def decode_or_park(
    model: type[EventT], record: ConsumerRecord[bytes, bytes], span: Span, code: str
) -> EventT:
    """The record's value read as `model`; a value that is not one was written by a bug
    upstream: the span is marked with `code` and RecordRejected parks the record."""
    try:
        return model.model_validate_json(record.value or b"")
    except ValidationError as exc:
        span.set_status(Status(StatusCode.ERROR, code))
        raise RecordRejected(code, str(exc)) from exc


BatchHandler = Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]


class Parker(Protocol):
    """Where a consumer parks a record it cannot apply (duban_shared.deadletters)."""

    async def park(
        self, record: ConsumerRecord[bytes, bytes], code: str, message: str, attempts: int
    ) -> None:
        """Keep the record with the reason; return once it is safely kept."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """How a consumer loop retries: outages with backoff, forever; a record's own failure a
    few times, then it is parked."""

    attempts: int = 3
    """Tries of a record that fails deterministically, alone, before it is parked."""
    pause_seconds: float = 1.0
    """First pause after a failure; doubled after each further one."""
    max_pause_seconds: float = 30.0

    def pause(self, failures: int) -> float:
        """The pause after the n-th failure in a row (1-based)."""
        growth: float = 2.0 ** max(failures - 1, 0)
        return min(self.pause_seconds * growth, self.max_pause_seconds)


async def run_batch_consumer(
    consumer: AIOKafkaConsumer,
    handle_batch: BatchHandler,
    stop: asyncio.Event,
    *,
    name: str,
    dead_letters: Parker | None = None,
    retry: RetryPolicy | None = None,
    poll_timeout_ms: int = 200,
    lag: LagTracker | None = None,
    offsets: OffsetKeeper | None = None,
) -> None:
    """Poll batches, hand each to the handler, and commit offsets only after it returned.

    1. Fetch up to max_poll_records across the assigned partitions.
    2. Run the handler (it commits its own database transaction).
    3. If it raised an outage (duban_shared.failures.is_transient: database or broker
       unreachable), rewind every partition of the batch to its first record and try again
       after a pause that grows with each failure in a row: nothing is skipped, nothing parked,
       and the outage is logged once with a count.
    4. If it raised anything else, the batch is handled again one record at a time, in order:
       a record that keeps failing is tried `retry.attempts` times (a RecordRejected once) and
       then parked with its reason (`dead_letters`), and the records after it go on. An outage
       met on the way rewinds to the first record not yet handled, as in 3.
    5. Commit the consumed offsets. If the commit is refused because the group moved on (this
       member took too long and was dropped, or a rebalance gave its partitions away), the loop
       goes on: the next poll rejoins, and the uncommitted records come again, to this member
       or another, where the inbox skips what was applied.

    With `offsets` (duban_shared.offsets) a partition just assigned is first sought to the
    offset the service's database stored (what the poll fetched from it is dropped and comes
    again), and after step 4 the batch's next offsets are stored in the database before the
    commit to the group, so a restored database re-reads what it lost.

    Without `dead_letters` a record that keeps failing is retried like an outage (the partition
    waits). `lag` (duban_shared.metrics) is updated after every poll and every commit.
    """
    retry = retry or RetryPolicy()
    outage = OutageLog(log, f"consumer {name}")
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=poll_timeout_ms)
            if offsets is not None:
                try:
                    settled = await offsets.settle(consumer)
                except Exception as exc:
                    outage.failed(exc)
                    for tp, part in batches.items():
                        if part:
                            consumer.seek(tp, part[0].offset)
                    await sleep_unless_stopped(stop, retry.pause(outage.failures))
                    continue
                batches = {tp: part for tp, part in batches.items() if tp not in settled}
            records = [r for part in batches.values() for r in part]
            if lag is not None:
                await lag.update(consumer, {tp: part[0].offset for tp, part in batches.items()})
            if not records:
                continue
            unhandled = await _handle(records, handle_batch, stop, name, dead_letters, retry)
            if unhandled is not None:
                error, rest = unhandled
                outage.failed(error)
                for tp, offset in rest.items():
                    consumer.seek(tp, offset)
                await sleep_unless_stopped(stop, retry.pause(outage.failures))
                continue
            outage.recovered()
            if offsets is not None:
                await _store_positions(offsets, batches, name)
            try:
                await consumer.commit()
            except (CommitFailedError, IllegalStateError) as exc:
                log.warning(
                    "%s: offsets of a batch of %d not committed (%s); its records come again",
                    name,
                    len(records),
                    exc,
                )
                continue
            if lag is not None:
                await lag.update(consumer)
    finally:
        if lag is not None:
            lag.clear()


async def _store_positions(
    offsets: OffsetKeeper,
    batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    name: str,
) -> None:
    """Store where each partition of a handled batch goes on. A failure is only logged: the
    stored offset stays behind the data, which costs a re-read the inbox absorbs."""
    positions = {tp: part[-1].offset + 1 for tp, part in batches.items() if part}
    try:
        await offsets.save(positions)
    except Exception as exc:
        log.warning(
            "%s: consumed offsets not stored in the database (%s); re-read later", name, exc
        )


Unhandled = tuple[BaseException, dict[TopicPartition, int]]
"""An outage, and per partition the offset of the first record not handled because of it."""


async def _handle(
    records: list[ConsumerRecord[bytes, bytes]],
    handle_batch: BatchHandler,
    stop: asyncio.Event,
    name: str,
    dead_letters: Parker | None,
    retry: RetryPolicy,
) -> Unhandled | None:
    """Handle a batch (steps 2-4 of run_batch_consumer); None when every record was applied or
    parked."""
    try:
        await handle_batch(records)
        return None
    except Exception as exc:
        if is_transient(exc) or dead_letters is None:
            return exc, _first_offsets(records)
        log.warning(
            "%s: batch of %d failed (%s: %s); handling its records one at a time",
            name,
            len(records),
            error_code(exc),
            exc,
        )
    for index, record in enumerate(records):
        failures = 0
        while True:
            try:
                await handle_batch([record])
                break
            except Exception as exc:
                if is_transient(exc):
                    return exc, _first_offsets(records[index:])
                failures += 1
                if stop.is_set():
                    return exc, _first_offsets(records[index:])
                if failures < retry.attempts and not isinstance(exc, RecordRejected):
                    await sleep_unless_stopped(stop, retry.pause(failures))
                    continue
                try:
                    await dead_letters.park(record, error_code(exc), str(exc), failures)
                except Exception as park_error:
                    return park_error, _first_offsets(records[index:])
                break
    return None


def _first_offsets(records: list[ConsumerRecord[bytes, bytes]]) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for r in records:
        first.setdefault(TopicPartition(r.topic, r.partition), r.offset)
    return first


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if stop is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return


def current_traceparent() -> str | None:
    """Return the traceparent of the current span, to store for later links."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def link_to(traceparent: str | None) -> list[trace.Link]:
    """Build a span link to a stored traceparent (none if it is missing or invalid)."""
    if not traceparent:
        return []
    span_ctx = trace.get_current_span(propagate.extract({"traceparent": traceparent}))
    ctx = span_ctx.get_span_context()
    return [trace.Link(ctx)] if ctx.is_valid else []


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a stored traceparent; None if missing or malformed."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 else None
