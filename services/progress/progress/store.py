"""Progress persistence: read model upkeep, applying reports, judging, closure, due rows.

Every change to a work point's facts re-judges it at once (progress.domain); a change of its
episode (opened, level changed, recovered, closed) is recorded in `stall_transition` and queued in
the outbox in the same transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from duban_shared import topics
from duban_shared.events import (
    AgencyRef,
    Level,
    ReportStatus,
    StallReason,
    StallTransition,
    StallTransitionKind,
    StatusEvent,
    WorkPointSnapshot,
)
from duban_shared.kafka import current_traceparent
from duban_shared.outbox import outbox_row
from duban_shared.workdays import OFFICIAL, WorkingCalendar, local_day
from sqlalchemy import ARRAY, ColumnElement, Table, any_, bindparam, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress import history
from progress.domain import Facts, Policy, Target, Verdict, judge, transition_needed
from progress.models import (
    AgencyProgress,
    ClosureDecision,
    OutboxMessage,
    StatusReport,
    TransitionRecord,
    WorkPointState,
    WorkPointView,
)

IN_REVIEW = "in_review"
CLOSED = "closed"
RECENT_PERCENTS_KEPT = 20

DEFAULT_LATE_AFTER = timedelta(days=7)
"""A report arriving this long after the moment it describes is marked late."""


async def upsert_view(
    session: AsyncSession,
    snap: WorkPointSnapshot,
    traceparent: str | None,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
) -> StallTransition | None:
    """Apply a registry snapshot to the read model; start tracking a new work point."""
    view = await session.get(WorkPointView, snap.work_point_id)
    if view is not None and view.snapshot_at > snap.occurred_at:
        return None  # an older snapshot redelivered after a newer one
    fields = {
        "plan_slug": snap.plan_slug,
        "number": snap.number,
        "section": snap.section,
        "title": snap.title,
        "plan_title": snap.plan_title,
        "section_title": snap.section_title,
        "responsibilities": [r.model_dump(mode="json") for r in snap.responsibilities],
        "report_every_working_days": snap.report_every_working_days,
        "grace_working_days": snap.grace_working_days,
        "warn_before_due_working_days": snap.warn_before_due_working_days,
        "pace_tolerance_pct": snap.pace_tolerance_pct,
        "flatline_reports": snap.flatline_reports,
        "starts_on": _date(snap.starts_on),
        "due_on": _date(snap.due_on),
        "targets": [t.model_dump(mode="json") for t in snap.targets],
        "coordinating_agency_id": snap.coordinating_agency_id,
        "deleted": snap.deleted,
        "registry_traceparent": traceparent,
        "snapshot_at": snap.occurred_at,
    }
    if view is None:
        view = WorkPointView.model_validate({"id": snap.work_point_id, **fields})
    else:
        view.sqlmodel_update(fields)
    session.add(view)
    state = await session.get(WorkPointState, snap.work_point_id)
    if snap.deleted:
        if state is not None:
            state.next_check_at = None
            session.add(state)
        return None
    if state is None:
        state = WorkPointState(work_point_id=snap.work_point_id, tracking_since=now)
    blocked = await blocked_work_points(session, [snap.work_point_id])
    return rejudge(session, view, state, now, blocked=bool(blocked), calendar=calendar)


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


@dataclass
class Loaded:
    """A work point's mutable rows, loaded once (for a whole batch of reports) and kept current
    in memory, so applying a report needs no queries of its own."""

    state: WorkPointState | None
    progress: dict[uuid.UUID, AgencyProgress] = field(default_factory=dict)
    reports: list[history.NewReport] = field(default_factory=list)
    """Reports applied and not yet written (see write_back)."""

    def any_blocked(self) -> bool:
        """Some agency's latest report says `blocked`."""
        return any(p.status == ReportStatus.BLOCKED.value for p in self.progress.values())


