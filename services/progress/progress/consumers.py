"""Progress's Kafka consumers: status events, the registry's work point snapshots, and the
notifier's alert transitions (`AlertConsumer`, for the circulars' acknowledgement times).

They decode records and hand them to the use cases (use_cases.reports, use_cases.work_points),
which apply each batch in one database transaction; offsets are committed only after it (see
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from aiokafka import ConsumerRecord
from duban_shared import attributes as attr
from duban_shared.events import (
    AlertTransition,
    StallTransition,
    StatusEvent,
    WorkPointSnapshot,
    coded_error,
)
from duban_shared.failures import RecordRejected
from duban_shared.kafka import (
    Parker,
    batch_span,
    current_traceparent,
    decode_or_park,
    headers_to_dict,
    process_span,
    traceparent_of,
)
from duban_shared.metrics import ServiceMetrics
from opentelemetry.trace import Status, StatusCode, Tracer
from pydantic import ValidationError

from progress.domain.checks import DEFAULT_LATEST_DUE_YEARS_AFTER_PLAN, ReportProblem, check_due_on
from progress.use_cases.alert_acks import AlertTransitions
from progress.use_cases.reports import ApplyReports
from progress.use_cases.work_points import ApplySnapshots

log = logging.getLogger(__name__)


class Rejected(RecordRejected):
    """A status event that can never be applied; it goes to the dead-letter topic."""


@dataclass
class StatusConsumer:
    """Applies status events to progress state.

    Tracing: one CONSUMER span per batch (`process <topic>`, a trace of its own) linked to the
    trace of each report it applied (the `traceparent` ingestion sent with it), instead of a
    span per record, which cost more than the rest of the tracing together. A record that
    matters on its own gets its own `process <topic>` span in its report's trace: one that
    caused a stall transition (its outbox row carries that span, so the alert the notifier
    raises stays in the report's trace: one trace from the POST to the e-mail), and one that
    is parked (the span marked with the reason).
    """

    reports: ApplyReports
    dead_letters: Parker
    tracer: Tracer
    metrics: ServiceMetrics | None = None
    seconds: Callable[[], float] = time.time  # real time, as Kafka's record timestamps

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch in one transaction (ApplyReports.batch); dead-letter what can never be
        applied."""
        events: list[StatusEvent | Rejected] = []
        for record in records:
            try:
                events.append(StatusEvent.model_validate_json(record.value or b""))
            except ValidationError as exc:
                code, message = coded_error(exc) or ("invalid_event", str(exc))
                events.append(Rejected(code, message))
        valid = [e for e in events if isinstance(e, StatusEvent)]
        parents = [traceparent_of(record) for record in records]
        with batch_span(self.tracer, records, parents) as span:
            rejected: list[tuple[ConsumerRecord[bytes, bytes], Rejected]] = []
            applied: list[ConsumerRecord[bytes, bytes]] = []
            async with self.reports.batch(valid) as batch:
                inbox = batch.writes.inbox
                for record, event, parent in zip(records, events, parents, strict=True):
                    if isinstance(event, Rejected):
                        rejected.append((record, event))
                        continue
                    try:
                        judged = batch.apply(event, record.topic, parent)
                    except ReportProblem as problem:
                        rejected.append((record, Rejected(problem.code, problem.message)))
                        continue
                    if inbox and inbox[-1]["event_id"] == event.event_id:
                        applied.append(record)  # not a redelivery
                    if judged is not None:
                        transition, _, outbox = judged
                        outbox["traceparent"] = self._transition_span(record, transition)
                for record, refusal in rejected:
                    with process_span(self.tracer, record) as record_span:
                        record_span.set_status(Status(StatusCode.ERROR, refusal.code))
                        await self.dead_letters.park(record, refusal.code, str(refusal), 1)
            if span.is_recording():
                span.set_attribute(attr.BATCH_REJECTED, len(rejected))
        self._record_durations(applied)

    def _transition_span(self, record: ConsumerRecord[bytes, bytes], transition: object) -> str:
        """A span of the report's trace for the transition it caused; its traceparent (the
        outbox row's, so the notifier continues this trace)."""
        with process_span(self.tracer, record) as span:
            if span.is_recording() and isinstance(transition, StallTransition):
                span.set_attribute(attr.WORK_POINT_ID, transition.work_point_id)
                span.set_attribute(attr.STALL_TRANSITION, transition.kind.value)
                span.set_attribute(attr.STALL_LEVEL, transition.level.value)
            return current_traceparent() or traceparent_of(record) or ""

    def _record_durations(self, applied: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Acceptance (the record's broker timestamp) to application, for each applied event."""
        if self.metrics is None:
            return
        done = self.seconds()
        histogram = self.metrics.event_processing_duration
        for record in applied:
            histogram.record(max(done - record.timestamp / 1000, 0.0))


@dataclass
class WorkPointConsumer:
    """Keeps the read model of the registry's work points."""

    snapshots: ApplySnapshots
    tracer: Tracer
    latest_due_years_after_plan: int = DEFAULT_LATEST_DUE_YEARS_AFTER_PLAN

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Upsert every snapshot of the batch in one transaction."""
        async with self.snapshots.batch() as batch:
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
                    await batch.apply(snap, origin)

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


@dataclass
class AlertConsumer:
    """Keeps progress's copy of the notifier's alerts (topic duban.alerts.v1), each record in
    its own span and transaction; a record that is no alert transition is parked."""

    transitions: AlertTransitions
    tracer: Tracer

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply records in order."""
        for record in records:
            with process_span(self.tracer, record) as span:
                event = decode_or_park(AlertTransition, record, span, "invalid_alert_transition")
                span.set_attribute(attr.ALERT_ID, str(event.alert_id))
                span.set_attribute(attr.WORK_POINT_ID, event.work_point_id)
                await self.transitions.apply(event, record.topic)
