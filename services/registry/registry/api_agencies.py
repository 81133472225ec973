"""Agencies: find, resolve a name, create, change kind, aliases, rename, merge, history."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from duban_shared.api import Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import Principal, PrincipalDep, require_office
from duban_shared.inputs import Line
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from registry import agencies, queries
from registry.agencies import AgencyError
from registry.agency_names import AgencyKind
from registry.api import (
    AgencyPublic,
    agency_out,
    from_agency_error,
    unknown_agency,
)
from registry.models import Agency
from registry.snapshots import publish_work_points

router = APIRouter(prefix="/v1/agencies", tags=["agencies"])


class AgencyIn(BaseModel):
    """A new agency."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "市数据局", "kind": "city_bureau"}]},
    )

    name: Line = Field(min_length=2, max_length=120)
    kind: AgencyKind


class AgencyChange(BaseModel):
    """A new kind for an agency."""

    model_config = ConfigDict(extra="forbid")

    kind: AgencyKind


class NameIn(BaseModel):
    """A name: a new canonical name, or an alias."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "市政数局"}]}
    )

    name: Line = Field(min_length=2, max_length=120)


class MergeIn(BaseModel):
    """The agency that absorbs this one."""

    model_config = ConfigDict(extra="forbid")

    into: uuid.UUID


class HistoryOut(BaseModel):
    """One change in an agency's life."""

    action: str
    old_name: str | None
    new_name: str | None
    other_agency_id: uuid.UUID | None
    at: datetime


class AgencyDetail(AgencyPublic):
    """An agency with its history."""

    history: list[HistoryOut]


@asynccontextmanager
async def _changing(
    request: Request, session: SessionDep, principal: Principal
) -> AsyncIterator[datetime]:
    """An office-only change in one transaction; yields the time, maps refusals, wakes the relay."""
    require_office(principal)
    try:
        async with session.begin():
            yield request.app.state.service.clock.now()
    except AgencyError as exc:
        raise from_agency_error(exc) from exc
    request.app.state.service.relay.wake()


async def _agency(session: SessionDep, agency_id: uuid.UUID) -> Agency:
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise unknown_agency(agency_id)
    return agency


async def _detail(session: SessionDep, agency: Agency) -> AgencyDetail:
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
        raise from_agency_error(
            AgencyError(404, "unknown_agency_name", f"No agency answers to '{name}'.")
        )
    return agency_out(agency, await agencies.aliases_of(session, agency.id))


@router.get("/{agency_id:uuid}")
async def get_agency(agency_id: uuid.UUID, session: SessionDep, _p: PrincipalDep) -> AgencyDetail:
    """Show an agency with its aliases and history."""
    return await _detail(session, await _agency(session, agency_id))


@router.post("", status_code=201, responses=error_responses(409))
async def create_agency(
    body: AgencyIn, request: Request, session: SessionDep, principal: PrincipalDep
) -> AgencyDetail:
    """Create an agency; refused when the name already means another agency."""
    async with _changing(request, session, principal) as now:
        agency = await agencies.create(session, body.name, body.kind, now)
    return await _detail(session, agency)


@router.patch("/{agency_id:uuid}")
async def change_agency(
    agency_id: uuid.UUID,
    body: AgencyChange,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> AgencyDetail:
    """Change an agency's kind."""
    async with _changing(request, session, principal) as now:
        agency = await _agency(session, agency_id)
        agency.kind = body.kind
        session.add(agency)
        await agencies.publish(session, agency, now)
    return await _detail(session, agency)


@router.post("/{agency_id:uuid}/aliases", responses=error_responses(409))
async def add_alias(
    agency_id: uuid.UUID,
    body: NameIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> AgencyDetail:
    """Let an agency be found by another name (e.g. 市政数局)."""
    async with _changing(request, session, principal) as now:
        agency = await _agency(session, agency_id)
        await agencies.add_alias(session, agency, body.name, now)
    return await _detail(session, agency)


@router.post("/{agency_id:uuid}/rename", responses=error_responses(409))
async def rename_agency(
    agency_id: uuid.UUID,
    body: NameIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> AgencyDetail:
    """Rename an agency; the old name stays an alias and its work points are republished."""
    async with _changing(request, session, principal) as now:
        agency = await _agency(session, agency_id)
        await agencies.rename(session, agency, body.name, now)
        await publish_work_points(session, await agencies.work_points_of(session, agency.id), now)
    return await _detail(session, agency)


@router.post("/{agency_id:uuid}/merge", responses=error_responses(409))
async def merge_agency(
    agency_id: uuid.UUID,
    body: MergeIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> AgencyDetail:
    """Merge this agency into another; responsibilities and shares move there."""
    async with _changing(request, session, principal) as now:
        source = await _agency(session, agency_id)
        target = await _agency(session, body.into)
        await publish_work_points(session, await agencies.merge(session, source, target, now), now)
    return await _detail(session, target)