def among(
    where: AsyncSession | AsyncConnection, column: Any, values: Collection[Any]
) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `column = ANY(array)`, one parameter for them all.

    An IN list is a parameter per value: the statement's text changes with the batch and is
    hundreds of parameters long, so the driver parses it again on every batch. `where` is the
    session or connection the statement runs on.
    """
    dialect = where.dialect if isinstance(where, AsyncConnection) else where.get_bind().dialect
    if dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=ARRAY(column.type))
        return cast(ColumnElement[bool], column == any_(array))
    return cast(ColumnElement[bool], column.in_(values))


async def load(session: AsyncSession, wp_ids: Collection[str]) -> dict[str, Loaded]:
    """Load the states and agencies' latest reports of some work points, in two queries."""
    states = await session.exec(
        select(WorkPointState).where(among(session, col(WorkPointState.work_point_id), wp_ids))
    )
    loaded = {wp: Loaded(state=None) for wp in wp_ids}
    for state in states.all():
        loaded[state.work_point_id].state = state
    rows = await session.exec(
        select(AgencyProgress).where(among(session, col(AgencyProgress.work_point_id), wp_ids))
    )
    for row in rows.all():
        loaded[row.work_point_id].progress[row.agency_id] = row
    return loaded


async def write_back(session: AsyncSession, loaded: Iterable[Loaded]) -> None:
    """Write what a batch changed: its reports in one executemany INSERT, its changed states and
    agency rows in one executemany UPDATE per table.

    The unit of work would update them one statement per row (their changed columns differ);
    taking them out of the session and updating every column by primary key costs one round
    trip per table. Other new rows stay with the session, which inserts them in bulk already.
    """
    changed: dict[type[Any], list[dict[str, Any]]] = {WorkPointState: [], AgencyProgress: []}
    reports: list[dict[str, Any]] = []
    dirty = session.dirty  # computed from the whole session on every access: once
    for item in loaded:
        reports += [vars(r) for r in item.reports]
        item.reports.clear()
        rows: list[Any] = [item.state, *item.progress.values()]
        for row in rows:
            if row is None or row not in dirty or not sa_inspect(row).persistent:
                continue
            changed[type(row)].append(_columns(row))
            session.expunge(row)
    if reports:
        # Core, not the ORM's bulk insert: that splits the rows by which columns are None (a
        # statement per pattern); every row here names every column, so one executemany.
        await session.exec(insert(_table(StatusReport)), params=reports)
    for model, values in changed.items():
        if values:
            await session.exec(update(model), params=values)


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


def _columns(row: Any) -> dict[str, Any]:
    return {a.key: getattr(row, a.key) for a in sa_inspect(type(row)).column_attrs}


async def apply_report(
    session: AsyncSession,
    event: StatusEvent,
    view: WorkPointView,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
    late_after: timedelta = DEFAULT_LATE_AFTER,
    loaded: Loaded | None = None,
) -> StallTransition | None:
    """Store a report, update the agency's and the work point's state, and judge again.

    1. The report joins the work point's hash-chained history, flagged late when it arrived
       more than `late_after` after the moment it describes, and out of order when older than
       the agency's latest report. An out-of-order report moves no state.
    2. The agency's latest status, percent and KPIs (merged by metric) are updated, with its
       delay: working days past its report period since its previous report.
    3. A lead's report sets the work point's status, percent and recent percents; `done` from
       every lead puts the work point in closure review, anything else from a lead withdraws a
       pending review. A closed work point keeps its reports but is judged no more.

    `loaded` is the work point's rows when the caller loaded them for a batch (see load()); the
    caller then writes them back (write_back) once the batch is applied.
    """
    if loaded is None:
        alone = (await load(session, [event.work_point_id]))[event.work_point_id]
        transition = await apply_report(session, event, view, now, calendar, late_after, alone)
        await write_back(session, [alone])
        return transition
    latest = loaded.progress.get(event.agency_id)
    state = loaded.state
    if state is None:
        state = loaded.state = WorkPointState(work_point_id=event.work_point_id, tracking_since=now)
    out_of_order = latest is not None and event.occurred_at < latest.last_report_at
    delay = None
    if not out_of_order:
        previous = latest.last_report_at if latest is not None else state.tracking_since
        waited = calendar.working_days_between(local_day(previous), local_day(event.occurred_at))
        delay = max(0, waited - view.report_every_working_days)
    report = history.NewReport(
        event_id=event.event_id,
        work_point_id=event.work_point_id,
        agency_id=event.agency_id,
        status=event.status.value,
        percent=event.percent,
        kpis=dict(event.kpis),
        note=event.note,
        evidence=list(event.evidence),
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        stored_at=now,
        out_of_order=out_of_order,
        late=(event.received_at or now) - event.occurred_at > late_after,
        delay_working_days=delay,
    )
    history.extend(state, report)
    loaded.reports.append(report)
    state.last_traceparent = current_traceparent()
    if out_of_order:
        session.add(state)
        return None
    if latest is None:
        latest = loaded.progress[event.agency_id] = AgencyProgress(
            work_point_id=event.work_point_id,
            agency_id=event.agency_id,
            status=event.status.value,
            last_report_at=event.occurred_at,
        )
    latest.status, latest.percent = event.status.value, event.percent
    latest.kpis = {**latest.kpis, **event.kpis}
    latest.last_report_at = event.occurred_at
    session.add(latest)
    if state.closure == CLOSED:
        session.add(state)
        return None
    # With several leads, an older report of one lead must not replace a newer one's.
    if view.role_of(event.agency_id) == "lead" and (
        state.last_lead_report_at is None or event.occurred_at >= state.last_lead_report_at
    ):
        state.status, state.percent = event.status.value, event.percent
        state.last_lead_report_at = event.occurred_at
        state.recent_percents = [*state.recent_percents, event.percent][-RECENT_PERCENTS_KEPT:]
        _review_on_lead_report(view, state, loaded, event, now)
    if event.kpis:
        state.kpis = _work_point_kpis(view, loaded)
    return rejudge(
        session, view, state, now, blocked=loaded.any_blocked(), trigger=event, calendar=calendar
    )


