"""Status ingestion for agency systems: one report, or a batch of them.

Every report is checked before anything reaches Kafka (work point, responsibility, KPI metrics,
clock skew); it is answered `accepted` only once the broker acknowledged it (acks=all). The
`event_id` is the idempotency key: a replay of the same report gets the first answer, a different
report under a used id gets 409 `event_id_reused`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from duban_shared import attributes as attr
from duban_shared import topics
from duban_shared.api import DATABASE_ERRORS, ApiError, ErrorBody, validation_code
from duban_shared.auth import PrincipalDep
from duban_shared.clock import domain_span
from duban_shared.events import (
    ReportStatus,
    ReportTime,
    StatusEvent,
    WorkPointId,
    coded_error,
)
from duban_shared.inputs import Line, Number, StrictInt, Text, text_only
from duban_shared.kafka import link_to, send_traced
from duban_shared.ratelimit import retry_after_header
from duban_shared.runtime import PRODUCER
from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from opentelemetry import trace
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from progress import ingest_store
from progress.checks import ReportProblem, check_report
from progress.models import IngestedEvent, WorkPointView

ACCEPTED, REPLAYED, REJECTED = "accepted", "replayed", "rejected"


def _count(request: Request, outcome: str, error: str | None = None, n: int = 1) -> None:
    """Add to `duban.ingest.events` (outcome, and error.type for a rejection)."""
    attributes = {attr.OUTCOME: outcome}
    if error is not None:
        attributes[attr.ERROR_TYPE] = error
    request.app.state.service.metrics.ingest_events.add(n, attributes)


class _CountedRoute(APIRoute):
    """Counts a request refused as a whole (token, body, rate limit...) as one rejected event.

    What the handler itself judges (each report of a batch, accepted or replayed reports) it
    counts itself.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def counted(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                _count(request, REJECTED, exc.code)
                raise
            except RequestValidationError as exc:
                _count(request, REJECTED, validation_code(exc)[0])
                raise
            except DATABASE_ERRORS:
                _count(request, REJECTED, "database_unavailable")
                raise

        return counted


router = APIRouter(tags=["ingestion"], route_class=_CountedRoute)


EXAMPLE: dict[str, Any] = {  # valid, and accepted on the 2024 plan (tests/test_api_contract.py)
    "event_id": "5f0c6a4e-8f5e-4d1c-9d7a-0b1c2d3e4f50",
    "work_point_id": "zhaoqing-digital-2024/35",
    "status": "at_risk",
    "percent": 40,
    "kpis": {"林分优化": 5.2},
    "note": "林分优化用地审批未完成",
    "evidence": ["https://lyj.zhaoqing.gov.cn/reports/2024-09.pdf"],
    "occurred_at": "2024-09-02T09:30:00+08:00",
}


HttpEvidenceUrl = Annotated[
    str,
    Field(
        max_length=500,
        pattern=r"^https?://[^\s\x00-\x1F\x7F-\x9F]+$",
        description="A link to evidence: a document, a photo, a system page (http or https).",
    ),
]
"""An evidence link as ingestion takes it: also no control characters (the event's own
pattern only refuses white space)."""


class StatusReportIn(BaseModel):
    """A status report as an agency system posts it; the agency comes from the token."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    event_id: uuid.UUID = Field(description="Your idempotency key: resend with the same id.")
    work_point_id: WorkPointId
    status: ReportStatus
    percent: StrictInt | None = Field(default=None, ge=0, le=100)
    kpis: dict[Annotated[Line, Field(min_length=1, max_length=100)], Number] = Field(
        default_factory=dict,
        max_length=20,
        description="KPI actuals, metric -> value; metrics are the work point's target metrics "
        "(GET the registry's work point to see them).",
    )
    note: Text | None = Field(default=None, max_length=2000)
    evidence: list[HttpEvidenceUrl] = Field(default_factory=list, max_length=10)
    occurred_at: Annotated[ReportTime, BeforeValidator(text_only)]


class Accepted(BaseModel):
    """The broker has the event; progress applies it shortly."""

    event_id: uuid.UUID
    status: Literal["accepted"] = "accepted"
    partition: int
    offset: int
    late: bool = Field(
        default=False, description="Accepted, but marked late: it describes a moment long past."
    )


class ItemError(BaseModel):
    """Why one report of a batch was not accepted."""

    code: str
    message: str
    details: Any | None = None


class BatchItemOut(BaseModel):
    """The answer for one report of a batch, in the order sent."""

    index: int
    event_id: uuid.UUID | None
    status: Literal["accepted", "rejected"]
    http_status: int = Field(description="What POST /v1/events would have answered.")
    partition: int | None = None
    offset: int | None = None
    late: bool = False
    error: ItemError | None = None


class BatchOut(BaseModel):
    """Per-report answers: resend only the rejected ones that a retry can help (5xx, 429)."""

    accepted: int
    rejected: int
    results: list[BatchItemOut]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_REFUSED_ALIKE: dict[
    int | str, dict[str, Any]
] = {  # what a whole request, single or batch, may be refused with
    401: _error("`missing_token`, `token_expired`, `invalid_token`...: get a new token."),
    403: _error("`agency_token_required`: reports come from agency clients."),
    413: _error("`body_too_large`"),
    429: _error("`rate_limited`: resend after `Retry-After` with the same event_id(s)."),
    503: _error("`broker_unavailable`, `database_unavailable`: resend with the same event_id."),
}
REPORT_REFUSALS = (
    "`invalid_request` (see `details`); `occurred_at_out_of_range` (a year outside 2000 to "
    "2099, e.g. 0001 or 9999); `occurred_at_before_plan` (more than "
    "DUBAN_PROGRESS_EARLIEST_REPORT_DAYS_BEFORE_PLAN days, 90, before 1 January of the plan's "
    "year); `occurred_at_in_future` (beyond the allowed clock skew); `unknown_metric`."
)
SINGLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_REFUSED_ALIKE,
    403: _error("`agency_token_required`; `agency_not_responsible` for this work point."),
    404: _error("`unknown_work_point`"),
    409: _error("`event_id_reused`: this event_id was accepted for another report."),
    422: _error(REPORT_REFUSALS),
}
BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_REFUSED_ALIKE,
    413: _error("`batch_too_large` (more reports than allowed), `body_too_large`."),
    422: _error(
        '`invalid_batch`: the body is not {"events": [...]} with at least one report. A '
        "report that fails its own checks does not refuse the batch: it is answered in "
        "`results` with `status: rejected`, the `http_status` and `error.code` the single "
        "endpoint would give (`invalid_event` for a report that is not one, and "
        + REPORT_REFUSALS.replace("`invalid_request` (see `details`); ", "")
        + ")."
    ),
}


@dataclass
class _Ready:
    """A checked report, ready to produce."""

    event: StatusEvent
    digest: str
    late: bool


def _reporting_agency(principal: PrincipalDep) -> uuid.UUID:
    """The agency a status report is from: only agency tokens may report."""
    if principal.role != "agency" or principal.agency_id is None:
        raise ApiError(
            403,
            "agency_token_required",
            f"Status reports come from agency systems: use a token of an agency client, not "
            f"of a {principal.role} client.",
        )
    return principal.agency_id


def _take_tokens(request: Request, client_id: str, cost: int) -> None:
    wait = request.app.state.service.rate_limiter.acquire(client_id, cost)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"Too many reports from client {client_id}; retry in {wait:.1f} s with the same "
            "event_ids, or send reports in fewer requests.",
            headers=retry_after_header(wait),
        )


@router.post("/v1/events", status_code=202, responses=SINGLE_RESPONSES)
async def post_event(report: StatusReportIn, request: Request, principal: PrincipalDep) -> Accepted:
    """Accept one status report: answered 202 only after Kafka acknowledged it (acks=all).

    Checked first, so nothing reaches Kafka when it fails: the work point must exist, the
    reporting agency must be responsible for it, KPI metrics must be its targets', and
    `occurred_at` must lie in the years 2000 to 2099, not in the future beyond the allowed clock
    skew, nor long before its plan starts. A report of a moment long past (within the plan) is
    accepted and marked `late`.
    """
    agency_id = _reporting_agency(principal)
    _take_tokens(request, principal.client_id, 1)
    service = request.app.state.service
    seen, view = await service.ingest.look_up(report.event_id, report.work_point_id)
    ready = _check(service, report, agency_id, seen, view)
    if isinstance(ready, Accepted):
        _count(request, REPLAYED)
        return ready  # a replay: the same answer, nothing produced again
    meta = await _produce(service, ready)
    [answer] = await _record(service, [(ready, meta)])
    if isinstance(answer, ApiError):
        raise answer  # accepted meanwhile by a concurrent request, for another body
    _count(request, ACCEPTED)
    return answer


@router.post("/v1/events/batch", responses=BATCH_RESPONSES)
async def post_events_batch(
    request: Request,
    principal: PrincipalDep,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[{"events": [EXAMPLE]}],
            description='{"events": [report, ...]}: each report as for POST /v1/events.',
            # Each report is judged on its own (a bad one is rejected in the results, the
            # others accepted), so the batch's schema only requires a non-empty list of objects.
            json_schema_extra={
                "required": ["events"],
                "properties": {
                    "events": {"type": "array", "minItems": 1, "items": {"type": "object"}}
                },
                "additionalProperties": False,
            },
        ),
    ],
) -> BatchOut:
    """Accept up to `batch_max_events` reports in one request, each answered on its own.

    A report that fails its checks is rejected alone (with the code and HTTP status the single
    endpoint would give); the others are produced to Kafka concurrently and accepted once the
    broker acknowledged them. The same `event_id` twice in one batch counts as a replay.
    """
    agency_id = _reporting_agency(principal)
    service = request.app.state.service
    items = body.get("events")
    limit = service.settings.batch_max_events
    if (
        not isinstance(items, list)
        or not items
        or set(body) != {"events"}
        or not all(isinstance(item, dict) for item in items)
    ):
        raise ApiError(
            422,
            "invalid_batch",
            'Send {"events": [report, ...]} with at least one report (each a JSON object) and '
            "nothing else.",
        )
    if len(items) > limit:
        raise ApiError(
            413,
            "batch_too_large",
            f"The batch has {len(items)} reports; send at most {limit} per request.",
        )
    _take_tokens(request, principal.client_id, len(items))
    results: list[BatchItemOut | None] = [None] * len(items)
    reports: dict[int, StatusReportIn] = {}
    for index, item in enumerate(items):
        try:
            reports[index] = StatusReportIn.model_validate(item)
        except ValidationError as exc:
            code, message = coded_error(exc) or ("invalid_event", str(exc))
            results[index] = _rejected(index, _event_id_of(item), 422, code, message)
    seen, views = await ingest_store.look_up_many(
        service.engine,
        {r.event_id for r in reports.values()},
        {r.work_point_id for r in reports.values()},
    )
    replays: set[int] = set()  # answered with an earlier answer: nothing produced again
    ready: dict[int, _Ready] = {}
    first_index: dict[uuid.UUID, int] = {}
    for index, report in reports.items():
        event_id = report.event_id
        try:
            checked = _check(
                service, report, agency_id, seen.get(event_id), views.get(report.work_point_id)
            )
        except ApiError as exc:
            results[index] = _rejected(index, event_id, exc.status, exc.code, exc.message)
            continue
        if isinstance(checked, Accepted):
            results[index] = _accepted(index, checked)
            replays.add(index)
        elif report.event_id in first_index:
            earlier = ready[first_index[report.event_id]]
            if earlier.digest != checked.digest:
                results[index] = _rejected(
                    index,
                    event_id,
                    409,
                    "event_id_reused",
                    f"event_id {report.event_id} is used by another report of this batch; give "
                    "each report its own event_id.",
                )
            else:
                replays.add(index)
        else:
            first_index[report.event_id] = index
            ready[index] = checked
    produced = await asyncio.gather(
        *(_produce(service, r) for r in ready.values()), return_exceptions=True
    )
    stored: list[tuple[_Ready, RecordMetadata]] = []
    for index, outcome in zip(ready, produced, strict=True):
        if isinstance(outcome, ApiError):
            results[index] = _rejected(
                index, ready[index].event.event_id, outcome.status, outcome.code, outcome.message
            )
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            stored.append((ready[index], outcome))
    answers = await _record(service, stored)
    by_event = {r.event.event_id: a for (r, _), a in zip(stored, answers, strict=True)}
    for index, result in enumerate(results):
        if result is None:  # produced, or a repeat within the batch of a produced one
            produced_id = reports[index].event_id
            answer = by_event.get(produced_id)
            first = results[first_index[produced_id]]
            if isinstance(answer, Accepted):
                results[index] = _accepted(index, answer)
            elif isinstance(answer, ApiError):  # accepted meanwhile by a concurrent request
                results[index] = _rejected(
                    index, produced_id, answer.status, answer.code, answer.message
                )
            elif first is not None:  # the first one could not be produced: the same error
                results[index] = first.model_copy(update={"index": index})
    final = [r for r in results if r is not None]
    for r in final:
        if r.status == "rejected":
            _count(request, REJECTED, r.error.code if r.error else None)
        else:
            _count(request, REPLAYED if r.index in replays else ACCEPTED)
    accepted = sum(1 for r in final if r.status == "accepted")
    return BatchOut(accepted=accepted, rejected=len(final) - accepted, results=final)


def _event_id_of(item: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(item["event_id"])) if isinstance(item, dict) else None
    except (KeyError, ValueError):
        return None


def _accepted(index: int, answer: Accepted) -> BatchItemOut:
    return BatchItemOut(
        index=index,
        event_id=answer.event_id,
        status="accepted",
        http_status=202,
        partition=answer.partition,
        offset=answer.offset,
        late=answer.late,
    )


def _rejected(
    index: int, event_id: uuid.UUID | None, status: int, code: str, message: str
) -> BatchItemOut:
    return BatchItemOut(
        index=index,
        event_id=event_id,
        status="rejected",
        http_status=status,
        error=ItemError(code=code, message=message),
    )


def _check(
    service: Any,
    report: StatusReportIn,
    agency_id: uuid.UUID,
    seen: IngestedEvent | None,
    view: WorkPointView | None,
) -> _Ready | Accepted:
    """The first answer for a replayed event_id (`seen`: its recorded answer), or the report
    checked against its work point (`view`) and ready to produce."""
    now: datetime = service.clock.now()
    digest = _body_digest(report, agency_id)
    if seen is not None:
        return _first_answer(seen, digest)
    # Clocks disagree by real seconds: on a simulated clock that is more simulated time.
    skew = domain_span(service.clock, timedelta(seconds=service.settings.max_clock_skew_seconds))
    if report.occurred_at > now + skew:
        raise ApiError(
            422,
            "occurred_at_in_future",
            f"occurred_at {report.occurred_at.isoformat()} is in the future (server time "
            f"{now.isoformat()}); send the time the status was observed, with its UTC offset.",
        )
    try:
        view = check_report(
            view,
            report.work_point_id,
            agency_id,
            report.kpis,
            report.occurred_at,
            timedelta(days=service.settings.earliest_report_days_before_plan),
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
    )
    late = now - report.occurred_at > timedelta(days=service.settings.late_after_days)
    return _Ready(event=event, digest=digest, late=late)


async def _produce(service: Any, ready: _Ready) -> RecordMetadata:
    """Send the event and wait for the broker's acknowledgement, for at most the produce
    timeout: past it, or while the broker is unreachable, the answer is 503."""
    if not service.background.ready(PRODUCER):
        raise _broker_unavailable(service)
    try:
        meta: RecordMetadata = await asyncio.wait_for(
            send_traced(
                service.producer,
                service.tracer,
                service.settings.topic_prefix + topics.STATUS,
                ready.event.work_point_id,
                ready.event.to_bytes(),
            ),
            timeout=service.settings.produce_timeout_seconds,
        )
    except (KafkaError, TimeoutError) as exc:
        service.broker_outage.failed(exc)
        raise _broker_unavailable(service) from exc
    service.broker_outage.recovered()
    return meta


def _broker_unavailable(service: Any) -> ApiError:
    return ApiError(
        503,
        "broker_unavailable",
        "The report could not be stored right now: the message broker does not answer. Resend "
        "it in a few seconds with the same event_id (it is applied once).",
        headers={"Retry-After": "5"},
    )


async def _record(
    service: Any, produced: list[tuple[_Ready, RecordMetadata]]
) -> list[Accepted | ApiError]:
    """Remember the answers, so replays get them; return them in order.

    An event_id accepted meanwhile by a concurrent request (the consumer's inbox keeps one of the
    two events) is answered as a replay would be: with that request's answer, or the 409 of a
    different body (returned, not raised, so a batch refuses that report alone).
    """
    now = service.clock.now()
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
        raced = set() if await service.ingest.record(rows[0]) else {rows[0].event_id}
    else:
        raced = await ingest_store.record(service.engine, rows)
    if not raced:
        return [_answer(row) for row in rows]
    firsts, _ = await ingest_store.look_up_many(service.engine, raced, ())
    answers: list[Accepted | ApiError] = []
    for row in rows:
        try:
            answers.append(
                _first_answer(firsts[row.event_id], row.body_sha256)
                if row.event_id in raced
                else _answer(row)
            )
        except ApiError as refused:
            answers.append(refused)
    return answers


def _answer(row: IngestedEvent) -> Accepted:
    return Accepted(
        event_id=row.event_id, partition=row.partition, offset=row.offset, late=row.late
    )


def _body_digest(report: StatusReportIn, agency_id: uuid.UUID) -> str:
    """SHA-256 of the agency and the report, with occurred_at in UTC (one spelling per instant)."""
    body = report.model_dump(mode="json")
    for later in ("kpis", "evidence"):  # fields added later count only when given, so replays
        if not body[later]:  # of reports accepted before them still match
            del body[later]
    body["occurred_at"] = report.occurred_at.astimezone(UTC).isoformat()
    body["agency_id"] = str(agency_id)
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _first_answer(seen: IngestedEvent, digest: str) -> Accepted:
    """The answer given when this event_id was first accepted; 409 if the body differs."""
    if seen.body_sha256 != digest:
        raise ApiError(
            409,
            "event_id_reused",
            f"event_id {seen.event_id} was already accepted at {seen.accepted_at.isoformat()} "
            "for a different report; resend that report unchanged, or give a new report a new "
            "event_id.",
        )
    return _answer(seen)
