"""Status ingestion for agency systems: check a report, produce it to Kafka, remember the answer.

Every report is checked before anything reaches Kafka (work point, responsibility, KPI metrics,
clock skew); it is answered `accepted` only once the broker acknowledged it (acks=all). The
`event_id` is the idempotency key: a replay of the same report gets the first answer, a different
report under a used id gets 409 `event_id_reused`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from duban_shared import attributes as attr
from duban_shared import topics
from duban_shared.api import ApiError
from duban_shared.clock import Clock, domain_span
from duban_shared.events import ReportStatus, StatusEvent
from duban_shared.failures import OutageLog
from duban_shared.kafka import link_to, send_traced
from duban_shared.runtime import PRODUCER, Background
from opentelemetry import trace
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncEngine

from progress.domain.checks import ReportProblem, check_report
from progress.settings import ProgressSettings
from progress.store import ingest
from progress.store.ingest import IngestStore
from progress.store.models import IngestedEvent, WorkPointView


class ReportIn(Protocol):
    """A status report as an agency system sent it (the API's request model)."""

    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def work_point_id(self) -> str: ...
    @property
    def status(self) -> ReportStatus: ...
    @property
    def percent(self) -> int | None: ...
    @property
    def kpis(self) -> Mapping[str, float]: ...
    @property
    def note(self) -> str | None: ...
    @property
    def evidence(self) -> list[str]: ...
    @property
    def occurred_at(self) -> datetime: ...

    def body_digest(self, agency_id: uuid.UUID) -> str:
        """The idempotency fingerprint of the report from this agency."""


@dataclass(frozen=True)
class Receipt:
    """The answer to an accepted report: where the broker stored it."""

    event_id: uuid.UUID
    partition: int
    offset: int
    late: bool


@dataclass
class Ready:
    """A checked report, ready to produce."""

    event: StatusEvent
    digest: str
    late: bool


Outcome = Receipt | ApiError
"""A report of a batch: accepted (or replayed), or refused with the single endpoint's error."""


@dataclass
class Ingestion:
    """Accepts status reports: checked, produced, answered once the broker has them."""

    settings: ProgressSettings
    clock: Clock
    tracer: Tracer
    producer: AIOKafkaProducer
    background: Background
    broker_outage: OutageLog
    store: IngestStore
    engine: AsyncEngine

    async def accept(
        self, report: ReportIn, agency_id: uuid.UUID, reported_by: str | None = None
    ) -> tuple[Receipt, bool]:
        """Accept one report (filed by the person `reported_by`, when a person did); return its
        receipt and whether it is a replay (nothing produced again). Raises ApiError for a
        report refused."""
        seen, view = await self.store.look_up(report.event_id, report.work_point_id)
        ready = self.check(report, agency_id, seen, view, reported_by)
        if isinstance(ready, Receipt):
            return ready, True
        meta = await self.produce(ready)
        [answer] = await self.record([(ready, meta)])
        if isinstance(answer, ApiError):
            raise answer  # accepted meanwhile by a concurrent request, for another body
        return answer, False

    async def accept_batch(
        self,
        reports: Mapping[int, ReportIn],
        agency_id: uuid.UUID,
        reported_by: str | None = None,
    ) -> tuple[dict[int, Outcome], set[int]]:
        """Accept reports of a batch, by index, each on its own; return the outcomes and the
        indexes answered as replays. The same `event_id` twice counts as a replay; the reports
        are produced concurrently."""
        outcomes: dict[int, Outcome] = {}
        seen, views = await ingest.look_up_many(
            self.engine,
            {r.event_id for r in reports.values()},
            {r.work_point_id for r in reports.values()},
        )
        replays: set[int] = set()  # answered with an earlier answer: nothing produced again
        ready: dict[int, Ready] = {}
        first_index: dict[uuid.UUID, int] = {}
        for index, report in reports.items():
            event_id = report.event_id
            try:
                checked = self.check(
                    report,
                    agency_id,
                    seen.get(event_id),
                    views.get(report.work_point_id),
                    reported_by,
                )
            except ApiError as exc:
                outcomes[index] = exc
                continue
            if isinstance(checked, Receipt):
                outcomes[index] = checked
                replays.add(index)
            elif event_id in first_index:
                if ready[first_index[event_id]].digest != checked.digest:
                    outcomes[index] = ApiError(
                        409,
                        "event_id_reused",
                        f"event_id {event_id} is used by another report of this batch; give "
                        "each report its own event_id.",
                    )
                else:
                    replays.add(index)
            else:
                first_index[event_id] = index
                ready[index] = checked
        produced = await asyncio.gather(
            *(self.produce(r) for r in ready.values()), return_exceptions=True
        )
        stored: list[tuple[Ready, RecordMetadata]] = []
        for index, result in zip(ready, produced, strict=True):
            if isinstance(result, ApiError):
                outcomes[index] = result
            elif isinstance(result, BaseException):
                raise result
            else:
                stored.append((ready[index], result))
        answers = await self.record(stored)
        by_event = {r.event.event_id: a for (r, _), a in zip(stored, answers, strict=True)}
        for index, report in reports.items():
            if index in outcomes:
                continue
            # produced, or a repeat within the batch of a produced one; when the first could
            # not be produced, the same error
            answer = by_event.get(report.event_id)
            first = outcomes.get(first_index[report.event_id])
            if answer is not None:
                outcomes[index] = answer
            elif first is not None:
                outcomes[index] = first
        return outcomes, replays

    def check(
        self,
        report: ReportIn,
        agency_id: uuid.UUID,
        seen: IngestedEvent | None,
        view: WorkPointView | None,
        reported_by: str | None = None,
    ) -> Ready | Receipt:
        """The first answer for a replayed event_id (`seen`: its recorded answer), or the
        report checked against its work point (`view`) and ready to produce (carrying the
        person who filed it, when a person did: not part of the idempotency fingerprint, so a
        colleague's resend of the same report is a replay)."""
        now = self.clock.now()
        digest = report.body_digest(agency_id)
        if seen is not None:
            return first_answer(seen, digest)
        # Clocks disagree by real seconds: on a simulated clock that is more simulated time.
        skew = domain_span(self.clock, timedelta(seconds=self.settings.max_clock_skew_seconds))
        if report.occurred_at > now + skew:
            raise ApiError(
                422,
                "occurred_at_in_future",
                f"occurred_at {report.occurred_at.isoformat()} is in the future (server time "
                f"{now.isoformat()}); send the time the status was observed, with its UTC "
                "offset.",
            )
        try:
            view = check_report(
                view,
                report.work_point_id,
                agency_id,
                report.kpis,
                report.occurred_at,
                timedelta(days=self.settings.earliest_report_days_before_plan),
            )
        except ReportProblem as problem:
            raise ApiError(problem.status, problem.code, problem.message) from problem
        span = trace.get_current_span()
        span.set_attribute(attr.WORK_POINT_ID, view.id)
        span.set_attribute(attr.PLAN_SLUG, view.id.rpartition("/")[0])
        span.set_attribute(attr.AGENCY_ID, str(agency_id))
        for link in link_to(view.registry_traceparent):
            span.add_link(link.context, {attr.LINK_KIND: "registry work point snapshot"})
        event = StatusEvent(
            event_id=report.event_id,
            occurred_at=report.occurred_at,
            work_point_id=report.work_point_id,
            agency_id=agency_id,
            status=report.status,
            percent=report.percent,
            kpis=report.kpis,
            note=report.note,
            evidence=report.evidence,
            received_at=now,
            reported_by=reported_by,
        )
        late = now - report.occurred_at > timedelta(days=self.settings.late_after_days)
        return Ready(event=event, digest=digest, late=late)

    async def produce(self, ready: Ready) -> RecordMetadata:
        """Send the event and wait for the broker's acknowledgement, for at most the produce
        timeout: past it, or while the broker is unreachable, the answer is 503."""
        if not self.background.ready(PRODUCER):
            raise broker_unavailable()
        try:
            meta: RecordMetadata = await asyncio.wait_for(
                send_traced(
                    self.producer,
                    self.tracer,
                    self.settings.topic_prefix + topics.STATUS,
                    ready.event.work_point_id,
                    ready.event.to_bytes(),
                ),
                timeout=self.settings.produce_timeout_seconds,
            )
        except (KafkaError, TimeoutError) as exc:
            self.broker_outage.failed(exc)
            raise broker_unavailable() from exc
        self.broker_outage.recovered()
        return meta

    async def record(self, produced: list[tuple[Ready, RecordMetadata]]) -> list[Outcome]:
        """Remember the answers, so replays get them; return them in order.

        An event_id accepted meanwhile by a concurrent request (the consumer's inbox keeps one
        of the two events) is answered as a replay would be: with that request's answer, or the
        409 of a different body (returned, not raised, so a batch refuses that report alone).
        """
        now = self.clock.now()
        rows = [
            IngestedEvent(
                event_id=r.event.event_id,
                agency_id=r.event.agency_id,
                body_sha256=r.digest,
                partition=meta.partition,
                offset=meta.offset,
                late=r.late,
                accepted_at=now,
            )
            for r, meta in produced
        ]
        if len(rows) == 1:  # a single report: in a round shared with concurrent requests
            raced = set() if await self.store.record(rows[0]) else {rows[0].event_id}
        else:
            raced = await ingest.record(self.engine, rows)
        if not raced:
            return [receipt(row) for row in rows]
        firsts, _ = await ingest.look_up_many(self.engine, raced, ())
        answers: list[Outcome] = []
        for row in rows:
            try:
                answers.append(
                    first_answer(firsts[row.event_id], row.body_sha256)
                    if row.event_id in raced
                    else receipt(row)
                )
            except ApiError as refused:
                answers.append(refused)
        return answers


def broker_unavailable() -> ApiError:
    """503: the broker does not answer; the agency resends with the same event_id."""
    return ApiError(
        503,
        "broker_unavailable",
        "The report could not be stored right now: the message broker does not answer. Resend "
        "it in a few seconds with the same event_id (it is applied once).",
        headers={"Retry-After": "5"},
    )


def receipt(row: IngestedEvent) -> Receipt:
    """The answer recorded for an event."""
    return Receipt(event_id=row.event_id, partition=row.partition, offset=row.offset, late=row.late)


def first_answer(seen: IngestedEvent, digest: str) -> Receipt:
    """The answer given when this event_id was first accepted; 409 if the body differs."""
    if seen.body_sha256 != digest:
        raise ApiError(
            409,
            "event_id_reused",
            f"event_id {seen.event_id} was already accepted at {seen.accepted_at.isoformat()} "
            "for a different report; resend that report unchanged, or give a new report a new "
            "event_id.",
        )
    return receipt(seen)
