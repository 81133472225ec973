"""Plans in the database: the stored work points an import compares with, the writes of an
import (sections, responsibilities, targets), and plan versions."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.plan_parser import WorkPoint as WorkPointSpec
from registry.domain.versions import WorkPointShape
from registry.store import queries
from registry.store.models import (
    Agency,
    Plan,
    PlanVersion,
    Responsibility,
    Section,
    Target,
    TargetShare,
    WorkPoint,
)


async def stored_work_points(
    session: AsyncSession, plan: Plan | None
) -> dict[str, tuple[WorkPoint, WorkPointShape]]:
    """A plan's work points by code, each with the shape an import compares."""
    if plan is None:
        return {}
    wps = (await session.exec(select(WorkPoint).where(WorkPoint.plan_id == plan.id))).all()
    all_roles, all_targets = await queries.details(session, [wp.id for wp in wps])
    out = {}
    for wp in wps:
        roles = all_roles.get(wp.id, [])
        targets = all_targets.get(wp.id, [])
        out[wp.code] = (
            wp,
            WorkPointShape(
                number=wp.number,
                section=wp.section_number,
                title=wp.title,
                text=wp.text,
                leads=tuple(a.name for r, a in roles if r.role == "lead"),
                cos=tuple(a.name for r, a in roles if r.role == "co"),
                lead_inferred=wp.lead_inferred,
                with_other_units=wp.with_other_units,
                targets=tuple(
                    (t.metric, t.value, t.unit, t.comparator, t.source) for t, _ in targets
                ),
            ),
        )
    return out


async def write_sections(session: AsyncSession, plan_id: int, sections: dict[int, str]) -> None:
    """Make `sections` (number -> title) the plan's sections."""
    existing = {
        s.number: s
        for s in (await session.exec(select(Section).where(Section.plan_id == plan_id))).all()
    }
    for number, title in sections.items():
        section = existing.pop(number, None)
        if section is None:
            session.add(Section(plan_id=plan_id, number=number, title=title))
        elif section.title != title:
            section.title = title
            session.add(section)
    for gone in existing.values():
        await session.delete(gone)


async def replace_roles(session: AsyncSession, wp_id: str, roles: list[tuple[str, Agency]]) -> None:
    """Make `roles` (in order) the work point's responsibilities."""
    old = await session.exec(select(Responsibility).where(Responsibility.work_point_id == wp_id))
    for row in old.all():
        await session.delete(row)
    await session.flush()
    for position, (role, agency) in enumerate(roles):
        session.add(
            Responsibility(work_point_id=wp_id, agency_id=agency.id, role=role, position=position)
        )
    await session.flush()


async def delete_targets(session: AsyncSession, wp_id: str) -> None:
    """Delete a work point's targets and their shares."""
    targets = (await session.exec(select(Target).where(Target.work_point_id == wp_id))).all()
    for target in targets:
        shares = await session.exec(select(TargetShare).where(TargetShare.target_id == target.id))
        for share in shares.all():
            await session.delete(share)
        await session.delete(target)
    await session.flush()


async def replace_targets(session: AsyncSession, wp_id: str, spec: WorkPointSpec) -> None:
    """Make a parsed work point's targets the stored one's (shares go)."""
    await delete_targets(session, wp_id)
    for position, t in enumerate(spec.targets):
        session.add(
            Target(
                work_point_id=wp_id,
                position=position,
                metric=t.metric,
                value=float(t.value),
                unit=t.unit,
                comparator=t.comparator,
                source=t.source,
            )
        )
    await session.flush()


async def plan_versions(session: AsyncSession, plan_id: int) -> list[PlanVersion]:
    """A plan's versions, newest first."""
    rows = await session.exec(
        select(PlanVersion)
        .where(PlanVersion.plan_id == plan_id)
        .order_by(col(PlanVersion.version).desc())
    )
    return list(rows.all())
