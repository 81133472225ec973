"""Progress HTTP API: status ingestion for agency systems, and progress per work point."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from aiokafka.errors import KafkaError
from duban_shared import schemas, topics
from duban_shared.api import ApiError
from duban_shared.app import SessionDep
from duban_shared.auth import Principal, PrincipalDep, require_agency_access, require_office
from duban_shared.events import ReportStatus, StatusEvent, WorkPointId
from duban_shared.kafka import link_to, send_traced
from duban_shared.ratelimit import retry_after_header
from fastapi import APIRouter, Depends, Request, Response
from opentelemetry import trace
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from progress import history
from progress.models import IngestedEvent, WorkPointState, WorkPointView

router = APIRouter()


async def _reporting_agency(principal: PrincipalDep, request: Request) -> uuid.UUID:
    """The agency a status report is from: only agency tokens may report."""
    if principal.role != "agency" or principal.agency_id is None:
        raise ApiError(
            403,
            "agency_token_required",
            f"Status reports come from agency systems: use a token of an agency client, not "
            f"of a {principal.role} client.",
        )
    wait = request.app.state.service.rate_limiter.acquire(principal.client_id)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"Too many requests from client {principal.client_id}; retry in {wait:.1f} s "
            "with the same event_id, or send reports in fewer requests.",
            headers=retry_after_header(wait),
        )
    return principal.agency_id


AgencyDep = Annotated[uuid.UUID, Depends(_reporting_agency)]


class StatusReportIn(BaseModel):
    """A status report as an agency system posts it; the agency comes from the token."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "5f0c6a4e-8f5e-4d1c-9d7a-0b1c2d3e4f50",
                    "work_point_id": "zhaoqing-digital-2024/35",
                    "status": "blocked",
                    "percent": 40,
                    "note": "林分优化用地审批未完成",
                    "occurred_at": "2024-09-02T09:30:00+08:00",
                }
            ]
        },
    )

    event_id: uuid.UUID = Field(description="Your idempotency key: resend with the same id.")
    work_point_id: WorkPointId
    status: ReportStatus
    percent: int | None = Field(default=None, ge=0, le=100)
    note: str | None = Field(default=None, max_length=2000)
    occurred_at: AwareDatetime = Field(description="When the status was true, with an offset.")


class Accepted(BaseModel):
    """The broker has the event; progress applies it shortly."""

    event_id: uuid.UUID
    status: str = "accepted"
    partition: int
    offset: int


class ProgressOut(BaseModel):
    """Progress of one work point now."""

    work_point_id: str
    number: int
    title: str
    status: str | None
    percent: int | None
    stalled: bool
    stall_reason: str | None
    stalled_since: datetime | None
    last_lead_report_at: datetime | None
    next_check_at: datetime | None


@router.post("/v1/events", status_code=202)
async def post_event(
    report: StatusReportIn, request: Request, session: SessionDep, agency_id: AgencyDep
) -> Accepted:
    """Accept a status report: answered 202 only after Kafka acknowledged it (acks=all).

    Checked first, so nothing reaches Kafka when it fails: the work point must exist and the
    reporting agency must be responsible for it; `occurred_at` may not lie in the future beyond
    the allowed clock skew.
    """
    service = request.app.state.service
    now: datetime = service.clock.now()
    digest = _body_digest(report, agency_id)
    first = await _first_answer(session, report.event_id, digest)
    if first is not None:
        return first  # a replay: the same answer, nothing produced again
    skew = timedelta(seconds=service.settings.max_clock_skew_seconds)
    if report.occurred_at > now + skew:
        raise ApiError(
            422,
            "occurred_at_in_future",
            f"occurred_at {report.occurred_at.isoformat()} is in the future (server time "
            f"{now.isoformat()}); send the time the status was observed, with its UTC offset.",
        )
    view = await session.get(WorkPointView, report.work_point_id)
    if view is None or view.deleted:
        raise ApiError(
            404,
            "unknown_work_point",
            f"No work point '{report.work_point_id}' is tracked; ids look like "
            f"'<plan>/<number>', e.g. 'zhaoqing-digital-2024/35'.",
        )
    if view.role_of(agency_id) is None:
        raise ApiError(
            403,
            "agency_not_responsible",
            f"Your agency is neither lead nor co-responsible for work point {view.number} "
            f"({view.title}); report only on work points assigned to you.",
        )
    span = trace.get_current_span()
    span.set_attribute("duban.work_point.id", view.id)
    span.set_attribute("duban.agency.id", str(agency_id))
    for link in link_to(view.registry_traceparent):
        span.add_link(link.context, {"duban.link": "registry work point snapshot"})
    event = StatusEvent(
        event_id=report.event_id,
        occurred_at=report.occurred_at,
        work_point_id=report.work_point_id,
        agency_id=agency_id,
        status=report.status,
        percent=report.percent,
        note=report.note,
        received_at=now,
    )
    try:
        meta = await send_traced(
            service.producer,
            service.tracer,
            service.settings.topic_prefix + topics.STATUS,
            event.work_point_id,
            event.to_bytes(),
        )
    except KafkaError as exc:
        raise ApiError(
            503,
            "broker_unavailable",
            "The event could not be stored right now; retry later with the same event_id.",
        ) from exc
    accepted = Accepted(event_id=event.event_id, partition=meta.partition, offset=meta.offset)
    session.add(
        IngestedEvent(
            event_id=event.event_id,
            agency_id=agency_id,
            body_sha256=digest,
            partition=meta.partition,
            offset=meta.offset,
            accepted_at=now,
        )
    )
    try:
        await session.commit()
    except IntegrityError:
        # The same event_id was accepted concurrently; the consumer's inbox keeps one of the
        # two, so answer as a replay (same body) or a reuse (different body) would be answered.
        await session.rollback()
        first = await _first_answer(session, report.event_id, digest)
        if first is not None:
            return first
    return accepted


