"""Plans: import a text (its diff first, applied when confirmed), change a plan, its policy
and its sections, republish. Every change queues the snapshots of the work points it touches.

`import_plan` works in the caller's transaction (tests and the stack use it so); the use cases
below it open their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from duban_shared.audit import changed_fields
from duban_shared.events import work_point_id
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.agency_names import agency_kind
from registry.domain.errors import Refusal, unknown_agency, unknown_plan
from registry.domain.plan_import import (
    ConfirmationRequired,
    Defaults,
    ImportReport,
    city_of,
    parsed_shapes,
    sha256_text,
)
from registry.domain.plan_parser import ParsedPlan
from registry.domain.policies import POLICY_FIELDS, check_due_on, year_end
from registry.domain.versions import diff_work_points
from registry.settings import RegistrySettings
from registry.store import agencies as store_agencies
from registry.store import plans as store
from registry.store import queries
from registry.store.models import Agency, Plan, PlanVersion, Section, WorkPoint
from registry.use_cases import agencies
from registry.use_cases.context import Context
from registry.use_cases.publishing import publish_agency, publish_tombstone, publish_work_points


def defaults_of(settings: RegistrySettings) -> Defaults:
    """The stall-policy defaults a registry's settings give new plans, and the due-date window."""
    return Defaults(
        settings.default_report_every_working_days,
        settings.default_grace_working_days,
        latest_due_years_after_plan=settings.latest_due_years_after_plan,
    )


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
    """Compare a parsed plan with the stored one and apply it (in the caller's transaction).

    1. The same text as the current version changes nothing.
    2. Agency names are resolved to existing agencies (aliases, former names, short forms);
       the diff compares work points by code against the stored ones (a work point
       whose ordinal changed counts as moved).
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
    resolved = {name: await store_agencies.resolve(session, name) for name in names}
    current_name = {n: (a.name if a else n) for n, a in resolved.items()}
    stored = await store.stored_work_points(session, plan)
    new_shapes = parsed_shapes(parsed, current_name)
    diff = diff_work_points(
        {c: shape for c, (_, shape) in stored.items()},
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
    await store.write_sections(session, plan.id, {s.number: s.title for s in parsed.sections})

    for spec in parsed.work_points:
        if spec.due_on is not None:
            try:
                check_due_on(plan, spec.due_on, defaults.latest_due_years_after_plan)
            except Refusal as exc:
                raise Refusal(
                    exc.status,
                    exc.code,
                    f"Work point {spec.code} (line {spec.line}) states a deadline that cannot be "
                    f"kept: {exc.message}",
                    {"code": spec.code, "line": spec.line},
                ) from exc
    specs = {spec.code: spec for spec in parsed.work_points}
    changed: list[str] = []
    for code in diff.added + diff.changed():
        spec = specs[code]
        wp = stored[code][0] if code in stored else None
        if wp is None:
            wp = WorkPoint(
                id=work_point_id(slug, code),
                plan_id=plan.id,
                number=spec.number,
                code=code,
                section_number=spec.section,
                title=spec.title,
                text=spec.text,
                due_on=spec.due_on,
                updated_at=now,
            )
        else:
            wp.revision += 1
            wp.due_on = spec.due_on or wp.due_on  # a deadline the text no longer states stays
        wp.number, wp.section_number = spec.number, spec.section
        wp.title, wp.text = spec.title, spec.text
        wp.lead_inferred, wp.with_other_units = spec.lead_inferred, spec.with_other_units
        wp.updated_at = now
        session.add(wp)
        await session.flush()
        if code in diff.added or code in diff.responsibilities_changed:
            shape = new_shapes[code]
            roles = [("lead", n) for n in shape.leads] + [("co", n) for n in shape.cos]
            await store.replace_roles(session, wp.id, [(role, by_name[n]) for role, n in roles])
        if code in diff.added or code in diff.targets_changed:
            await store.replace_targets(session, wp.id, spec)
        changed.append(wp.id)
    await publish_work_points(session, changed, now)
    for code in diff.removed:
        wp = stored[code][0]
        await store.replace_roles(session, wp.id, [])
        await store.delete_targets(session, wp.id)
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
            city=city or city_of(info.issuer),
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
    if plan.coordinating_agency_id is None and info.issuer:
        office = await store_agencies.resolve(session, info.issuer)
        if office is None:
            office = await agencies.create(session, info.issuer, agency_kind(info.issuer), now)
        plan.coordinating_agency_id = office.id
    session.add(plan)
    await session.flush()
    return plan


# ---------------------------------------------------------------- use cases


async def import_plan_text(
    ctx: Context,
    parsed: ParsedPlan,
    text: str,
    *,
    slug: str,
    confirm: bool,
    review: str = "",
) -> ImportReport:
    """Import a plan text in one transaction: without `confirm`, a change to an existing plan
    is refused with its diff (409 confirmation_required); the same text changes nothing.

    `review` is the office's corrections as canonical JSON (plan_review.review_key): the same
    text with other corrections is another version.
    """
    async with ctx.transaction() as now:
        report = await import_plan(
            ctx.session,
            parsed,
            slug=slug,
            source_sha256=sha256_text(text + review),
            source_text=text,
            now=now,
            defaults=defaults_of(ctx.settings),
            confirm=confirm,
        )
        if report.changed:
            after = {
                "version": report.version,
                "created": report.plan_created,
                "work_points_added": report.work_points_added,
                "work_points_updated": report.work_points_updated,
                "work_points_removed": report.work_points_removed,
                "agencies_added": report.agencies_added,
            }
            ctx.audit("plan.imported", slug, now, after=after)
        return report


async def plan_by_slug(session: AsyncSession, slug: str) -> Plan:
    """The plan of a slug; refused (404 unknown_plan) when none was imported."""
    plan = await queries.plan_by_slug(session, slug)
    if plan is None:
        raise unknown_plan(slug)
    return plan


async def change_plan(
    ctx: Context,
    slug: str,
    *,
    title: str | None = None,
    due_on: date | None = None,
    coordinating_agency_id: uuid.UUID | None = None,
) -> Plan:
    """Change a plan's title, due date or coordinating office; its work points are republished."""
    async with ctx.transaction() as now:
        plan = await plan_by_slug(ctx.session, slug)
        before = _plan_state(plan)
        if coordinating_agency_id is not None:
            office = await ctx.session.get(Agency, coordinating_agency_id)
            if office is None or office.merged_into_id is not None:
                raise unknown_agency(coordinating_agency_id)
            plan.coordinating_agency_id = office.id
        if title is not None:
            plan.title = title
        if due_on is not None:
            check_due_on(plan, due_on, ctx.settings.latest_due_years_after_plan)
            plan.due_on = due_on
        ctx.session.add(plan)
        old, new = changed_fields(before, _plan_state(plan))
        ctx.audit("plan.changed", plan.slug, now, before=old, after=new)
        await _republish_plan(ctx.session, plan, now)
    return plan


