"""Registry queries and the plan import (idempotent; a changed file updates in place)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from duban_shared import topics
from duban_shared.events import Responsibility as ResponsibilityRef
from duban_shared.events import WorkPointSnapshot, work_point_id
from duban_shared.outbox import outbox_row
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.models import Agency, OutboxMessage, Plan, Responsibility, Section, WorkPoint
from registry.plan_parser import ParsedPlan

# Agency ids are derived from the canonical name when an agency is first seen, so two
# registries that import the same plan agree on ids; a later rename keeps the id.
AGENCY_NAMESPACE = uuid.UUID("8f6f3c1e-5b0a-4c61-9a52-2d1f0b7e4a10")


def agency_id_for(name: str) -> uuid.UUID:
    """Return the id an agency gets when first imported."""
    return uuid.uuid5(AGENCY_NAMESPACE, name)


def sha256_text(text: str) -> str:
    """Hash a plan text as imported."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ImportReport:
    """What an import changed."""

    plan_slug: str
    plan_created: bool = False
    agencies_added: list[str] = field(default_factory=list)
    work_points_added: list[int] = field(default_factory=list)
    work_points_updated: list[int] = field(default_factory=list)
    work_points_removed: list[int] = field(default_factory=list)
    work_points_unchanged: int = 0

    @property
    def changed(self) -> bool:
        """Tell whether the import changed anything."""
        return bool(
            self.plan_created
            or self.agencies_added
            or self.work_points_added
            or self.work_points_updated
            or self.work_points_removed
        )


@dataclass(frozen=True)
class Defaults:
    """Stall-policy defaults copied into every work point snapshot."""

    report_every_working_days: int = 10
    grace_working_days: int = 3


async def import_plan(
    session: AsyncSession,
    parsed: ParsedPlan,
    *,
    slug: str,
    source_sha256: str,
    now: datetime,
    defaults: Defaults,
) -> ImportReport:
    """Store a parsed plan; publish each added, changed or removed work point via the outbox.

    1. Upsert the plan row and its sections.
    2. Upsert agencies by canonical name.
    3. For each work point, compare the stored fields and responsibilities with the parsed
       ones; write and publish only what differs (revision + 1).
    4. Work points no longer in the file are deleted and published as tombstones.
    The caller commits: everything, outbox rows included, lands in one transaction.
    """
    report = ImportReport(plan_slug=slug)
    plan = await _upsert_plan(session, parsed, slug, source_sha256, now, report)
    assert plan.id is not None
    await _upsert_sections(session, plan.id, parsed)
    agencies = await _upsert_agencies(session, parsed, report)

    stored = {
        wp.number: wp
        for wp in (await session.exec(select(WorkPoint).where(WorkPoint.plan_id == plan.id))).all()
    }
    for spec in parsed.work_points:
        roles = [("lead", name) for name in spec.lead_agencies] + [
            ("co", name) for name in spec.co_agencies
        ]
        wanted: dict[str, Any] = {
            "section_number": spec.section,
            "title": spec.title,
            "text": spec.text,
            "lead_inferred": spec.lead_inferred,
            "with_other_units": spec.with_other_units,
            "targets": [t.model_dump(mode="json") for t in spec.targets],
        }
        wp = stored.pop(spec.number, None)
        if wp is None:
            wp = WorkPoint(
                id=work_point_id(slug, spec.number),
                plan_id=plan.id,
                number=spec.number,
                updated_at=now,
                **wanted,
            )
            session.add(wp)
            await session.flush()
            report.work_points_added.append(spec.number)
        else:
            current_roles = await _roles(session, wp.id)
            if _fields(wp) == wanted and current_roles == [
                (role, agencies[name].id) for role, name in roles
            ]:
                report.work_points_unchanged += 1
                continue
            for key, value in wanted.items():
                setattr(wp, key, value)
            wp.revision += 1
            wp.updated_at = now
            session.add(wp)
            report.work_points_updated.append(spec.number)
        await _replace_roles(session, wp.id, [(role, agencies[name]) for role, name in roles])
        _publish(session, _snapshot(wp, slug, roles, agencies, defaults, now), now)

    for wp in stored.values():
        await _replace_roles(session, wp.id, [])
        await session.delete(wp)
        tomb = _snapshot(wp, slug, [], agencies, defaults, now, deleted=True)
        _publish(session, tomb, now)
        report.work_points_removed.append(wp.number)
    return report


def _fields(wp: WorkPoint) -> dict[str, Any]:
    return {
        "section_number": wp.section_number,
        "title": wp.title,
        "text": wp.text,
        "lead_inferred": wp.lead_inferred,
        "with_other_units": wp.with_other_units,
        "targets": wp.targets,
    }


async def _upsert_plan(
    session: AsyncSession,
    parsed: ParsedPlan,
    slug: str,
    source_sha256: str,
    now: datetime,
    report: ImportReport,
) -> Plan:
    plan = (await session.exec(select(Plan).where(Plan.slug == slug))).first()
    info = parsed.plan
    if plan is None:
        plan = Plan(
            slug=slug,
            title=info.title,
            issuer=info.issuer,
            issued_on=info.issued_on,
            year=info.year,
            source_sha256=source_sha256,
            imported_at=now,
        )
        report.plan_created = True
    elif plan.source_sha256 != source_sha256:
        plan.title, plan.issuer, plan.issued_on, plan.year = (
            info.title,
            info.issuer,
            info.issued_on,
            info.year,
        )
        plan.source_sha256 = source_sha256
        plan.imported_at = now
    session.add(plan)
    await session.flush()
    return plan


