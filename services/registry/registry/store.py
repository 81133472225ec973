"""The plan import: a new text is compared with the stored plan and applied when confirmed.

Re-importing the same text changes nothing. A first import applies at once. A changed text of
an existing plan is applied only with confirm=True (the CLI's --confirm, the API's "confirm"),
after its diff was shown; every applied text is kept as a plan version with its diff.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from duban_shared.events import work_point_id
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry import agencies, queries
from registry.agencies import agency_id_for
from registry.agency_names import agency_kind
from registry.models import (
    Agency,
    Plan,
    PlanVersion,
    Responsibility,
    Section,
    Target,
    TargetShare,
    WorkPoint,
)
from registry.plan_parser import ParsedPlan
from registry.plan_parser import WorkPoint as WorkPointSpec
from registry.policies import year_end
from registry.settings import RegistrySettings
from registry.snapshots import publish_tombstone, publish_work_points
from registry.versions import PlanDiff, WorkPointShape, diff_work_points

__all__ = [
    "ConfirmationRequired",
    "Defaults",
    "ImportReport",
    "agency_id_for",
    "import_plan",
    "sha256_text",
]


def sha256_text(text: str) -> str:
    """Hash a plan text as imported."""
    return hashlib.sha256(text.encode()).hexdigest()


class ConfirmationRequired(Exception):
    """A changed text of an existing plan needs confirmation; the diff says what would change."""

    code = "confirmation_required"

    def __init__(self, slug: str, diff: PlanDiff) -> None:
        super().__init__(
            f"This text changes plan '{slug}'; review the diff and import again with confirmation."
        )
        self.diff = diff


@dataclass(frozen=True)
class Defaults:
    """Stall-policy defaults a new plan starts with."""

    report_every_working_days: int = 10
    grace_working_days: int = 3
    warn_before_due_working_days: int = 10
    pace_tolerance_pct: float = 10.0
    flatline_reports: int = 3

    @classmethod
    def of(cls, settings: RegistrySettings) -> Defaults:
        """The defaults a registry's settings give new plans."""
        return cls(settings.default_report_every_working_days, settings.default_grace_working_days)


@dataclass
class ImportReport:
    """What an import changed."""

    plan_slug: str
    plan_created: bool = False
    version: int = 1
    diff: PlanDiff = field(default_factory=PlanDiff)
    work_points_unchanged: int = 0

    @property
    def agencies_added(self) -> list[str]:
        """Names of agencies created by the import."""
        return self.diff.agencies_added

    @property
    def work_points_added(self) -> list[int]:
        """Numbers of new work points."""
        return self.diff.added

    @property
    def work_points_updated(self) -> list[int]:
        """Numbers of work points whose content changed."""
        return self.diff.changed()

    @property
    def work_points_removed(self) -> list[int]:
        """Numbers of work points no longer in the plan."""
        return self.diff.removed

    @property
    def changed(self) -> bool:
        """Tell whether the import changed anything."""
        return self.plan_created or not self.diff.is_empty()


async def import_plan(
    session: AsyncSession,
    parsed: ParsedPlan,
    *,
    slug: str,
    source_sha256: str,
    now: datetime,
    defaults: Defaults,
    source_text: str = "",
    confirm: bool = True,
    city: str | None = None,
) -> ImportReport:
    """Compare a parsed plan with the stored one and apply it (the caller commits).

    1. The same text as the current version changes nothing.
    2. Agency names are resolved to existing agencies (aliases, former names, short forms);
       the diff compares work points by number against the stored ones.
    3. A change to an existing plan without confirmation raises ConfirmationRequired.
    4. Applying creates unknown agencies, writes the plan, sections and work points, queues a
       snapshot for every added or changed work point and a tombstone for every removed one,
       and records the version with its diff.
    """
    plan = (await session.exec(select(Plan).where(Plan.slug == slug))).first()
    if plan is not None and plan.source_sha256 == source_sha256:
        count = await session.exec(
            select(func.count()).select_from(WorkPoint).where(WorkPoint.plan_id == plan.id)
        )
        return ImportReport(plan_slug=slug, version=plan.version, work_points_unchanged=count.one())

    names = {a.name for a in parsed.agencies}
    resolved = {name: await agencies.resolve(session, name) for name in names}
    current_name = {n: (a.name if a else n) for n, a in resolved.items()}
    stored = await _stored_work_points(session, plan)
    new_shapes = _parsed_shapes(parsed, current_name)
    diff = diff_work_points(
        {n: shape for n, (_, shape) in stored.items()},
        new_shapes,
        known_agencies={a.name for a in resolved.values() if a is not None},
    )
    if plan is not None and not diff.is_empty() and not confirm:
        raise ConfirmationRequired(slug, diff)

    kinds = {a.name: a.kind for a in parsed.agencies}
    by_name: dict[str, Agency] = {}
    for name, agency in resolved.items():
        if agency is None:
            agency = await agencies.create(session, name, kinds[name], now)
        by_name[current_name[name]] = agency
    created = plan is None
    plan = await _write_plan(session, plan, parsed, slug, source_sha256, now, defaults, city)
    assert plan.id is not None
    await _write_sections(session, plan.id, parsed)

    specs = {spec.number: spec for spec in parsed.work_points}
    changed: list[str] = []
    for number in diff.added + diff.changed():
        spec = specs[number]
        wp = stored[number][0] if number in stored else None
        if wp is None:
            wp = WorkPoint(
                id=work_point_id(slug, number),
                plan_id=plan.id,
                number=number,
                section_number=spec.section,
                title=spec.title,
                text=spec.text,
                updated_at=now,
            )
        else:
            wp.revision += 1
        wp.section_number, wp.title, wp.text = spec.section, spec.title, spec.text
        wp.lead_inferred, wp.with_other_units = spec.lead_inferred, spec.with_other_units
        wp.updated_at = now
        session.add(wp)
        await session.flush()
        if number in diff.added or number in diff.responsibilities_changed:
            shape = new_shapes[number]
            roles = [("lead", n) for n in shape.leads] + [("co", n) for n in shape.cos]
            await replace_roles(session, wp.id, [(role, by_name[n]) for role, n in roles])
        if number in diff.added or number in diff.targets_changed:
            await _replace_targets(session, wp.id, spec)
        changed.append(wp.id)
    await publish_work_points(session, changed, now)
    for number in diff.removed:
        wp = stored[number][0]
        await replace_roles(session, wp.id, [])
        await _delete_targets(session, wp.id)
        await session.delete(wp)
        publish_tombstone(session, wp, slug, now)

    session.add(
        PlanVersion(
            plan_id=plan.id,
            version=plan.version,
            source_sha256=source_sha256,
            source_text=source_text,
            diff=diff.to_json(),
            applied_at=now,
        )
    )
    await session.flush()
    unchanged = len(stored) - len(diff.changed()) - len(diff.removed)
    return ImportReport(
        plan_slug=slug,
        plan_created=created,
        version=plan.version,
        diff=diff,
        work_points_unchanged=unchanged,
    )


