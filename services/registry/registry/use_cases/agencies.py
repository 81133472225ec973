"""Agency changes: create, change kind, alias, rename, merge, load aliases. Each change is
published (the agency's snapshot, and the work points whose agencies it changed).

The steps (`create`, `add_alias`, `rename`, `merge`, `load_aliases`) work in the caller's
transaction; the use cases (`*_agency`, `load_alias_table`) open their own.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.errors import AgencyError, unknown_agency
from registry.store import agencies as store
from registry.store.models import Agency
from registry.use_cases.context import Context
from registry.use_cases.publishing import publish_agency, publish_work_points

# ---------------------------------------------------------------- steps, in a transaction


async def create(session: AsyncSession, name: str, kind: str, now: datetime) -> Agency:
    """Create an agency under a name no other agency answers to, and publish it."""
    agency = await store.create(session, name, kind, now)
    await publish_agency(session, agency, now)
    return agency


async def add_alias(session: AsyncSession, agency: Agency, alias: str, now: datetime) -> bool:
    """Let the agency be found by another name; publish it when the name is new to it."""
    added = await store.add_alias(session, agency, alias, now)
    if added:
        await publish_agency(session, agency, now)
    return added


async def rename(session: AsyncSession, agency: Agency, new_name: str, now: datetime) -> None:
    """Rename an agency (the old name stays an alias); publish it and its work points."""
    if await store.rename(session, agency, new_name, now):
        await publish_agency(session, agency, now)
    await publish_work_points(session, await store.work_points_of(session, agency.id), now)


async def merge(session: AsyncSession, source: Agency, target: Agency, now: datetime) -> list[str]:
    """Fold `source` into `target`; publish both and the work points whose roles moved, and
    return their ids."""
    touched = await store.merge(session, source, target, now)
    await publish_agency(session, source, now)
    await publish_agency(session, target, now)
    await publish_work_points(session, touched, now)
    return touched


async def load_aliases(
    session: AsyncSession, aliases: dict[str, str], now: datetime
) -> tuple[int, list[str]]:
    """Add aliases (alias -> agency name); return how many were new and what was refused."""
    added, refused = 0, []
    for alias, name in aliases.items():
        agency = await store.resolve(session, name)
        if agency is None:
            refused.append(f"{alias}: no agency '{name}'")
            continue
        try:
            added += await add_alias(session, agency, alias, now)
        except AgencyError as exc:
            refused.append(f"{alias}: {exc.message}")
    return added, refused


# ---------------------------------------------------------------- use cases


def _state(agency: Agency) -> dict[str, object]:
    """What the audit trail shows of an agency."""
    return {"name": agency.name, "kind": agency.kind, "merged_into_id": agency.merged_into_id}


async def _agency(session: AsyncSession, agency_id: uuid.UUID) -> Agency:
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise unknown_agency(agency_id)
    return agency


async def create_agency(ctx: Context, name: str, kind: str) -> Agency:
    """Create an agency; refused (409) when the name already means another agency."""
    async with ctx.transaction() as now:
        agency = await create(ctx.session, name, kind, now)
        ctx.audit("agency.created", str(agency.id), now, after=_state(agency))
    return agency


async def change_kind(ctx: Context, agency_id: uuid.UUID, kind: str) -> Agency:
    """Change an agency's kind."""
    async with ctx.transaction() as now:
        agency = await _agency(ctx.session, agency_id)
        before = _state(agency)
        agency.kind = kind
        ctx.session.add(agency)
        ctx.audit("agency.kind_changed", str(agency.id), now, before=before, after=_state(agency))
        await publish_agency(ctx.session, agency, now)
    return agency


async def add_agency_alias(ctx: Context, agency_id: uuid.UUID, alias: str) -> Agency:
    """Let an agency be found by another name."""
    async with ctx.transaction() as now:
        agency = await _agency(ctx.session, agency_id)
        if await add_alias(ctx.session, agency, alias, now):
            ctx.audit("agency.alias_added", str(agency.id), now, after={"alias": alias})
    return agency


async def rename_agency(ctx: Context, agency_id: uuid.UUID, new_name: str) -> Agency:
    """Rename an agency; its work points are republished."""
    async with ctx.transaction() as now:
        agency = await _agency(ctx.session, agency_id)
        before = _state(agency)
        await rename(ctx.session, agency, new_name, now)
        ctx.audit("agency.renamed", str(agency.id), now, before=before, after=_state(agency))
    return agency


async def merge_agency(ctx: Context, agency_id: uuid.UUID, into: uuid.UUID) -> Agency:
    """Merge an agency into another; return the one that absorbed it."""
    async with ctx.transaction() as now:
        source = await _agency(ctx.session, agency_id)
        target = await _agency(ctx.session, into)
        before = _state(source)
        touched = await merge(ctx.session, source, target, now)
        after = {**_state(source), "work_points_moved": touched}
        ctx.audit("agency.merged", str(source.id), now, before=before, after=after)
    return target


async def load_alias_table(ctx: Context, aliases: dict[str, str]) -> tuple[int, list[str]]:
    """Add aliases (alias -> agency name) in one transaction; see `load_aliases`."""
    async with ctx.transaction() as now:
        added, refused = await load_aliases(ctx.session, aliases, now)
        if added:
            after = {"aliases": aliases, "added": added, "refused": refused}
            ctx.audit("agency.aliases_loaded", "agencies", now, after=after)
        return added, refused
