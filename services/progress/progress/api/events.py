"""Status ingestion for agency systems: one report, or a batch of them (use_cases.ingestion
checks, produces and answers them; here they are read, rate limited and counted)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from duban_shared import attributes as attr
from duban_shared.api import DATABASE_ERRORS, ApiError, ErrorBody, validation_code
from duban_shared.auth import PrincipalDep
from duban_shared.events import coded_error
from duban_shared.ratelimit import retry_after_header
from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError

from progress.api.deps import ServiceDep, service
from progress.api.schemas import (
    EXAMPLE,
    Accepted,
    BatchItemOut,
    BatchOut,
    ItemError,
    StatusReportIn,
)
from progress.service import ProgressService
from progress.use_cases.ingestion import Receipt

ACCEPTED, REPLAYED, REJECTED = "accepted", "replayed", "rejected"


def count_outcome(request: Request, outcome: str, error: str | None = None, n: int = 1) -> None:
    """Add to `duban.ingest.events` (outcome, and error.type for a rejection)."""
    attributes = {attr.OUTCOME: outcome}
    if error is not None:
        attributes[attr.ERROR_TYPE] = error
    service(request).metrics.ingest_events.add(n, attributes)


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
                count_outcome(request, REJECTED, exc.code)
                raise
            except RequestValidationError as exc:
                count_outcome(request, REJECTED, validation_code(exc)[0])
                raise
            except DATABASE_ERRORS:
                count_outcome(request, REJECTED, "database_unavailable")
                raise

        return counted


router = APIRouter(tags=["ingestion"], route_class=_CountedRoute)


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


def take_tokens(svc: ProgressService, client_id: str, cost: int) -> None:
    wait = svc.rate_limiter.acquire(client_id, cost)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"Too many reports from client {client_id}; retry in {wait:.1f} s with the same "
            "event_ids, or send reports in fewer requests.",
            headers=retry_after_header(wait),
        )


@router.post("/v1/events", status_code=202, responses=SINGLE_RESPONSES)
async def post_event(
    report: StatusReportIn, request: Request, principal: PrincipalDep, svc: ServiceDep
) -> Accepted:
    """Accept one status report: answered 202 only after Kafka acknowledged it (acks=all).

    Checked first, so nothing reaches Kafka when it fails: the work point must exist, the
    reporting agency must be responsible for it, KPI metrics must be its targets', and
    `occurred_at` must lie in the years 2000 to 2099, not in the future beyond the allowed clock
    skew, nor long before its plan starts. A report of a moment long past (within the plan) is
    accepted and marked `late`. A token of a person (claim `person`) records that person as
    `reported_by` of the report.
    """
    agency_id = _reporting_agency(principal)
    take_tokens(svc, principal.client_id, 1)
    receipt, replayed = await svc.ingestion.accept(report, agency_id, principal.person)
    count_outcome(request, REPLAYED if replayed else ACCEPTED)
    return _accepted_out(receipt)


@router.post("/v1/events/batch", responses=BATCH_RESPONSES)
async def post_events_batch(
    request: Request,
    principal: PrincipalDep,
    svc: ServiceDep,
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
    items = body.get("events")
    limit = svc.settings.batch_max_events
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
    take_tokens(svc, principal.client_id, len(items))
    invalid: dict[int, BatchItemOut] = {}
    reports: dict[int, StatusReportIn] = {}
    for index, item in enumerate(items):
        try:
            reports[index] = StatusReportIn.model_validate(item)
        except ValidationError as exc:
            code, message = coded_error(exc) or ("invalid_event", str(exc))
            invalid[index] = _rejected(index, _event_id_of(item), 422, code, message)
    outcomes, replays = await svc.ingestion.accept_batch(reports, agency_id, principal.person)
    final: list[BatchItemOut] = []
    for index in range(len(items)):
        if index in invalid:
            final.append(invalid[index])
            continue
        outcome = outcomes[index]
        if isinstance(outcome, ApiError):
            event_id = reports[index].event_id
            final.append(_rejected(index, event_id, outcome.status, outcome.code, outcome.message))
        else:
            final.append(_batch_accepted(index, outcome))
    for r in final:
        if r.status == "rejected":
            count_outcome(request, REJECTED, r.error.code if r.error else None)
        else:
            count_outcome(request, REPLAYED if r.index in replays else ACCEPTED)
    accepted = sum(1 for r in final if r.status == "accepted")
    return BatchOut(accepted=accepted, rejected=len(final) - accepted, results=final)


def _event_id_of(item: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(item["event_id"])) if isinstance(item, dict) else None
    except (KeyError, ValueError):
        return None


def _accepted_out(receipt: Receipt) -> Accepted:
    return Accepted(
        event_id=receipt.event_id,
        partition=receipt.partition,
        offset=receipt.offset,
        late=receipt.late,
    )


def _batch_accepted(index: int, answer: Receipt) -> BatchItemOut:
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
