"""What a caller may read: a tracked work point it is responsible for (the office: any)."""

from __future__ import annotations

import uuid

from duban_shared.api import ApiError
from duban_shared.auth import Principal, require_agency_access
from duban_shared.events import work_point_id
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.store import queries
from progress.store.models import AgencyProgress, WorkPointState, WorkPointView


def own(principal: Principal) -> uuid.UUID | None:
    """Whose work points a caller sees: None for the office (all)."""
    return None if principal.is_office() else principal.agency_id


async def tracked(
    session: AsyncSession, principal: Principal, plan_slug: str, code: str
) -> tuple[WorkPointView, WorkPointState]:
    """A tracked work point (by its code, '35' or '3.2') the caller may see: 404
    unknown_work_point, or 403 when an agency is not responsible for it."""
    wp_id = work_point_id(plan_slug, code)
    view = await session.get(WorkPointView, wp_id)
    state = await session.get(WorkPointState, wp_id)
    if view is None or state is None or view.deleted:
        raise ApiError(
            404,
            "unknown_work_point",
            f"No work point '{wp_id}' is tracked; check the plan slug and the work point's code "
            "in the registry.",
        )
    require_agency_access(principal, view.agency_ids(), f"work point {view.code} ({view.title})")
    return view, state


async def work_point(
    session: AsyncSession, principal: Principal, plan_slug: str, code: str
) -> tuple[WorkPointView, WorkPointState, dict[uuid.UUID, AgencyProgress]]:
    """A tracked work point the caller may see (see tracked), with its agencies' latest
    reports."""
    view, state = await tracked(session, principal, plan_slug, code)
    latest = await queries.latest_reports(session, [view.id])
    return view, state, latest.get(view.id, {})