async def _upsert_sections(session: AsyncSession, plan_id: int, parsed: ParsedPlan) -> None:
    existing = {
        s.number: s
        for s in (await session.exec(select(Section).where(Section.plan_id == plan_id))).all()
    }
    for spec in parsed.sections:
        section = existing.pop(spec.number, None)
        if section is None:
            session.add(Section(plan_id=plan_id, number=spec.number, title=spec.title))
        elif section.title != spec.title:
            section.title = spec.title
            session.add(section)
    for gone in existing.values():
        await session.delete(gone)


async def _upsert_agencies(
    session: AsyncSession, parsed: ParsedPlan, report: ImportReport
) -> dict[str, Agency]:
    names = [a.name for a in parsed.agencies]
    rows = (await session.exec(select(Agency).where(col(Agency.name).in_(names)))).all()
    by_name = {a.name: a for a in rows}
    for spec in parsed.agencies:
        agency = by_name.get(spec.name)
        if agency is None:
            agency = Agency(id=agency_id_for(spec.name), name=spec.name, kind=spec.kind)
            by_name[spec.name] = agency
            report.agencies_added.append(spec.name)
            session.add(agency)
        elif agency.kind != spec.kind:
            agency.kind = spec.kind
            session.add(agency)
    await session.flush()
    return by_name


async def _roles(session: AsyncSession, wp_id: str) -> list[tuple[str, uuid.UUID]]:
    rows = await session.exec(
        select(Responsibility)
        .where(Responsibility.work_point_id == wp_id)
        .order_by(col(Responsibility.position))
    )
    return [(r.role, r.agency_id) for r in rows.all()]


async def _replace_roles(
    session: AsyncSession, wp_id: str, roles: Sequence[tuple[str, Agency]]
) -> None:
    old = await session.exec(select(Responsibility).where(Responsibility.work_point_id == wp_id))
    for row in old.all():
        await session.delete(row)
    await session.flush()
    for position, (role, agency) in enumerate(roles):
        session.add(
            Responsibility(work_point_id=wp_id, agency_id=agency.id, role=role, position=position)
        )


def _snapshot(
    wp: WorkPoint,
    slug: str,
    roles: Sequence[tuple[str, str]],
    agencies: dict[str, Agency],
    defaults: Defaults,
    now: datetime,
    *,
    deleted: bool = False,
) -> WorkPointSnapshot:
    return WorkPointSnapshot(
        event_id=uuid.uuid4(),
        occurred_at=now,
        work_point_id=wp.id,
        plan_slug=slug,
        number=wp.number,
        section=wp.section_number,
        title=wp.title,
        lead_inferred=wp.lead_inferred,
        responsibilities=[
            ResponsibilityRef(agency_id=agencies[name].id, name=name, role=role)
            for role, name in roles
        ],
        report_every_working_days=defaults.report_every_working_days,
        grace_working_days=defaults.grace_working_days,
        deleted=deleted,
    )


def _publish(session: AsyncSession, snapshot: WorkPointSnapshot, now: datetime) -> None:
    session.add(
        outbox_row(
            OutboxMessage, topics.WORK_POINTS, snapshot.work_point_id, snapshot.to_bytes(), now
        )
    )


async def list_work_points(
    session: AsyncSession,
    plan_slug: str,
    *,
    agency_id: uuid.UUID | None = None,
    section: int | None = None,
) -> list[tuple[WorkPoint, list[tuple[Responsibility, Agency]]]]:
    """Return a plan's work points in number order, with their responsibilities."""
    query = select(WorkPoint).join(Plan).where(Plan.slug == plan_slug)
    if section is not None:
        query = query.where(WorkPoint.section_number == section)
    if agency_id is not None:
        query = query.where(
            col(WorkPoint.id).in_(
                select(Responsibility.work_point_id).where(Responsibility.agency_id == agency_id)
            )
        )
    wps = list((await session.exec(query.order_by(col(WorkPoint.number)))).all())
    roles = await _responsibilities(session, [wp.id for wp in wps])
    return [(wp, roles.get(wp.id, [])) for wp in wps]


async def _responsibilities(
    session: AsyncSession, wp_ids: list[str]
) -> dict[str, list[tuple[Responsibility, Agency]]]:
    rows = await session.exec(
        select(Responsibility, Agency)
        .join(Agency)
        .where(col(Responsibility.work_point_id).in_(wp_ids))
        .order_by(col(Responsibility.work_point_id), col(Responsibility.position))
    )
    out: dict[str, list[tuple[Responsibility, Agency]]] = {}
    for resp, agency in rows.all():
        out.setdefault(resp.work_point_id, []).append((resp, agency))
    return out


async def get_work_point(
    session: AsyncSession, plan_slug: str, number: int
) -> tuple[WorkPoint, list[tuple[Responsibility, Agency]]] | None:
    """Return one work point with its responsibilities, or None."""
    wp = await session.get(WorkPoint, work_point_id(plan_slug, number))
    if wp is None:
        return None
    return wp, (await _responsibilities(session, [wp.id])).get(wp.id, [])


async def list_agencies(session: AsyncSession, name: str | None = None) -> list[Agency]:
    """Return agencies by name order, optionally those whose name contains `name`."""
    query = select(Agency)
    if name:
        query = query.where(col(Agency.name).contains(name))
    return list((await session.exec(query.order_by(col(Agency.name)))).all())


async def list_plans(session: AsyncSession) -> list[Plan]:
    """Return every plan."""
    return list((await session.exec(select(Plan).order_by(col(Plan.slug)))).all())
