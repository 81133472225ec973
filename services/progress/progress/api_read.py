"""Progress read API: per work point, per agency and per plan, and closure review.

An agency token sees the work points its agency is lead or co-responsible for; the coordinating
office (coordinator or operator) sees all and decides closure requests (办结销号).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from duban_shared import schemas
from duban_shared.api import ApiError, Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import Principal, PrincipalDep, require_agency_access, require_office
from duban_shared.inputs import PathNumber, PlanSlug, Text
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress import history, queries
from progress.models import AgencyProgress, WorkPointState, WorkPointView
from progress.store import ClosureConflict, decide_closure

router = APIRouter()


class TargetProgressOut(BaseModel):
    """A quantitative target and how far it has come."""

    metric: str
    target: float
    unit: str
    comparator: str
    actual: float | None
    achieved_pct: float | None = Field(description="actual / target, in percent (not for <=).")


class AgencyReportOut(BaseModel):
    """One responsible agency's latest report."""

    agency_id: uuid.UUID
    name: str
    role: str
    status: str | None
    percent: int | None
    kpis: dict[str, float]
    last_report_at: datetime | None


class ProgressOut(BaseModel):
    """Progress of one work point now."""

    work_point_id: str
    number: int
    section: int
    title: str
    level: str = Field(description="green, blue (due soon), yellow (behind), red (stalled)")
    reasons: list[str]
    status: str | None
    percent: int | None
    expected_percent: float | None = Field(description="Where the straight line is today.")
    targets: list[TargetProgressOut]
    due_on: date | None
    closure: str | None = Field(description="in_review or closed; null while in progress")
    closure_requested_at: datetime | None
    closed_at: datetime | None
    stalled: bool = Field(description="An episode is open (any colour but green).")
    stall_reason: str | None
    stall_episode_id: uuid.UUID | None
    stalled_since: datetime | None
    last_lead_report_at: datetime | None
    next_check_at: datetime | None
    calendar: Literal["official", "provisional"] = Field(
        description="The working-day calendar the current judgement counted on: `provisional` "
        "when it used a year whose official holiday arrangement is not installed (weekends and "
        "statutory holidays, no 调休); it is judged again once the arrangement is added."
    )
    provisional_years: list[int] = Field(
        description="The years counted on the provisional calendar (empty when official)."
    )
    agencies: list[AgencyReportOut]


def _progress_out(
    view: WorkPointView, state: WorkPointState, latest: dict[uuid.UUID, AgencyProgress]
) -> ProgressOut:
    targets = []
    for t in view.targets:
        actual = state.kpis.get(t["metric"])
        paced = t["comparator"] != "<=" and t["value"]
        targets.append(
            TargetProgressOut(
                metric=t["metric"],
                target=t["value"],
                unit=t["unit"],
                comparator=t["comparator"],
                actual=actual,
                achieved_pct=round(100 * actual / t["value"], 1)
                if actual is not None and paced
                else None,
            )
        )
    agencies = []
    for r in view.responsibilities:
        report = latest.get(uuid.UUID(r["agency_id"]))
        agencies.append(
            AgencyReportOut(
                agency_id=r["agency_id"],
                name=r["name"],
                role=r["role"],
                status=report.status if report else None,
                percent=report.percent if report else None,
                kpis=report.kpis if report else {},
                last_report_at=report.last_report_at if report else None,
            )
        )
    return ProgressOut(
        work_point_id=view.id,
        number=view.number,
        section=view.section,
        title=view.title,
        level=state.level,
        reasons=state.reasons,
        status=state.status,
        percent=state.percent,
        expected_percent=(
            round(state.expected_percent, 1) if state.expected_percent is not None else None
        ),
        targets=targets,
        due_on=view.due_on,
        closure=state.closure,
        closure_requested_at=state.closure_requested_at,
        closed_at=state.closed_at,
        stalled=state.stall_episode_id is not None,
        stall_reason=state.stall_reason,
        stall_episode_id=state.stall_episode_id,
        stalled_since=state.stalled_since,
        last_lead_report_at=state.last_lead_report_at,
        next_check_at=state.next_check_at,
        calendar="provisional" if state.provisional_years else "official",
        provisional_years=list(state.provisional_years or []),
        agencies=agencies,
    )


async def _latest(
    session: AsyncSession, wp_ids: list[str]
) -> dict[str, dict[uuid.UUID, AgencyProgress]]:
    rows = (
        await session.exec(
            select(AgencyProgress).where(col(AgencyProgress.work_point_id).in_(wp_ids))
        )
    ).all()
    latest: dict[str, dict[uuid.UUID, AgencyProgress]] = {}
    for row in rows:
        latest.setdefault(row.work_point_id, {})[row.agency_id] = row
    return latest