def _review_on_lead_report(
    view: WorkPointView,
    state: WorkPointState,
    loaded: Loaded,
    event: StatusEvent,
    now: datetime,
) -> None:
    if event.status != ReportStatus.DONE:
        state.closure = state.closure_requested_at = None
        return
    leads = [loaded.progress.get(a) for a in view.agency_ids("lead")]
    every_lead_done = all(p is not None and p.status == ReportStatus.DONE.value for p in leads)
    if every_lead_done and state.closure is None:
        state.closure, state.closure_requested_at = IN_REVIEW, now


def _work_point_kpis(view: WorkPointView, loaded: Loaded) -> dict[str, float]:
    """A work point's KPI actuals: for a target split into shares, the sum of the share-holders'
    latest values; otherwise the latest value a lead agency reported."""
    rows = list(loaded.progress.values())
    leads = {str(a) for a in view.agency_ids("lead")}
    kpis: dict[str, float] = {}
    for target in view.targets:
        metric = target["metric"]
        holders = {s["agency_id"] for s in target.get("shares", [])}
        if holders:
            values = [
                r.kpis[metric] for r in rows if str(r.agency_id) in holders and metric in r.kpis
            ]
            if values:
                kpis[metric] = sum(values)
            continue
        from_leads = [r for r in rows if str(r.agency_id) in leads and metric in r.kpis]
        if from_leads:
            kpis[metric] = max(from_leads, key=lambda r: r.last_report_at).kpis[metric]
    return kpis


async def blocked_work_points(session: AsyncSession, wp_ids: Sequence[str]) -> set[str]:
    """The work points among `wp_ids` where some agency's latest report is `blocked`."""
    rows = await session.exec(
        select(AgencyProgress.work_point_id)
        .where(
            col(AgencyProgress.work_point_id).in_(wp_ids),
            AgencyProgress.status == ReportStatus.BLOCKED.value,
        )
        .distinct()
    )
    return set(rows.all())


def policy_of(view: WorkPointView) -> Policy:
    """The stall policy the registry's snapshot carries."""
    return Policy(
        report_every=view.report_every_working_days,
        grace=view.grace_working_days,
        warn_before_due=view.warn_before_due_working_days,
        pace_tolerance_pct=view.pace_tolerance_pct,
        flatline_reports=view.flatline_reports,
        starts_on=view.starts_on,
        due_on=view.due_on,
    )


