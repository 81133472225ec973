"""Extension requests (延期申请) of a work point: a lead agency requests or withdraws, the
office approves or rejects, anyone with a token reads the history."""

from __future__ import annotations

from typing import Annotated, Any

from duban_shared import attributes
from duban_shared.api import ErrorBody, Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import Principal, PrincipalDep, require_office
from duban_shared.inputs import PlanSlug, WorkPointCode
from fastapi import APIRouter, Path, Query
from opentelemetry import trace

from registry.api.deps import ActingContextDep, ServiceDep
from registry.api.schemas import (
    ExtensionApproval,
    ExtensionIn,
    ExtensionPublic,
    ExtensionRejection,
    PlanExtensionPublic,
)
from registry.domain.extensions import STATE_LABELS, ExtensionState, not_lead
from registry.store.models import ExtensionRequest
from registry.use_cases import extensions as use_cases

router = APIRouter(
    prefix="/v1/plans/{slug}/work-points/{code}/extensions", tags=["extension requests"]
)

plan_router = APIRouter(prefix="/v1/plans/{slug}/extensions", tags=["extension requests"])

ExtensionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The request's id")]

_REQUEST_ANSWERS: dict[int | str, dict[str, Any]] = {
    **error_responses(403, 409),
    422: {
        "model": ErrorBody,
        "description": "`invalid_request`; `due_on_out_of_range` or `due_before_issue` as for "
        "a policy override; `extension_not_later`: not after the due date in force.",
    },
}
_DECISION_ANSWERS: dict[int | str, dict[str, Any]] = {
    **error_responses(403, 404),
    409: {
        "model": ErrorBody,
        "description": "`extension_not_open`: the request was already decided or withdrawn.",
    },
}


def extension_out(ext: ExtensionRequest) -> ExtensionPublic:
    """Shape a stored request for the API."""
    assert ext.id is not None
    return ExtensionPublic(
        id=ext.id,
        work_point_id=ext.work_point_id,
        agency_id=ext.agency_id,
        state=ext.state,
        state_label=STATE_LABELS[ext.state],
        requested_due_on=ext.requested_due_on,
        previous_due_on=ext.previous_due_on,
        reason=ext.reason,
        requested_by=ext.requested_by,
        requested_at=ext.requested_at,
        decided_by=ext.decided_by,
        decided_at=ext.decided_at,
        decision_note=ext.decision_note,
    )


def _counted(registry: ServiceDep, ext: ExtensionRequest) -> ExtensionPublic:
    """Count the step the request just took (its state) and shape it for the API."""
    registry.metrics.extension_requests.add(1, {attributes.OUTCOME: ext.state})
    trace.get_current_span().set_attributes(
        {
            attributes.WORK_POINT_ID: ext.work_point_id,
            attributes.EXTENSION_ID: ext.id or 0,
            attributes.EXTENSION_STATE: ext.state,
        }
    )
    return extension_out(ext)


def _agency_of(principal: Principal, slug: str, code: str) -> Any:
    if principal.role != "agency" or principal.agency_id is None:
        raise not_lead(f"{slug}/{code}")
    return principal.agency_id


@plan_router.get("", responses=error_responses(404))
async def list_plan_extensions(
    slug: PlanSlug,
    session: SessionDep,
    _p: PrincipalDep,
    state: Annotated[
        ExtensionState | None, Query(description="Only requests in this state (e.g. requested)")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[PlanExtensionPublic]:
    """The plan's extension requests, oldest first, each with its work point's code and title:
    `state=requested` lists those waiting for the office's decision (404 `unknown_plan`)."""
    rows, total = await use_cases.extensions_of_plan(session, slug, state, limit, offset)
    items = [
        PlanExtensionPublic(**extension_out(ext).model_dump(), code=wp.code, title=wp.title)
        for ext, wp in rows
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("")
async def list_extensions(
    slug: PlanSlug, code: WorkPointCode, session: SessionDep, _p: PrincipalDep
) -> list[ExtensionPublic]:
    """Every extension request of a work point, oldest first, with who decided and when."""
    return [extension_out(e) for e in await use_cases.extensions_of(session, slug, code)]


@router.post("", status_code=201, responses=_REQUEST_ANSWERS)
async def request_extension(
    slug: PlanSlug,
    code: WorkPointCode,
    body: ExtensionIn,
    ctx: ActingContextDep,
    principal: PrincipalDep,
    registry: ServiceDep,
) -> ExtensionPublic:
    """A lead agency asks for a later due date (403 `not_lead_agency` for anyone else; 409
    `extension_already_open` while another request of the work point is open)."""
    agency_id = _agency_of(principal, slug, code)
    ext = await use_cases.request_extension(ctx, slug, code, agency_id, body.due_on, body.reason)
    return _counted(registry, ext)


@router.post("/{extension_id}/withdraw", responses=_DECISION_ANSWERS)
async def withdraw_extension(
    slug: PlanSlug,
    code: WorkPointCode,
    extension_id: ExtensionId,
    ctx: ActingContextDep,
    principal: PrincipalDep,
    registry: ServiceDep,
) -> ExtensionPublic:
    """The lead agency withdraws its open request."""
    agency_id = _agency_of(principal, slug, code)
    ext = await use_cases.withdraw_extension(ctx, slug, code, extension_id, agency_id)
    return _counted(registry, ext)


@router.post("/{extension_id}/approve", responses=_DECISION_ANSWERS)
async def approve_extension(
    slug: PlanSlug,
    code: WorkPointCode,
    extension_id: ExtensionId,
    body: ExtensionApproval,
    ctx: ActingContextDep,
    principal: PrincipalDep,
    registry: ServiceDep,
) -> ExtensionPublic:
    """The office approves: the work point is due on the requested date from now on (its
    snapshot is republished and progress re-judges it)."""
    require_office(principal)
    ext = await use_cases.approve_extension(ctx, slug, code, extension_id, body.note)
    return _counted(registry, ext)


@router.post("/{extension_id}/reject", responses=_DECISION_ANSWERS)
async def reject_extension(
    slug: PlanSlug,
    code: WorkPointCode,
    extension_id: ExtensionId,
    body: ExtensionRejection,
    ctx: ActingContextDep,
    principal: PrincipalDep,
    registry: ServiceDep,
) -> ExtensionPublic:
    """The office rejects, saying why; the due date stays."""
    require_office(principal)
    ext = await use_cases.reject_extension(ctx, slug, code, extension_id, body.reason)
    return _counted(registry, ext)
