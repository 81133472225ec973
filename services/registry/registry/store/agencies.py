"""Agencies in the database: found by name, a former name, an alias or a short form; created,
aliased, renamed, merged, each change recorded in agency_history.

Renames keep the id and turn the old name into an alias; a merge moves responsibilities and
shares to the surviving agency. Publishing the changes is the use cases' part.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.agency_identity import agency_id_for, name_key
from registry.domain.agency_names import canonical_agency_name
from registry.domain.errors import AgencyError
from registry.store.models import (
    Agency,
    AgencyAlias,
    AgencyHistory,
    Responsibility,
    TargetShare,
)


async def resolve(session: AsyncSession, name: str) -> Agency | None:
    """Find the agency a name means (following merges), or None."""
    canonical = canonical_agency_name(name)
    key = name_key(name)
    agency = (await session.exec(select(Agency).where(Agency.name == canonical))).first()
    if agency is None:
        alias = (
            await session.exec(
                select(AgencyAlias).where(
                    (AgencyAlias.alias == canonical) | (AgencyAlias.alias_key == key)
                )
            )
        ).first()
        if alias is not None:
            agency = await session.get(Agency, alias.agency_id)
    if agency is None:
        agency = (await session.exec(select(Agency).where(Agency.name_key == key))).first()
    seen: set[uuid.UUID] = set()
    while agency is not None and agency.merged_into_id is not None and agency.id not in seen:
        seen.add(agency.id)
        agency = await session.get(Agency, agency.merged_into_id)
    return agency


async def create(session: AsyncSession, name: str, kind: str, now: datetime) -> Agency:
    """Create an agency under a name no other agency answers to."""
    canonical = canonical_agency_name(name)
    existing = await resolve(session, canonical)
    if existing is not None:
        raise AgencyError(
            409,
            "agency_exists",
            f"'{canonical}' already resolves to agency {existing.id} ({existing.name}).",
        )
    agency = Agency(
        id=agency_id_for(canonical), name=canonical, name_key=name_key(canonical), kind=kind
    )
    session.add(agency)
    session.add(AgencyHistory(agency_id=agency.id, action="created", new_name=canonical, at=now))
    await session.flush()
    return agency


async def add_alias(session: AsyncSession, agency: Agency, alias: str, now: datetime) -> bool:
    """Let the agency be found by another name; tell whether the name is new to it."""
    canonical = canonical_agency_name(alias)
    owner = await resolve(session, canonical)
    if owner is not None and owner.id != agency.id:
        raise AgencyError(
            409, "alias_taken", f"'{canonical}' already names {owner.name} ({owner.id})."
        )
    if owner is None:
        session.add(AgencyAlias(agency_id=agency.id, alias=canonical, alias_key=name_key(alias)))
        session.add(
            AgencyHistory(agency_id=agency.id, action="alias_added", new_name=canonical, at=now)
        )
        await session.flush()
    return owner is None


async def rename(session: AsyncSession, agency: Agency, new_name: str, now: datetime) -> bool:
    """Give an agency a new canonical name; the old one stays as an alias. Tell whether the
    name changed."""
    canonical = canonical_agency_name(new_name)
    owner = await resolve(session, canonical)
    if owner is not None and owner.id != agency.id:
        raise AgencyError(
            409, "name_taken", f"'{canonical}' already names {owner.name} ({owner.id})."
        )
    old = agency.name
    if old == canonical:
        return False
    for alias in (
        await session.exec(select(AgencyAlias).where(AgencyAlias.alias == canonical))
    ).all():
        await session.delete(alias)
    await session.flush()
    agency.name, agency.name_key = canonical, name_key(canonical)
    session.add(agency)
    session.add(AgencyAlias(agency_id=agency.id, alias=old, alias_key=name_key(old)))
    session.add(
        AgencyHistory(
            agency_id=agency.id, action="renamed", old_name=old, new_name=canonical, at=now
        )
    )
    await session.flush()
    return True


async def merge(session: AsyncSession, source: Agency, target: Agency, now: datetime) -> list[str]:
    """Fold `source` into `target`; return the ids of the work points whose roles moved.

    1. Responsibilities move to the target; where the target already has a role on the same
       work point, the stronger role (lead) is kept and the source's row goes.
    2. Target shares move likewise (added together where both had one).
    3. The source's name and aliases become the target's aliases; the source points to the
       target (merged_into) and keeps its id for history.
    """
    if source.id == target.id:
        raise AgencyError(422, "merge_into_itself", "An agency cannot be merged into itself.")
    if target.merged_into_id is not None:
        raise AgencyError(
            422,
            "merge_target_merged",
            f"{target.name} was itself merged; merge into its successor.",
        )
    touched: set[str] = set()
    rows = await session.exec(select(Responsibility).where(Responsibility.agency_id == source.id))
    for resp in rows.all():
        touched.add(resp.work_point_id)
        theirs = (
            await session.exec(
                select(Responsibility).where(
                    Responsibility.work_point_id == resp.work_point_id,
                    Responsibility.agency_id == target.id,
                )
            )
        ).first()
        if theirs is None:
            resp.agency_id = target.id
            session.add(resp)
            continue
        if resp.role == "lead" and theirs.role != "lead":
            theirs.role, theirs.position = "lead", min(theirs.position, resp.position)
            session.add(theirs)
        await session.delete(resp)
    for share in (
        await session.exec(select(TargetShare).where(TargetShare.agency_id == source.id))
    ).all():
        theirs_share = (
            await session.exec(
                select(TargetShare).where(
                    TargetShare.target_id == share.target_id, TargetShare.agency_id == target.id
                )
            )
        ).first()
        if theirs_share is None:
            share.agency_id = target.id
            session.add(share)
        else:
            theirs_share.share += share.share
            session.add(theirs_share)
            await session.delete(share)
    for alias in (
        await session.exec(select(AgencyAlias).where(AgencyAlias.agency_id == source.id))
    ).all():
        alias.agency_id = target.id
        session.add(alias)
    session.add(
        AgencyAlias(agency_id=target.id, alias=source.name, alias_key=name_key(source.name))
    )
    source.merged_into_id = target.id
    session.add(source)
    session.add(
        AgencyHistory(
            agency_id=source.id,
            action="merged_into",
            old_name=source.name,
            other_agency_id=target.id,
            at=now,
        )
    )
    session.add(
        AgencyHistory(
            agency_id=target.id,
            action="absorbed",
            old_name=source.name,
            other_agency_id=source.id,
            at=now,
        )
    )
    await session.flush()
    return sorted(touched)


async def aliases_of(session: AsyncSession, agency_id: uuid.UUID) -> list[str]:
    """The agency's aliases, alphabetically."""
    rows = await session.exec(
        select(AgencyAlias.alias)
        .where(AgencyAlias.agency_id == agency_id)
        .order_by(col(AgencyAlias.alias))
    )
    return list(rows.all())


async def work_points_of(session: AsyncSession, agency_id: uuid.UUID) -> list[str]:
    """Ids of the work points an agency has a role on."""
    rows = await session.exec(
        select(Responsibility.work_point_id).where(Responsibility.agency_id == agency_id)
    )
    return list(rows.all())