def facts_of(view: WorkPointView, state: WorkPointState, *, blocked: bool) -> Facts:
    """What the domain needs to judge a work point."""
    return Facts(
        last_heard=state.last_heard(),
        any_blocked=blocked,
        percent=state.percent,
        recent_percents=tuple(state.recent_percents),
        kpis=state.kpis,
        targets=tuple(
            Target(metric=t["metric"], value=float(t["value"]), comparator=t["comparator"])
            for t in view.targets
        ),
        settled=state.closure is not None,
    )


def rejudge(
    session: AsyncSession,
    view: WorkPointView,
    state: WorkPointState,
    now: datetime,
    *,
    blocked: bool,
    trigger: StatusEvent | None = None,
    calendar: WorkingCalendar = OFFICIAL,
) -> StallTransition | None:
    """Judge the work point, persist the verdict, and queue a transition if one happened.

    The years the judgement counted on a provisional calendar are kept with it, so it is marked
    as provisional and made again once their official arrangement is installed.
    """
    with calendar.recording() as provisional:
        verdict = judge(
            now=now,
            facts=facts_of(view, state, blocked=blocked),
            policy=policy_of(view),
            calendar=calendar,
        )
    state.provisional_years = sorted(provisional) or None
    before = _Episode.of(state)
    state.level = verdict.level.value
    state.reasons = [r.value for r in verdict.reasons]
    state.expected_percent = verdict.expected_percent
    state.judged_at = now
    state.next_check_at = verdict.next_check_at
    kind = transition_needed(before.level, verdict)
    transition = None
    if kind == StallTransitionKind.OPENED:
        state.stall_episode_id, state.stalled_since = uuid.uuid4(), now
    if kind is not None:
        transition = _emit(session, view, state, kind, verdict, before, now, trigger)
    if kind == StallTransitionKind.RECOVERED:
        _end_episode(state)
    session.add(state)
    return transition


@dataclass(frozen=True)
class _Episode:
    """The open episode's colour and headline reason before a new verdict replaces them."""

    level: Level | None
    reason: StallReason | None

    @classmethod
    def of(cls, state: WorkPointState) -> _Episode:
        level, reason = state.open_level, state.stall_reason
        return cls(Level(level) if level else None, StallReason(reason) if reason else None)


def _end_episode(state: WorkPointState) -> None:
    state.stall_episode_id = state.stalled_since = None


def _emit(
    session: AsyncSession,
    view: WorkPointView,
    state: WorkPointState,
    kind: StallTransitionKind,
    verdict: Verdict,
    before: _Episode,
    now: datetime,
    trigger: StatusEvent | None,
    note: str | None = None,
) -> StallTransition:
    """Record a transition for the timeline and queue it for the notifier."""
    ended = kind in (StallTransitionKind.RECOVERED, StallTransitionKind.CLOSED)
    headline = before.reason if ended else verdict.reason
    previous = before.level
    transition = StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=now,
        work_point_id=view.id,
        episode_id=state.stall_episode_id,
        kind=kind,
        level=verdict.level,
        previous_level=previous,
        reason=headline,
        reasons=list(verdict.reasons),
        work_point_number=view.number,
        work_point_title=view.title,
        lead_agencies=_refs(view, "lead"),
        co_agencies=_refs(view, "co"),
        coordinating_agency_id=view.coordinating_agency_id,
        plan_slug=view.plan_slug,
        silent_working_days=verdict.silent_working_days,
        triggered_by_event_id=trigger.event_id if trigger else None,
        note=trigger.note if trigger else note,
    )
    session.add(
        TransitionRecord(
            event_id=transition.event_id,
            work_point_id=view.id,
            episode_id=transition.episode_id,
            kind=kind.value,
            level=transition.level.value,
            previous_level=previous.value if previous else None,
            reasons=[r.value for r in verdict.reasons],
            triggered_by_event_id=transition.triggered_by_event_id,
            after_report_seq=state.report_seq,
            occurred_at=now,
        )
    )
    session.add(outbox_row(OutboxMessage, topics.STALLS, view.id, transition.to_bytes(), now))
    return transition


def _refs(view: WorkPointView, role: str) -> list[AgencyRef]:
    return [
        AgencyRef(agency_id=r["agency_id"], name=r["name"])
        for r in view.responsibilities
        if r["role"] == role
    ]


