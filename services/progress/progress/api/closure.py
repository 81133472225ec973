"""Closure review (办结销号): the coordinating office approves or rejects a work point in review."""

from __future__ import annotations

from duban_shared.api import ApiError, error_responses
from duban_shared.auth import PrincipalDep
from duban_shared.inputs import PlanSlug, WorkPointCode
from fastapi import APIRouter

from progress.api.deps import ServiceDep
from progress.api.schemas import ApproveIn, ProgressOut, RejectIn, progress_out
from progress.use_cases.closure import ClosureConflict, Decided

router = APIRouter(tags=["closure"])


@router.post("/v1/work-points/{plan_slug}/{code}/closure/approve", responses=error_responses(409))
async def approve_closure(
    plan_slug: PlanSlug,
    code: WorkPointCode,
    body: ApproveIn,
    svc: ServiceDep,
    principal: PrincipalDep,
) -> ProgressOut:
    """Close a work point in review (办结销号): no more checks; the lead is told."""
    try:
        decided = await svc.closure.decide(
            principal, plan_slug, code, approve=True, reason=body.note
        )
    except ClosureConflict as conflict:
        raise not_in_review(code, conflict) from conflict
    return _out(decided)


@router.post("/v1/work-points/{plan_slug}/{code}/closure/reject", responses=error_responses(409))
async def reject_closure(
    plan_slug: PlanSlug,
    code: WorkPointCode,
    body: RejectIn,
    svc: ServiceDep,
    principal: PrincipalDep,
) -> ProgressOut:
    """Send a work point in review back to in progress, with the reason on record."""
    try:
        decided = await svc.closure.decide(
            principal, plan_slug, code, approve=False, reason=body.reason
        )
    except ClosureConflict as conflict:
        raise not_in_review(code, conflict) from conflict
    return _out(decided)


def not_in_review(code: str, conflict: ClosureConflict) -> ApiError:
    """409 not_in_review: a decision on a work point not in review."""
    where = {None: "in progress", "closed": "already closed"}.get(conflict.closure, "?")
    return ApiError(
        409,
        "not_in_review",
        f"Work point {code} is {where}: only a work point whose lead agencies all "
        "reported `done` can be approved or rejected.",
    )


def _out(decided: Decided) -> ProgressOut:
    view, state, latest = decided
    return progress_out(view, state, latest)
