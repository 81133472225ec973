"""Plans: list and show, import a new version (diff first, then confirm), sections, policy."""

from __future__ import annotations

from typing import Annotated

from duban_shared.api import ApiError, Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import PrincipalDep, require_office
from duban_shared.inputs import Line, PathNumber, PlanSlug, Year
from fastapi import APIRouter, Query

from registry.api.deps import ActingContextDep
from registry.api.errors import DUE_ON_REFUSALS
from registry.api.schemas import (
    ImportOut,
    PlanChange,
    PlanPublic,
    PreviewIn,
    PreviewOut,
    SectionChange,
    SectionOut,
    StallPolicy,
    VersionIn,
    VersionOut,
)
from registry.domain.plan_parser import ParsedPlan, PlanParseError, parse_plan
from registry.domain.plan_review import apply_corrections, parse_report, review_key
from registry.domain.policies import POLICY_FIELDS
from registry.store import plans, queries
from registry.store.models import Plan, PlanVersion
from registry.use_cases import plans as use_cases

router = APIRouter(prefix="/v1/plans", tags=["plans"])


def plan_policy(plan: Plan) -> StallPolicy:
    """The plan's defaults."""
    return StallPolicy.model_validate({f: getattr(plan, f) for f in POLICY_FIELDS})


def plan_out(plan: Plan) -> PlanPublic:
    """Shape a plan for the API."""
    return PlanPublic(
        slug=plan.slug,
        title=plan.title,
        issuer=plan.issuer,
        issued_on=plan.issued_on,
        year=plan.year,
        city=plan.city,
        version=plan.version,
        due_on=plan.due_on,
        coordinating_agency_id=plan.coordinating_agency_id,
        policy=plan_policy(plan),
    )


@router.get("")
async def list_plans(
    session: SessionDep,
    _p: PrincipalDep,
    limit: Limit = 50,
    offset: Offset = 0,
    year: Year | None = None,
    city: Annotated[Line | None, Query(max_length=40)] = None,
) -> Page[PlanPublic]:
    """List plans, optionally of one year or city."""
    rows, total = await queries.page(session, queries.plans_query(year, city), limit, offset)
    return Page(items=[plan_out(p) for p in rows], total=total, limit=limit, offset=offset)


def _parsed(text: str) -> ParsedPlan:
    """Parse a text, or answer 422 with the parser's code and the line it stopped at."""
    try:
        return parse_plan(text)
    except PlanParseError as exc:
        raise ApiError(
            422, exc.code, exc.message, {"line": exc.line} if exc.line else None
        ) from exc


@router.post("/preview")
async def preview_plan(
    body: PreviewIn, ctx: ActingContextDep, principal: PrincipalDep
) -> PreviewOut:
    """Parse a plan text without importing it: every work point with the line it came from,
    every item that names no agency, notes, and which agencies an import would create."""
    require_office(principal)
    parsed = _parsed(body.text)
    known = await use_cases.known_agency_names(ctx, [a.name for a in parsed.agencies])
    return PreviewOut.model_validate(parse_report(parsed, known))


@router.get("/{slug}")
async def get_plan(slug: PlanSlug, session: SessionDep, _p: PrincipalDep) -> PlanPublic:
    """Show a plan."""
    return plan_out(await use_cases.plan_by_slug(session, slug))


@router.patch("/{slug}", responses=DUE_ON_REFUSALS)
async def change_plan(
    slug: PlanSlug, change: PlanChange, ctx: ActingContextDep, principal: PrincipalDep
) -> PlanPublic:
    """Change a plan's title, due date or coordinating office; its work points are republished."""
    require_office(principal)
    plan = await use_cases.change_plan(
        ctx,
        slug,
        title=change.title,
        due_on=change.due_on,
        coordinating_agency_id=change.coordinating_agency_id,
    )
    return plan_out(plan)


@router.put("/{slug}/policy")
async def set_policy(
    slug: PlanSlug, policy: StallPolicy, ctx: ActingContextDep, principal: PrincipalDep
) -> PlanPublic:
    """Replace the plan's default stall policy; every work point is republished."""
    require_office(principal)
    return plan_out(await use_cases.set_plan_policy(ctx, slug, policy.model_dump()))


@router.get("/{slug}/sections")
async def list_sections(slug: PlanSlug, session: SessionDep, _p: PrincipalDep) -> list[SectionOut]:
    """A plan's sections."""
    plan = await use_cases.plan_by_slug(session, slug)
    assert plan.id is not None
    return [
        SectionOut(number=s.number, title=s.title)
        for s in await queries.sections_of(session, plan.id)
    ]


@router.put("/{slug}/sections/{number}")
async def change_section(
    slug: PlanSlug,
    number: PathNumber,
    change: SectionChange,
    ctx: ActingContextDep,
    principal: PrincipalDep,
) -> SectionOut:
    """Retitle a section."""
    require_office(principal)
    await use_cases.retitle_section(ctx, slug, number, change.title)
    return SectionOut(number=number, title=change.title)


@router.get("/{slug}/versions")
async def list_versions(slug: PlanSlug, session: SessionDep, _p: PrincipalDep) -> list[VersionOut]:
    """A plan's versions, newest first, with what each changed."""
    plan = await use_cases.plan_by_slug(session, slug)
    assert plan.id is not None
    return [_version_out(v) for v in await plans.plan_versions(session, plan.id)]


def _version_out(v: PlanVersion) -> VersionOut:
    return VersionOut(
        version=v.version, source_sha256=v.source_sha256, applied_at=v.applied_at, diff=v.diff
    )


@router.post("/{slug}/versions", responses=error_responses(409))
async def import_version(
    slug: PlanSlug, body: VersionIn, ctx: ActingContextDep, principal: PrincipalDep
) -> ImportOut:
    """Import a plan text: without confirm, 409 confirmation_required with the diff; with it,
    applied. The same text again changes nothing; a new slug creates the plan."""
    require_office(principal)
    parsed = apply_corrections(
        _parsed(body.text), body.corrections, skip_unmarked=body.skip_unmarked
    )
    report = await use_cases.import_plan_text(
        ctx,
        parsed,
        body.text,
        slug=slug,
        confirm=body.confirm,
        review=review_key(body.corrections, skip_unmarked=body.skip_unmarked),
    )
    return ImportOut(
        applied=report.changed,
        plan_created=report.plan_created,
        version=report.version,
        diff=report.diff.to_json(),
    )
