"""Keeping the read model of the registry's work points, and starting to track new ones."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime

from duban_shared.clock import Clock
from duban_shared.events import StallTransition, WorkPointSnapshot
from duban_shared.workdays import OFFICIAL, WorkingCalendar
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.store import states
from progress.store.models import WorkPointState, WorkPointView
from progress.use_cases.judging import rejudge


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
        "code": snap.code,
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
    blocked = await states.blocked_work_points(session, [snap.work_point_id])
    return rejudge(session, view, state, now, blocked=bool(blocked), calendar=calendar)


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


@dataclass
class SnapshotBatch:
    """Snapshots being applied in one transaction (see ApplySnapshots.batch)."""

    session: AsyncSession
    clock: Clock
    calendar: WorkingCalendar

    async def apply(self, snap: WorkPointSnapshot, traceparent: str | None) -> None:
        """Apply one snapshot (`traceparent`: the registry's trace that published it)."""
        await upsert_view(self.session, snap, traceparent, self.clock.now(), self.calendar)


@dataclass
class ApplySnapshots:
    """The work point consumer's use case: a batch of snapshots, in one transaction."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    calendar: WorkingCalendar = OFFICIAL

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[SnapshotBatch]:
        """A transaction for a batch, committed when the block ends (rolled back on an
        exception). A transition a snapshot causes is in the outbox with it; the relay's next
        poll sends it."""
        async with self.sessions() as session, session.begin():
            yield SnapshotBatch(session, self.clock, self.calendar)