async def _tracked(
    session: AsyncSession, principal: Principal, plan_slug: str, number: int
) -> tuple[WorkPointView, WorkPointState]:
    wp_id = f"{plan_slug}/{number}"
    view = await session.get(WorkPointView, wp_id)
    state = await session.get(WorkPointState, wp_id)
    if view is None or state is None or view.deleted:
        raise ApiError(
            404,
            "unknown_work_point",
            f"No work point '{wp_id}' is tracked; check the plan slug and number in the registry.",
        )
    require_agency_access(principal, view.agency_ids(), f"work point {view.number} ({view.title})")
    return view, state


@router.get("/v1/work-points/{plan_slug}/{number}/progress", tags=["progress"])
async def work_point_progress(
    plan_slug: PlanSlug, number: PathNumber, session: SessionDep, principal: PrincipalDep
) -> ProgressOut:
    """A work point's colour, reasons, percent against the pace line, KPIs and agencies."""
    view, state = await _tracked(session, principal, plan_slug, number)
    latest = await _latest(session, [view.id])
    return _progress_out(view, state, latest.get(view.id, {}))


@router.get("/v1/plans/{plan_slug}/progress", tags=["progress"])
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
    """The plan's work points by number (an agency: its own), filtered by colour, section or
    closure state; `closure=in_review` is the office's review queue."""
    rows = await queries.work_points(session, plan_slug, _own(principal))
    if level is not None:
        rows = [(v, s) for v, s in rows if s.level == level and s.closure is None]
    if section is not None:
        rows = [(v, s) for v, s in rows if v.section == section]
    if closure is not None:
        wanted = None if closure == "open" else closure
        rows = [(v, s) for v, s in rows if s.closure == wanted]
    page = rows[offset : offset + limit]
    latest = await _latest(session, [v.id for v, _ in page])
    return Page(
        items=[_progress_out(v, s, latest.get(v.id, {})) for v, s in page],
        total=len(rows),
        limit=limit,
        offset=offset,
    )


def _own(principal: Principal) -> uuid.UUID | None:
    """Whose work points a caller sees: None for the office (all)."""
    return None if principal.is_office() else principal.agency_id


class CountsOut(BaseModel):
    """Work points by colour; those in review or closed are counted apart."""

    work_points: int
    by_level: dict[str, int]
    by_reason: dict[str, int]
    in_review: int
    closed: int


class SectionCountsOut(CountsOut):
    """Counts of one section of the plan."""

    section: int


class PlanSummaryOut(BaseModel):
    """A plan at a glance."""

    plan_slug: str
    scope: Literal["all", "own"] = Field(description="own: an agency sees its work points only")
    totals: CountsOut
    sections: list[SectionCountsOut]


def _counts(counts: queries.Counts) -> dict[str, Any]:
    return {
        "work_points": counts.work_points,
        "by_level": counts.by_level,
        "by_reason": counts.by_reason,
        "in_review": counts.in_review,
        "closed": counts.closed,
    }


@router.get("/v1/plans/{plan_slug}/summary", tags=["progress"])
async def plan_summary(
    plan_slug: PlanSlug, session: SessionDep, principal: PrincipalDep
) -> PlanSummaryOut:
    """Counts by colour and reason, for the plan and for each section."""
    rows = await queries.work_points(session, plan_slug, _own(principal))
    if not rows and principal.is_office():
        raise ApiError(
            404, "unknown_plan", f"No plan '{plan_slug}' is tracked; import it in the registry."
        )
    totals, sections = queries.plan_counts(rows)
    return PlanSummaryOut(
        plan_slug=plan_slug,
        scope="all" if principal.is_office() else "own",
        totals=CountsOut(**_counts(totals)),
        sections=[SectionCountsOut(section=n, **_counts(c)) for n, c in sections.items()],
    )


class ScorecardOut(BaseModel):
    """How an agency does on the work points it is responsible for."""

    agency_id: uuid.UUID
    name: str
    lead_of: int
    co_of: int
    reports: int = Field(description="In-order reports on these work points.")
    reports_on_time: int = Field(description="Within the report period after the previous one.")
    on_time_rate: float | None
    late_reports: int = Field(description="Reports marked late: sent long after the fact.")
    average_delay_working_days: float | None = Field(
        description="Working days past the report period, averaged over its reports."
    )
    open_stalls: dict[str, int] = Field(description="Open episodes on work points it leads.")
    silent_now: int


def _scorecard_out(card: queries.Scorecard) -> ScorecardOut:
    return ScorecardOut(
        agency_id=card.agency_id,
        name=card.name,
        lead_of=card.lead_of,
        co_of=card.co_of,
        reports=card.reports,
        reports_on_time=card.reports_on_time,
        on_time_rate=round(card.on_time_rate, 3) if card.on_time_rate is not None else None,
        late_reports=card.late_reports,
        average_delay_working_days=card.average_delay_working_days,
        open_stalls=card.open_stalls,
        silent_now=card.silent_now,
    )


