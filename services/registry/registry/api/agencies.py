"""Agencies: find, resolve a name, create, change kind, aliases, rename, merge, history."""

from __future__ import annotations

import uuid
from typing import Annotated

from duban_shared.api import Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import PrincipalDep, require_office
from duban_shared.inputs import Line
from fastapi import APIRouter, Query
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.api.deps import ActingContextDep
from registry.api.schemas import (
    AgencyChange,
    AgencyDetail,
    AgencyIn,
    AgencyPublic,
    HistoryOut,
    MergeIn,
    NameIn,
)
from registry.domain.errors import Refusal, unknown_agency
from registry.store import agencies, queries
from registry.store.models import Agency
from registry.use_cases import agencies as use_cases

router = APIRouter(prefix="/v1/agencies", tags=["agencies"])


def agency_out(agency: Agency, aliases: list[str]) -> AgencyPublic:
    """Shape an agency for the API."""
    return AgencyPublic(
        id=agency.id,
        name=agency.name,
        kind=agency.kind,
        aliases=aliases,
        merged_into_id=agency.merged_into_id,
    )


async def _detail(session: AsyncSession, agency: Agency) -> AgencyDetail:
    aliases = await agencies.aliases_of(session, agency.id)
    history = [
        HistoryOut(
            action=h.action,
            old_name=h.old_name,
            new_name=h.new_name,
            other_agency_id=h.other_agency_id,
            at=h.at,
        )
        for h in await queries.history_of(session, agency.id)
    ]
    return AgencyDetail(**agency_out(agency, aliases).model_dump(), history=history)


@router.get("")
async def list_agencies(
    session: SessionDep,
    _p: PrincipalDep,
    name: Annotated[
        Line | None, Query(max_length=120, description="Part of the agency's name")
    ] = None,
    kind: Annotated[Line | None, Query(max_length=40)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AgencyPublic]:
    """List current agencies (merged ones are found through their successor)."""
    rows, total = await queries.page(session, queries.agencies_query(name, kind), limit, offset)
    aliases = await queries.aliases_by_agency(session, [a.id for a in rows])
    items = [agency_out(a, aliases.get(a.id, [])) for a in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/resolve", responses=error_responses(404))
async def resolve_agency(
    session: SessionDep,
    _p: PrincipalDep,
    name: Annotated[
        Line, Query(min_length=2, max_length=120, description="Any name: 肇庆市林业局, 市政数局")
    ],
) -> AgencyPublic:
    """Find the agency a name means: canonical, alias, former name, with or without 肇庆/市."""
    agency = await agencies.resolve(session, name)
    if agency is None:
        raise Refusal(404, "unknown_agency_name", f"No agency answers to '{name}'.")
    return agency_out(agency, await agencies.aliases_of(session, agency.id))


@router.get("/{agency_id:uuid}")
async def get_agency(agency_id: uuid.UUID, session: SessionDep, _p: PrincipalDep) -> AgencyDetail:
    """Show an agency with its aliases and history."""
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise unknown_agency(agency_id)
    return await _detail(session, agency)


@router.post("", status_code=201, responses=error_responses(409))
async def create_agency(
    body: AgencyIn, ctx: ActingContextDep, principal: PrincipalDep
) -> AgencyDetail:
    """Create an agency; refused when the name already means another agency."""
    require_office(principal)
    agency = await use_cases.create_agency(ctx, body.name, body.kind)
    return await _detail(ctx.session, agency)


@router.patch("/{agency_id:uuid}")
async def change_agency(
    agency_id: uuid.UUID, body: AgencyChange, ctx: ActingContextDep, principal: PrincipalDep
) -> AgencyDetail:
    """Change an agency's kind."""
    require_office(principal)
    agency = await use_cases.change_kind(ctx, agency_id, body.kind)
    return await _detail(ctx.session, agency)


@router.post("/{agency_id:uuid}/aliases", responses=error_responses(409))
async def add_alias(
    agency_id: uuid.UUID, body: NameIn, ctx: ActingContextDep, principal: PrincipalDep
) -> AgencyDetail:
    """Let an agency be found by another name (e.g. 市政数局)."""
    require_office(principal)
    agency = await use_cases.add_agency_alias(ctx, agency_id, body.name)
    return await _detail(ctx.session, agency)


@router.post("/{agency_id:uuid}/rename", responses=error_responses(409))
async def rename_agency(
    agency_id: uuid.UUID, body: NameIn, ctx: ActingContextDep, principal: PrincipalDep
) -> AgencyDetail:
    """Rename an agency; the old name stays an alias and its work points are republished."""
    require_office(principal)
    agency = await use_cases.rename_agency(ctx, agency_id, body.name)
    return await _detail(ctx.session, agency)


@router.post("/{agency_id:uuid}/merge", responses=error_responses(409))
async def merge_agency(
    agency_id: uuid.UUID, body: MergeIn, ctx: ActingContextDep, principal: PrincipalDep
) -> AgencyDetail:
    """Merge this agency into another; responsibilities and shares move there."""
    require_office(principal)
    target = await use_cases.merge_agency(ctx, agency_id, body.into)
    return await _detail(ctx.session, target)