async def _stored_work_points(
    session: AsyncSession, plan: Plan | None
) -> dict[int, tuple[WorkPoint, WorkPointShape]]:
    if plan is None:
        return {}
    wps = (await session.exec(select(WorkPoint).where(WorkPoint.plan_id == plan.id))).all()
    all_roles, all_targets = await queries.details(session, [wp.id for wp in wps])
    out = {}
    for wp in wps:
        roles = all_roles.get(wp.id, [])
        targets = all_targets.get(wp.id, [])
        out[wp.number] = (
            wp,
            WorkPointShape(
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


def _parsed_shapes(parsed: ParsedPlan, name: dict[str, str]) -> dict[int, WorkPointShape]:
    return {
        spec.number: WorkPointShape(
            section=spec.section,
            title=spec.title,
            text=spec.text,
            leads=(leads := _distinct(name[n] for n in spec.lead_agencies)),
            cos=_distinct(name[n] for n in spec.co_agencies if name[n] not in leads),
            lead_inferred=spec.lead_inferred,
            with_other_units=spec.with_other_units,
            targets=tuple(
                (t.metric, float(t.value), t.unit, t.comparator, t.source) for t in spec.targets
            ),
        )
        for spec in parsed.work_points
    }


def _distinct(names: Iterable[str]) -> tuple[str, ...]:
    """Names in order without repeats (two names of a text may now mean one merged agency)."""
    return tuple(dict.fromkeys(names))


async def _write_plan(
    session: AsyncSession,
    plan: Plan | None,
    parsed: ParsedPlan,
    slug: str,
    source_sha256: str,
    now: datetime,
    defaults: Defaults,
    city: str | None,
) -> Plan:
    info = parsed.plan
    if plan is None:
        plan = Plan(
            slug=slug,
            title=info.title,
            issuer=info.issuer,
            issued_on=info.issued_on,
            year=info.year,
            city=city or _city_of(info.issuer),
            version=1,
            source_sha256=source_sha256,
            imported_at=now,
            due_on=year_end(info.year),
            report_every_working_days=defaults.report_every_working_days,
            grace_working_days=defaults.grace_working_days,
            warn_before_due_working_days=defaults.warn_before_due_working_days,
            pace_tolerance_pct=defaults.pace_tolerance_pct,
            flatline_reports=defaults.flatline_reports,
        )
    else:
        plan.version += 1
        plan.title, plan.issuer, plan.issued_on = info.title, info.issuer, info.issued_on
        plan.source_sha256, plan.imported_at = source_sha256, now
    if plan.coordinating_agency_id is None:
        office = await agencies.resolve(session, info.issuer)
        if office is None:
            office = await agencies.create(session, info.issuer, agency_kind(info.issuer), now)
        plan.coordinating_agency_id = office.id
    session.add(plan)
    await session.flush()
    return plan


def _city_of(issuer: str) -> str:
    """肇庆市政务服务和数据管理局 -> 肇庆市."""
    cut = issuer.find("市")
    return issuer[: cut + 1] if cut > 0 else ""


async def _write_sections(session: AsyncSession, plan_id: int, parsed: ParsedPlan) -> None:
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


async def _delete_targets(session: AsyncSession, wp_id: str) -> None:
    targets = (await session.exec(select(Target).where(Target.work_point_id == wp_id))).all()
    for target in targets:
        shares = await session.exec(select(TargetShare).where(TargetShare.target_id == target.id))
        for share in shares.all():
            await session.delete(share)
        await session.delete(target)
    await session.flush()


async def _replace_targets(session: AsyncSession, wp_id: str, spec: WorkPointSpec) -> None:
    await _delete_targets(session, wp_id)
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