async def set_plan_policy(ctx: Context, slug: str, policy: Mapping[str, Any]) -> Plan:
    """Replace the plan's default stall policy (POLICY_FIELDS); every work point is
    republished."""
    async with ctx.transaction() as now:
        plan = await plan_by_slug(ctx.session, slug)
        before = _plan_state(plan)
        for name in POLICY_FIELDS:
            setattr(plan, name, policy[name])
        ctx.session.add(plan)
        old, new = changed_fields(before, _plan_state(plan))
        ctx.audit("plan.policy_changed", plan.slug, now, before=old, after=new)
        await _republish_plan(ctx.session, plan, now)
    return plan


def _plan_state(plan: Plan) -> dict[str, Any]:
    """What the audit trail shows of a plan: its terms and default policy."""
    names = ("title", "due_on", "coordinating_agency_id", *POLICY_FIELDS)
    return {name: getattr(plan, name) for name in names}


async def _republish_plan(session: AsyncSession, plan: Plan, now: datetime) -> None:
    await session.flush()
    ids = (await session.exec(select(WorkPoint.id).where(WorkPoint.plan_id == plan.id))).all()
    await publish_work_points(session, ids, now)


async def retitle_section(ctx: Context, slug: str, number: int, title: str) -> Section:
    """Give a section of a plan a new title."""
    async with ctx.transaction() as now:
        plan = await plan_by_slug(ctx.session, slug)
        section = (
            await ctx.session.exec(
                select(Section).where(Section.plan_id == plan.id, Section.number == number)
            )
        ).first()
        if section is None:
            raise Refusal(404, "unknown_section", f"Plan '{slug}' has no section {number}.")
        before = {"title": section.title}
        section.title = title
        ctx.session.add(section)
        subject = f"{plan.slug}#{number}"
        ctx.audit("section.retitled", subject, now, before=before, after={"title": title})
    return section


async def republish(ctx: Context, plan_slug: str | None = None) -> tuple[int, int]:
    """Publish every work point snapshot (of all plans, or one) and every agency snapshot
    again; return how many of each. Consumers ignore what they already have."""
    async with ctx.transaction() as now:
        query = select(WorkPoint.id)
        if plan_slug:
            plan = await plan_by_slug(ctx.session, plan_slug)
            query = query.where(WorkPoint.plan_id == plan.id)
        ids = list((await ctx.session.exec(query)).all())
        await publish_work_points(ctx.session, ids, now)
        published = 0
        for agency in (await ctx.session.exec(select(Agency))).all():
            await publish_agency(ctx.session, agency, now)
            published += 1
    return len(ids), published


async def known_agency_names(ctx: Context, names: list[str]) -> set[str]:
    """Those of the names the registry already knows (by name, alias or former name)."""
    async with ctx.transaction():
        return {name for name in names if await store_agencies.resolve(ctx.session, name)}
