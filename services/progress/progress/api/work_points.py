"""A work point's progress and timeline (an agency: only work points it is responsible for)."""

from __future__ import annotations

from duban_shared.api import Limit, Offset, Page
from duban_shared.auth import PrincipalDep
from duban_shared.inputs import PlanSlug, WorkPointCode
from fastapi import APIRouter

from progress.api.deps import SessionDep
from progress.api.schemas import ProgressOut, TimelineEntryOut, progress_out
from progress.store import queries
from progress.use_cases import reading

router = APIRouter(tags=["progress"])


@router.get("/v1/work-points/{plan_slug}/{code}/progress")
async def work_point_progress(
    plan_slug: PlanSlug, code: WorkPointCode, session: SessionDep, principal: PrincipalDep
) -> ProgressOut:
    """A work point's colour, reasons, percent against the pace line, KPIs and agencies."""
    return progress_out(*await reading.work_point(session, principal, plan_slug, code))


@router.get("/v1/work-points/{plan_slug}/{code}/timeline")
async def work_point_timeline(
    plan_slug: PlanSlug,
    code: WorkPointCode,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[TimelineEntryOut]:
    """Everything that happened to a work point, newest first."""
    view, _ = await reading.tracked(session, principal, plan_slug, code)
    entries, total = await queries.timeline(session, view.id, limit, offset)
    items = [TimelineEntryOut.model_validate(vars(e)) for e in entries]
    return Page(items=items, total=total, limit=limit, offset=offset)