def _body_digest(report: StatusReportIn, agency_id: uuid.UUID) -> str:
    """SHA-256 of the agency and the report, with occurred_at in UTC (one spelling per instant)."""
    body = report.model_dump(mode="json")
    body["occurred_at"] = report.occurred_at.astimezone(UTC).isoformat()
    body["agency_id"] = str(agency_id)
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _first_answer(session: SessionDep, event_id: uuid.UUID, digest: str) -> Accepted | None:
    """The answer given when this event_id was first accepted; 409 if the body differs."""
    seen = await session.get(IngestedEvent, event_id)
    if seen is None:
        return None
    if seen.body_sha256 != digest:
        raise ApiError(
            409,
            "event_id_reused",
            f"event_id {event_id} was already accepted at {seen.accepted_at.isoformat()} for a "
            "different report; resend that report unchanged, or give a new report a new event_id.",
        )
    return Accepted(event_id=event_id, partition=seen.partition, offset=seen.offset)


@router.get("/v1/work-points/{plan_slug}/{number}/progress")
async def work_point_progress(
    plan_slug: str, number: int, session: SessionDep, principal: PrincipalDep
) -> ProgressOut:
    """Show a work point's current status and stall (an agency: only its own work points)."""
    wp_id = f"{plan_slug}/{number}"
    view = await session.get(WorkPointView, wp_id)
    state = await session.get(WorkPointState, wp_id)
    if view is None or state is None:
        raise ApiError(404, "unknown_work_point", f"No work point '{wp_id}' is tracked.")
    _may_see(principal, view)
    return ProgressOut(
        work_point_id=wp_id,
        number=view.number,
        title=view.title,
        status=state.status,
        percent=state.percent,
        stalled=state.stall_reason is not None,
        stall_reason=state.stall_reason,
        stalled_since=state.stalled_since,
        last_lead_report_at=state.last_lead_report_at,
        next_check_at=state.next_check_at,
    )


class BrokenRowOut(BaseModel):
    """The first row where the report history does not hold."""

    work_point_id: str
    chain_seq: int
    event_id: str
    problem: str = Field(description="content_changed, link_broken or sequence_gap")


class VerificationOut(BaseModel):
    """Whether the hash-chained report history is intact."""

    ok: bool
    rows_checked: int
    first_broken: BrokenRowOut | None


def _verification_out(result: history.Verification) -> VerificationOut:
    broken = result.first_broken
    return VerificationOut(
        ok=result.ok,
        rows_checked=result.rows_checked,
        first_broken=BrokenRowOut(**vars(broken)) if broken else None,
    )


@router.get("/v1/schemas/{name}", tags=["contracts"])
async def event_schema(name: str) -> Response:
    """The JSON Schema of an event, for agency systems that produce to Kafka directly."""
    if name not in schemas.PUBLISHED:
        raise ApiError(
            404,
            "unknown_schema",
            f"No schema '{name}'; published: {', '.join(sorted(schemas.PUBLISHED))}.",
        )
    return Response(schemas.render(name), media_type="application/schema+json")


@router.get("/v1/history/verify")
async def verify_all_history(session: SessionDep, principal: PrincipalDep) -> VerificationOut:
    """Check the report history of every work point (office only); name the first broken row."""
    require_office(principal)
    return _verification_out(await history.verify(session))


@router.get("/v1/work-points/{plan_slug}/{number}/history/verify")
async def verify_work_point_history(
    plan_slug: str, number: int, session: SessionDep, principal: PrincipalDep
) -> VerificationOut:
    """Check one work point's report history (an agency: only its own work points)."""
    wp_id = f"{plan_slug}/{number}"
    view = await session.get(WorkPointView, wp_id)
    if view is None:
        raise ApiError(404, "unknown_work_point", f"No work point '{wp_id}' is tracked.")
    _may_see(principal, view)
    return _verification_out(await history.verify(session, wp_id))


def _may_see(principal: Principal, view: WorkPointView) -> None:
    require_agency_access(
        principal,
        (uuid.UUID(r["agency_id"]) for r in view.responsibilities),
        f"work point {view.number} ({view.title})",
    )
