"""Plans: list and show, import a new version (diff first, then confirm), sections, policy."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from duban_shared.api import ApiError, Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import PrincipalDep, require_office
from duban_shared.inputs import IsoDate, Line, PathNumber, PlanSlug, StrictBool, Text, Year
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from registry import queries
from registry.api import PlanPublic, plan_out, unknown_agency, unknown_plan
from registry.models import Agency, Plan, PlanVersion, Section, WorkPoint
from registry.plan_parser import PlanParseError, parse_plan
from registry.policies import DUE_ON_REFUSALS, POLICY_FIELDS, StallPolicy, check_due_on
from registry.snapshots import publish_work_points
from registry.store import ConfirmationRequired, Defaults, import_plan, plan_versions, sha256_text

router = APIRouter(prefix="/v1/plans", tags=["plans"])


class PlanChange(BaseModel):
    """Fields of a plan the coordinating office may change."""

    model_config = ConfigDict(extra="forbid")

    title: Line | None = Field(default=None, min_length=1, max_length=200)
    due_on: IsoDate | None = None
    coordinating_agency_id: uuid.UUID | None = None


class VersionIn(BaseModel):
    """A plan text to import; without confirm the answer is only the diff."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "…数字肇庆建设2024年工作要点…", "confirm": False}]
        },
    )

    text: Text = Field(min_length=1, max_length=1_000_000)
    confirm: StrictBool = False


class VersionOut(BaseModel):
    """A version of a plan and what it changed."""

    version: int
    source_sha256: str
    applied_at: datetime
    diff: dict[str, Any]


class ImportOut(BaseModel):
    """The result of an import: applied or not, and the diff."""

    applied: bool
    plan_created: bool
    version: int
    diff: dict[str, Any]


class SectionOut(BaseModel):
    """A section of a plan."""

    number: int
    title: str


class SectionChange(BaseModel):
    """A section's new title."""

    model_config = ConfigDict(extra="forbid")

    title: Line = Field(min_length=1, max_length=200)


async def _plan(session: SessionDep, slug: str) -> Plan:
    plan = await queries.plan_by_slug(session, slug)
    if plan is None:
        raise unknown_plan(slug)
    return plan


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


@router.get("/{slug}")
async def get_plan(slug: PlanSlug, session: SessionDep, _p: PrincipalDep) -> PlanPublic:
    """Show a plan."""
    return plan_out(await _plan(session, slug))


@router.patch("/{slug}", responses=DUE_ON_REFUSALS)
async def change_plan(
    slug: PlanSlug,
    change: PlanChange,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> PlanPublic:
    """Change a plan's title, due date or coordinating office; its work points are republished."""
    require_office(principal)
    now = request.app.state.service.clock.now()
    async with session.begin():
        plan = await _plan(session, slug)
        if change.coordinating_agency_id is not None:
            office = await session.get(Agency, change.coordinating_agency_id)
            if office is None or office.merged_into_id is not None:
                raise unknown_agency(change.coordinating_agency_id)
            plan.coordinating_agency_id = office.id
        if change.title is not None:
            plan.title = change.title
        if change.due_on is not None:
            years_after = request.app.state.service.settings.latest_due_years_after_plan
            check_due_on(plan, change.due_on, years_after)
            plan.due_on = change.due_on
        session.add(plan)
        await _republish_plan(session, plan, now)
    request.app.state.service.relay.wake()
    return plan_out(plan)


@router.put("/{slug}/policy")
async def set_policy(
    slug: PlanSlug,
    policy: StallPolicy,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> PlanPublic:
    """Replace the plan's default stall policy; every work point is republished."""
    require_office(principal)
    now = request.app.state.service.clock.now()
    async with session.begin():
        plan = await _plan(session, slug)
        for name in POLICY_FIELDS:
            setattr(plan, name, getattr(policy, name))
        session.add(plan)
        await _republish_plan(session, plan, now)
    request.app.state.service.relay.wake()
    return plan_out(plan)


async def _republish_plan(session: SessionDep, plan: Plan, now: datetime) -> None:
    await session.flush()
    ids = (await session.exec(select(WorkPoint.id).where(WorkPoint.plan_id == plan.id))).all()
    await publish_work_points(session, ids, now)


@router.get("/{slug}/sections")
async def list_sections(slug: PlanSlug, session: SessionDep, _p: PrincipalDep) -> list[SectionOut]:
    """A plan's sections."""
    plan = await _plan(session, slug)
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
    session: SessionDep,
    principal: PrincipalDep,
) -> SectionOut:
    """Retitle a section."""
    require_office(principal)
    async with session.begin():
        plan = await _plan(session, slug)
        section = (
            await session.exec(
                select(Section).where(Section.plan_id == plan.id, Section.number == number)
            )
        ).first()
        if section is None:
            raise ApiError(404, "unknown_section", f"Plan '{slug}' has no section {number}.")
        section.title = change.title
        session.add(section)
    return SectionOut(number=number, title=change.title)


@router.get("/{slug}/versions")
async def list_versions(slug: PlanSlug, session: SessionDep, _p: PrincipalDep) -> list[VersionOut]:
    """A plan's versions, newest first, with what each changed."""
    plan = await _plan(session, slug)
    assert plan.id is not None
    return [_version_out(v) for v in await plan_versions(session, plan.id)]


def _version_out(v: PlanVersion) -> VersionOut:
    return VersionOut(
        version=v.version, source_sha256=v.source_sha256, applied_at=v.applied_at, diff=v.diff
    )


@router.post("/{slug}/versions", responses=error_responses(409))
async def import_version(
    slug: PlanSlug, body: VersionIn, request: Request, session: SessionDep, principal: PrincipalDep
) -> ImportOut:
    """Import a plan text: without confirm, 409 confirmation_required with the diff; with it,
    applied. The same text again changes nothing; a new slug creates the plan."""
    require_office(principal)
    try:
        parsed = parse_plan(body.text)
    except PlanParseError as exc:
        raise ApiError(
            422, exc.code, exc.message, {"line": exc.line} if exc.line else None
        ) from exc
    service = request.app.state.service
    settings = service.settings
    try:
        async with session.begin():
            report = await import_plan(
                session,
                parsed,
                slug=slug,
                source_sha256=sha256_text(body.text),
                source_text=body.text,
                now=service.clock.now(),
                defaults=Defaults.of(settings),
                confirm=body.confirm,
            )
    except ConfirmationRequired as exc:
        raise ApiError(409, exc.code, str(exc), exc.diff.to_json()) from exc
    service.relay.wake()
    return ImportOut(
        applied=report.changed,
        plan_created=report.plan_created,
        version=report.version,
        diff=report.diff.to_json(),
    )
