"""The report history's audit (office: all of it; an agency: its own work points) and the
published event schemas."""

from __future__ import annotations

from duban_shared import schemas
from duban_shared.api import ApiError
from duban_shared.auth import PrincipalDep, require_agency_access, require_office
from duban_shared.inputs import PlanSlug, WorkPointCode
from fastapi import APIRouter, Response

from progress.api.deps import SessionDep
from progress.api.schemas import VerificationOut, verification_out
from progress.store import history
from progress.store.models import WorkPointView

router = APIRouter()


@router.get(
    "/v1/schemas/{name}",
    tags=["contracts"],
    response_class=Response,
    responses={
        200: {
            "description": "The event's JSON Schema.",
            "content": {"application/schema+json": {"schema": {"type": "object"}}},
        }
    },
)
async def event_schema(name: str) -> Response:
    """The JSON Schema of an event, for agency systems that produce to Kafka directly."""
    if name not in schemas.PUBLISHED:
        raise ApiError(
            404,
            "unknown_schema",
            f"No schema '{name}'; published: {', '.join(sorted(schemas.PUBLISHED))}.",
        )
    return Response(schemas.render(name), media_type="application/schema+json")


@router.get("/v1/history/verify", tags=["audit"])
async def verify_all_history(session: SessionDep, principal: PrincipalDep) -> VerificationOut:
    """Check the report history of every work point (office only); name the first broken row."""
    require_office(principal)
    return verification_out(await history.verify(session))


@router.get("/v1/work-points/{plan_slug}/{code}/history/verify", tags=["audit"])
async def verify_work_point_history(
    plan_slug: PlanSlug, code: WorkPointCode, session: SessionDep, principal: PrincipalDep
) -> VerificationOut:
    """Check one work point's report history (an agency: only its own work points)."""
    wp_id = f"{plan_slug}/{code}"
    view = await session.get(WorkPointView, wp_id)
    if view is None:
        raise ApiError(404, "unknown_work_point", f"No work point '{wp_id}' is tracked.")
    require_agency_access(principal, view.agency_ids(), f"work point {view.code} ({view.title})")
    return verification_out(await history.verify(session, wp_id))