class ClosureConflict(Exception):
    """A closure decision on a work point that is not in review."""

    def __init__(self, closure: str | None) -> None:
        super().__init__(closure)
        self.closure = closure


async def decide_closure(
    session: AsyncSession,
    view: WorkPointView,
    state: WorkPointState,
    *,
    approve: bool,
    reason: str | None,
    decided_by: str,
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
) -> StallTransition | None:
    """The coordinating office's decision on a work point in review (办结销号).

    Approved: closed, no more checks; an open episode ends with a `closed` transition (one is
    emitted without an episode too, so the lead hears of it). Rejected: back in progress with the
    reason on record, judged again at once.
    """
    if state.closure != IN_REVIEW:
        raise ClosureConflict(state.closure)
    session.add(
        ClosureDecision(
            work_point_id=view.id,
            decision="approved" if approve else "rejected",
            reason=reason,
            decided_by=decided_by,
            after_report_seq=state.report_seq,
            decided_at=now,
        )
    )
    if not approve:
        state.closure = state.closure_requested_at = None
        blocked = await blocked_work_points(session, [view.id])
        return rejudge(session, view, state, now, blocked=bool(blocked), calendar=calendar)
    before = _Episode.of(state)
    state.closure, state.closed_at, state.next_check_at = CLOSED, now, None
    state.provisional_years = None
    state.level, state.reasons = Level.GREEN.value, []
    verdict = Verdict(reasons=(), silent_working_days=0, next_check_at=None)
    transition = _emit(
        session, view, state, StallTransitionKind.CLOSED, verdict, before, now, None, reason
    )
    _end_episode(state)
    session.add(state)
    return transition


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool
) -> list[WorkPointState]:
    """Lock and return the work points whose next check is due (other sweepers skip them)."""
    query = (
        select(WorkPointState)
        .where(col(WorkPointState.next_check_at) <= now)
        .order_by(col(WorkPointState.next_check_at))
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list((await session.exec(query)).all())


async def due_where_now_official(
    session: AsyncSession, calendar: WorkingCalendar, now: datetime, chunk: int = 1000
) -> int:
    """Make due at `now` every work point judged on a provisional year whose official
    arrangement the calendar now has (a year file added, chinese-calendar upgraded); return how
    many. The sweep that follows judges them again on the official calendar."""
    rows = await session.stream(
        select(WorkPointState.work_point_id, WorkPointState.provisional_years).where(
            col(WorkPointState.provisional_years).is_not(None)
        )
    )
    official: dict[int, bool] = {}
    stale: list[str] = []
    async for wp_id, years in rows:
        for year in years or ():
            if official.setdefault(year, calendar.is_official(year)):
                stale.append(wp_id)
                break
    for start in range(0, len(stale), chunk):
        ids = stale[start : start + chunk]
        await session.exec(
            update(WorkPointState)
            .where(among(session, col(WorkPointState.work_point_id), ids))
            .values(next_check_at=now)
        )
    return len(stale)


YIELD_EVERY = 20
"""Work points judged between two turns of the event loop during a sweep (about 10 ms)."""


async def rejudge_claimed(
    session: AsyncSession,
    states: Iterable[WorkPointState],
    now: datetime,
    calendar: WorkingCalendar = OFFICIAL,
) -> list[tuple[WorkPointState, StallTransition | None]]:
    """Re-judge claimed due work points, loading their views and blocked flags in two queries."""
    claimed = list(states)
    ids = [s.work_point_id for s in claimed]
    views = {
        v.id: v
        for v in (
            await session.exec(select(WorkPointView).where(col(WorkPointView.id).in_(ids)))
        ).all()
    }
    blocked = await blocked_work_points(session, ids)
    results: list[tuple[WorkPointState, StallTransition | None]] = []
    for position, state in enumerate(claimed):
        if position and position % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a judgement is ~0.5 ms: let requests and consumers run
        view = views.get(state.work_point_id)
        if view is None or view.deleted:
            state.next_check_at = None
            session.add(state)
            results.append((state, None))
            continue
        transition = rejudge(
            session, view, state, now, blocked=state.work_point_id in blocked, calendar=calendar
        )
        results.append((state, transition))
    return results
