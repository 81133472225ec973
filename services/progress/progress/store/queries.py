"""Read-side questions: a plan's work points, its board lines and titles, an agency's scorecard,
the agencies' latest reports, a work point's timeline.

Each takes the work points a caller may see (an agency: its own; the office: all), so access is
decided once, by the API, and the sums here never mix in what the caller may not see.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, case, cast, func, union_all
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.scorecards import (
    AcrossPlans,
    PlanCard,
    Scorecard,
    across_plans,
    responsibility_cards,
    worst_first,
)
from progress.store.models import (
    AgencyProgress,
    ArchivedReport,
    ClosureDecision,
    StatusReport,
    TransitionRecord,
    WorkPointState,
    WorkPointView,
)


async def work_points(
    session: AsyncSession, plan_slug: str, agency_id: uuid.UUID | None = None
) -> list[tuple[WorkPointView, WorkPointState]]:
    """The tracked work points of a plan, by number (only an agency's own when given)."""
    rows = (
        await session.exec(
            select(WorkPointView, WorkPointState)
            .join(WorkPointState, col(WorkPointState.work_point_id) == col(WorkPointView.id))
            .where(WorkPointView.plan_slug == plan_slug, col(WorkPointView.deleted).is_(False))
            .order_by(col(WorkPointView.number))
        )
    ).all()
    return [
        (view, state)
        for view, state in rows
        if agency_id is None or view.role_of(agency_id) is not None
    ]


async def latest_reports(
    session: AsyncSession, wp_ids: list[str]
) -> dict[str, dict[uuid.UUID, AgencyProgress]]:
    """Each responsible agency's latest report on some work points, by work point and agency."""
    rows = (
        await session.exec(
            select(AgencyProgress).where(col(AgencyProgress.work_point_id).in_(wp_ids))
        )
    ).all()
    latest: dict[str, dict[uuid.UUID, AgencyProgress]] = {}
    for row in rows:
        latest.setdefault(row.work_point_id, {})[row.agency_id] = row
    return latest


async def plan_slugs(session: AsyncSession) -> list[str]:
    """The plans with tracked work points, by slug."""
    rows = await session.exec(
        select(WorkPointView.plan_slug)
        .where(col(WorkPointView.deleted).is_(False))
        .distinct()
        .order_by(col(WorkPointView.plan_slug))
    )
    return list(rows.all())


Responsible = tuple[tuple[str, str, str], ...]
"""A work point's responsible agencies as (agency id, name, role)."""


@dataclass(frozen=True, slots=True)
class BoardLine:
    """What the supervision board shows of a work point: no more than its cell needs."""

    number: int
    """The ordinal in the plan: what the board orders by."""
    code: str
    """What the board shows and links to ('35', '3.2')."""
    section: int
    title: str
    responsible: Responsible
    level: str
    reasons: list[str]
    closure: str | None
    provisional: bool = False
    """Judged on a provisional calendar year (its official arrangement not installed)."""


@functools.lru_cache(maxsize=20_000)
def _responsible(text: str) -> Responsible:
    """Decode a work point's responsibilities once: they change only with a registry snapshot,
    and decoding thousands of JSON documents per page was most of the board's time."""
    return tuple((r["agency_id"], r["name"], r["role"]) for r in json.loads(text))


async def board_lines(
    session: AsyncSession, plan_slug: str, agency_id: uuid.UUID | None = None
) -> list[BoardLine]:
    """The tracked work points of a plan as board lines, by ordinal (an agency: its own).

    The same rows as work_points(), read as plain columns (the JSON ones as text, decoded only
    when needed): a plan of thousands of work points is read in milliseconds.
    """
    connection = await session.connection()
    rows = await connection.execute(
        sa_select(
            col(WorkPointView.number),
            col(WorkPointView.code),
            col(WorkPointView.section),
            col(WorkPointView.title),
            cast(col(WorkPointView.responsibilities), String),
            col(WorkPointState.level),
            cast(col(WorkPointState.reasons), String),
            col(WorkPointState.closure),
            col(WorkPointState.provisional_years).is_not(None),
        )
        .join(WorkPointState, col(WorkPointState.work_point_id) == col(WorkPointView.id))
        .where(col(WorkPointView.plan_slug) == plan_slug, col(WorkPointView.deleted).is_(False))
        .order_by(col(WorkPointView.number))
    )
    own = str(agency_id) if agency_id is not None else None
    lines = []
    for (
        number,
        code,
        section,
        title,
        responsibilities,
        level,
        reasons,
        closure,
        provisional,
    ) in rows:
        responsible = _responsible(responsibilities)
        if own is not None and all(agency != own for agency, _, _ in responsible):
            continue
        decoded = json.loads(reasons) if reasons and reasons != "[]" else []
        lines.append(
            BoardLine(
                number,
                code,
                section,
                title,
                responsible,
                level,
                decoded,
                closure,
                bool(provisional),
            )
        )
    return lines


async def plan_titles(session: AsyncSession, plan_slug: str) -> tuple[str, dict[int, str]]:
    """The plan's title and its sections' titles, as the registry's snapshots named them
    (empty strings until a snapshot carrying them arrived)."""
    rows = await session.exec(
        select(WorkPointView.plan_title, WorkPointView.section, WorkPointView.section_title)
        .where(col(WorkPointView.plan_slug) == plan_slug, col(WorkPointView.deleted).is_(False))
        .distinct()
    )
    plan_title = ""
    sections: dict[int, str] = {}
    for title, section, section_title in rows.all():
        plan_title = plan_title or title
        if section_title:
            sections[section] = section_title
    return plan_title, sections


async def scorecards(
    session: AsyncSession,
    rows: Sequence[tuple[WorkPointView, WorkPointState]],
    only: uuid.UUID | None = None,
) -> list[Scorecard]:
    """Scorecards of every agency responsible for the given work points (or of one).

    Reports: in-order reports on these work points; on time when no later than the report
    period after the agency's previous report (delay 0). Open stalls: episodes open on work
    points it leads, by colour. Silent now: work points it leads that are silent.
    """
    cards = responsibility_cards(
        ((view.responsibilities, state.open_level, state.reasons) for view, state in rows), only
    )
    if not cards:
        return []
    wp_ids = [view.id for view, _ in rows]
    connection = await session.connection()  # a five-column aggregate: plain SQLAlchemy
    # the history and the archive of old plan years together
    reports = union_all(
        *(
            sa_select(
                col(model.agency_id).label("agency_id"),
                col(model.delay_working_days).label("delay"),
                col(model.late).label("late"),
            ).where(
                col(model.work_point_id).in_(wp_ids),
                col(model.agency_id).in_(list(cards)),
                col(model.out_of_order).is_(False),
            )
            for model in (StatusReport, ArchivedReport)
        )
    ).subquery()
    stats = await connection.execute(
        sa_select(
            reports.c.agency_id,
            func.count(),
            func.sum(case((reports.c.delay == 0, 1), else_=0)),
            func.sum(case((reports.c.late, 1), else_=0)),
            func.avg(reports.c.delay),
        ).group_by(reports.c.agency_id)
    )
    for agency, count, on_time, late, avg_delay in stats.all():
        cards[agency].add_reports(count, on_time or 0, late or 0, avg_delay)
    return worst_first(cards.values())


async def plan_scorecards(session: AsyncSession, plan_slug: str) -> list[Scorecard]:
    """Every responsible agency's scorecard on a plan, most red first."""
    return await scorecards(session, await work_points(session, plan_slug))


async def agency_scorecard(
    session: AsyncSession, plan_slug: str, agency_id: uuid.UUID
) -> Scorecard | None:
    """One agency's scorecard on a plan; None when it is responsible for none of its work
    points."""
    cards = await scorecards(session, await work_points(session, plan_slug, agency_id), agency_id)
    return cards[0] if cards else None


async def scorecards_across_plans(
    session: AsyncSession, only: uuid.UUID | None = None
) -> list[AcrossPlans]:
    """Every responsible agency's scorecards on every tracked plan (or one agency's), each
    plan's as plan_scorecards() counts it and a total over all its work points, most red first.

    One read of the tracked work points; then the report figures once per plan and once for
    the totals (a handful of plans: a handful of aggregates).
    """
    rows = (
        await session.exec(
            select(WorkPointView, WorkPointState)
            .join(WorkPointState, col(WorkPointState.work_point_id) == col(WorkPointView.id))
            .where(col(WorkPointView.deleted).is_(False))
        )
    ).all()
    mine = [(v, s) for v, s in rows if only is None or v.role_of(only) is not None]
    by_plan: dict[str, list[tuple[WorkPointView, WorkPointState]]] = {}
    for view, state in mine:
        by_plan.setdefault(view.plan_slug, []).append((view, state))
    per_plan = [
        PlanCard(slug, next((v.plan_title for v, _ in plan_rows if v.plan_title), ""), card)
        for slug, plan_rows in sorted(by_plan.items())
        for card in await scorecards(session, plan_rows, only)
    ]
    return across_plans(per_plan, await scorecards(session, mine, only))


@dataclass(frozen=True)
class Entry:
    """One line of a work point's timeline."""

    at: datetime
    kind: str  # report, transition, closure_decision
    detail: dict[str, Any]


async def timeline(
    session: AsyncSession, wp_id: str, limit: int, offset: int
) -> tuple[list[Entry], int]:
    """A work point's reports, transitions and closure decisions, newest first, as recorded."""
    reports: list[StatusReport | ArchivedReport] = [
        *(await session.exec(select(StatusReport).where(StatusReport.work_point_id == wp_id))),
        *(await session.exec(select(ArchivedReport).where(ArchivedReport.work_point_id == wp_id))),
    ]
    transitions = (
        await session.exec(select(TransitionRecord).where(TransitionRecord.work_point_id == wp_id))
    ).all()
    decisions = (
        await session.exec(select(ClosureDecision).where(ClosureDecision.work_point_id == wp_id))
    ).all()
    # Ordered by time, then (for entries at one instant) by the reports before each: a report,
    # then the decision taken after it, then the transition either caused.
    keyed = [((r.stored_at, r.chain_seq, 0), _report_entry(r)) for r in reports]
    keyed += [
        (
            (d.decided_at, d.after_report_seq, 1),
            Entry(
                d.decided_at,
                "closure_decision",
                {"decision": d.decision, "reason": d.reason, "decided_by": d.decided_by},
            ),
        )
        for d in decisions
    ]
    keyed += [((t.occurred_at, t.after_report_seq, 2), _transition_entry(t)) for t in transitions]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [entry for _, entry in keyed[offset : offset + limit]], len(keyed)


def _report_entry(r: StatusReport | ArchivedReport) -> Entry:
    return Entry(
        r.stored_at,
        "report",
        {
            "chain_seq": r.chain_seq,
            "event_id": str(r.event_id),
            "agency_id": str(r.agency_id),
            "status": r.status,
            "percent": r.percent,
            "kpis": r.kpis,
            "note": r.note,
            "evidence": r.evidence,
            "occurred_at": r.occurred_at.isoformat(),
            "late": r.late,
            "out_of_order": r.out_of_order,
            "delay_working_days": r.delay_working_days,
            "reported_by": r.reported_by,
        },
    )


def _transition_entry(t: TransitionRecord) -> Entry:
    return Entry(
        t.occurred_at,
        "transition",
        {
            "event_id": str(t.event_id),
            "transition": t.kind,
            "episode_id": str(t.episode_id) if t.episode_id else None,
            "level": t.level,
            "previous_level": t.previous_level,
            "reasons": t.reasons,
            "triggered_by_event_id": (
                str(t.triggered_by_event_id) if t.triggered_by_event_id else None
            ),
        },
    )