@router.get("/v1/plans/{plan_slug}/scorecards", tags=["progress"])
async def plan_scorecards(
    plan_slug: PlanSlug, session: SessionDep, principal: PrincipalDep
) -> list[ScorecardOut]:
    """Every responsible agency's scorecard, most red first (office only)."""
    require_office(principal)
    rows = await queries.work_points(session, plan_slug)
    return [_scorecard_out(c) for c in await queries.scorecards(session, rows)]


@router.get("/v1/plans/{plan_slug}/agencies/{agency_id}/scorecard", tags=["progress"])
async def agency_scorecard(
    plan_slug: PlanSlug, agency_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ScorecardOut:
    """One agency's scorecard on a plan (an agency: its own only)."""
    if not principal.is_office() and principal.agency_id != agency_id:
        raise ApiError(
            403,
            "not_your_agency",
            "An agency client sees only its own agency's scorecard; ask the coordinating office "
            "for others.",
        )
    rows = await queries.work_points(session, plan_slug, agency_id)
    cards = await queries.scorecards(session, rows, only=agency_id)
    if not cards:
        raise ApiError(
            404,
            "no_responsibilities",
            f"Agency {agency_id} is responsible for no tracked work point of '{plan_slug}'.",
        )
    return _scorecard_out(cards[0])


class TimelineEntryOut(BaseModel):
    """A report, a transition or a closure decision, at the time progress recorded it."""

    at: datetime
    kind: Literal["report", "transition", "closure_decision"]
    detail: dict[str, Any]


@router.get("/v1/work-points/{plan_slug}/{number}/timeline", tags=["progress"])
async def work_point_timeline(
    plan_slug: PlanSlug,
    number: PathNumber,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[TimelineEntryOut]:
    """Everything that happened to a work point, newest first."""
    view, _ = await _tracked(session, principal, plan_slug, number)
    entries, total = await queries.timeline(session, view.id, limit, offset)
    items = [TimelineEntryOut.model_validate(vars(e)) for e in entries]
    return Page(items=items, total=total, limit=limit, offset=offset)


class ApproveIn(BaseModel):
    """Approve a closure request; the note reaches the lead agency."""

    note: Text | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    """Reject a closure request: say what is missing."""

    reason: Text = Field(min_length=2, max_length=2000, examples=["缺少验收材料,请补充后再报办结"])


@router.post(
    "/v1/work-points/{plan_slug}/{number}/closure/approve",
    tags=["closure"],
    responses=error_responses(409),
)
async def approve_closure(
    plan_slug: PlanSlug,
    number: PathNumber,
    body: ApproveIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> ProgressOut:
    """Close a work point in review (办结销号): no more checks; the lead is told."""
    return await _decide(request, session, principal, plan_slug, number, True, body.note)


@router.post(
    "/v1/work-points/{plan_slug}/{number}/closure/reject",
    tags=["closure"],
    responses=error_responses(409),
)
async def reject_closure(
    plan_slug: PlanSlug,
    number: PathNumber,
    body: RejectIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> ProgressOut:
    """Send a work point in review back to in progress, with the reason on record."""
    return await _decide(request, session, principal, plan_slug, number, False, body.reason)


async def _decide(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    plan_slug: str,
    number: int,
    approve: bool,
    reason: str | None,
) -> ProgressOut:
    require_office(principal)
    service = request.app.state.service
    view, state = await _tracked(session, principal, plan_slug, number)
    await session.refresh(state, with_for_update=True)
    try:
        transition = await decide_closure(
            session,
            view,
            state,
            approve=approve,
            reason=reason,
            decided_by=principal.client_id,
            now=service.clock.now(),
            calendar=service.calendar,
        )
    except ClosureConflict as conflict:
        where = {None: "in progress", "closed": "already closed"}.get(conflict.closure, "?")
        raise ApiError(
            409,
            "not_in_review",
            f"Work point {view.number} is {where}: only a work point whose lead agencies all "
            "reported `done` can be approved or rejected.",
        ) from conflict
    await session.commit()
    if transition is not None:
        service.relay.wake()
    latest = await _latest(session, [view.id])
    return _progress_out(view, state, latest.get(view.id, {}))


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
    return _verification_out(await history.verify(session))


@router.get("/v1/work-points/{plan_slug}/{number}/history/verify", tags=["audit"])
async def verify_work_point_history(
    plan_slug: PlanSlug, number: PathNumber, session: SessionDep, principal: PrincipalDep
) -> VerificationOut:
    """Check one work point's report history (an agency: only its own work points)."""
    wp_id = f"{plan_slug}/{number}"
    view = await session.get(WorkPointView, wp_id)
    if view is None:
        raise ApiError(404, "unknown_work_point", f"No work point '{wp_id}' is tracked.")
    require_agency_access(principal, view.agency_ids(), f"work point {view.number} ({view.title})")
    return _verification_out(await history.verify(session, wp_id))
