"""A plan's progress, summary and agency scorecards.

An agency token sees the work points its agency is lead or co-responsible for; the coordinating
office (coordinator or operator) sees all.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from duban_shared.api import ApiError, Limit, Offset, Page
from duban_shared.auth import PrincipalDep, require_office
from duban_shared.inputs import PlanSlug
from fastapi import APIRouter, Query

from progress.api.deps import SessionDep
from progress.api.schemas import (
    CountsOut,
    PlanSummaryOut,
    ProgressOut,
    ScorecardOut,
    SectionCountsOut,
    counts_of,
    progress_out,
    scorecard_out,
)
from progress.api.scorecards import require_own_scorecard
from progress.domain.counts import plan_counts
from progress.store import queries
from progress.use_cases.reading import own

router = APIRouter(tags=["progress"])


@router.get("/v1/plans/{plan_slug}/progress")
async def plan_progress(
    plan_slug: PlanSlug,
    session: SessionDep,
    principal: PrincipalDep,
    level: Literal["green", "blue", "yellow", "red"] | None = None,
    section: Annotated[int | None, Query(ge=1, le=99)] = None,
    closure: Literal["in_review", "closed", "open"] | None = Query(
        default=None, description="open: neither in review nor closed"
    ),
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[ProgressOut]:
    """The plan's work points in plan order (an agency: its own), filtered by colour, section or
    closure state; `closure=in_review` is the office's review queue."""
    rows = await queries.work_points(session, plan_slug, own(principal))
    if level is not None:
        rows = [(v, s) for v, s in rows if s.level == level and s.closure is None]
    if section is not None:
        rows = [(v, s) for v, s in rows if v.section == section]
    if closure is not None:
        wanted = None if closure == "open" else closure
        rows = [(v, s) for v, s in rows if s.closure == wanted]
    page = rows[offset : offset + limit]
    latest = await queries.latest_reports(session, [v.id for v, _ in page])
    return Page(
        items=[progress_out(v, s, latest.get(v.id, {})) for v, s in page],
        total=len(rows),
        limit=limit,
        offset=offset,
    )


@router.get("/v1/plans/{plan_slug}/summary")
async def plan_summary(
    plan_slug: PlanSlug, session: SessionDep, principal: PrincipalDep
) -> PlanSummaryOut:
    """Counts by colour and reason, for the plan and for each section."""
    rows = await queries.work_points(session, plan_slug, own(principal))
    if not rows and principal.is_office():
        raise ApiError(
            404, "unknown_plan", f"No plan '{plan_slug}' is tracked; import it in the registry."
        )
    totals, sections = plan_counts(rows)
    return PlanSummaryOut(
        plan_slug=plan_slug,
        scope="all" if principal.is_office() else "own",
        totals=CountsOut(**counts_of(totals)),
        sections=[SectionCountsOut(section=n, **counts_of(c)) for n, c in sections.items()],
    )


@router.get("/v1/plans/{plan_slug}/scorecards")
async def plan_scorecards(
    plan_slug: PlanSlug, session: SessionDep, principal: PrincipalDep
) -> list[ScorecardOut]:
    """Every responsible agency's scorecard, most red first (office only)."""
    require_office(principal)
    return [scorecard_out(c) for c in await queries.plan_scorecards(session, plan_slug)]


@router.get("/v1/plans/{plan_slug}/agencies/{agency_id}/scorecard")
async def agency_scorecard(
    plan_slug: PlanSlug, agency_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ScorecardOut:
    """One agency's scorecard on a plan (an agency: its own only)."""
    require_own_scorecard(principal, agency_id)
    card = await queries.agency_scorecard(session, plan_slug, agency_id)
    if card is None:
        raise ApiError(
            404,
            "no_responsibilities",
            f"Agency {agency_id} is responsible for no tracked work point of '{plan_slug}'.",
        )
    return scorecard_out(card)
