"""Alerts over HTTP: list them, acknowledge with a token, or with a signed link from a message.

A link opens a small confirmation page; only its POST acknowledges, so mail scanners that
prefetch links cannot acknowledge on someone's behalf.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from duban_shared.api import ApiError, Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import PrincipalDep, require_agency_access
from duban_shared.events import WorkPointId
from duban_shared.kafka import trace_id_of
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier import ack_page as pages
from notifier.alerts import RESOLVED, AckRefused, ack_code, acknowledge, use_code
from notifier.models import AckCode, Alert, NotificationLog

router = APIRouter(tags=["alerts"])


class AlertOut(BaseModel):
    """An alert: one stall episode of one work point."""

    id: uuid.UUID
    episode_id: uuid.UUID
    work_point_id: str
    number: int
    title: str
    level: str
    reasons: list[str]
    state: str
    fired_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolution: str | None
    lead_agencies: list[str]
    trace_id: str | None = Field(
        default=None,
        description="The trace of the stall transition that fired it (W3C trace id, 32 hex), "
        "from the traceparent its first planned delivery kept; null when none was planned.",
    )


def _out(alert: Alert, trace_id: str | None = None) -> AlertOut:
    return AlertOut(
        id=alert.id,
        episode_id=alert.episode_id,
        work_point_id=alert.work_point_id,
        number=alert.number,
        title=alert.title,
        level=alert.level,
        reasons=alert.reasons,
        state=alert.state,
        fired_at=alert.fired_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        resolved_at=alert.resolved_at,
        resolution=alert.resolution,
        lead_agencies=[a["name"] for a in alert.lead_agencies],
        trace_id=trace_id,
    )


async def _trace_ids(session: AsyncSession, alert_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The trace id of each alert: that of its first planned delivery's traceparent."""
    if not alert_ids:
        return {}
    rows = await session.exec(
        select(NotificationLog.alert_id, NotificationLog.traceparent)
        .where(
            col(NotificationLog.alert_id).in_(alert_ids),
            col(NotificationLog.traceparent).is_not(None),
        )
        .order_by(col(NotificationLog.id))
    )
    found: dict[uuid.UUID, str] = {}
    for alert_id, traceparent in rows.all():
        trace_id = trace_id_of(traceparent)
        if alert_id is not None and alert_id not in found and trace_id is not None:
            found[alert_id] = trace_id
    return found


def _refused(exc: AckRefused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


@router.get("/v1/alerts")
async def list_alerts(
    session: SessionDep,
    principal: PrincipalDep,
    state: Literal["firing", "acknowledged", "resolved", "open"] | None = Query(
        default=None, description="open: firing or acknowledged"
    ),
    work_point_id: Annotated[WorkPointId | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[AlertOut]:
    """Alerts, newest first: the office sees all, an agency those it was alerted about."""
    query = select(Alert)
    if state == "open":
        query = query.where(col(Alert.state) != RESOLVED)
    elif state is not None:
        query = query.where(Alert.state == state)
    if work_point_id is not None:
        query = query.where(Alert.work_point_id == work_point_id)
    rows = list((await session.exec(query.order_by(col(Alert.fired_at).desc()))).all())
    if not principal.is_office():
        rows = [a for a in rows if principal.agency_id in a.agency_ids()]
    page = rows[offset : offset + limit]
    traces = await _trace_ids(session, [a.id for a in page])
    return Page(
        items=[_out(a, traces.get(a.id)) for a in page],
        total=len(rows),
        limit=limit,
        offset=offset,
    )


@router.post("/v1/alerts/{alert_id}/ack", responses=error_responses(409))
async def ack_alert(
    alert_id: uuid.UUID, request: Request, session: SessionDep, principal: PrincipalDep
) -> AlertOut:
    """Acknowledge an alert: the agencies alerted, or the coordinating office."""
    alert = await session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise ApiError(404, "unknown_alert", f"No alert {alert_id}; list them at GET /v1/alerts.")
    require_agency_access(
        principal,
        alert.agency_ids(),
        f"the alert on work point {alert.number} ({alert.title})",
        code="not_your_alert",
    )
    try:
        acknowledge(alert, principal.client_id, request.app.state.service.clock.now())
    except AckRefused as exc:
        raise _refused(exc) from exc
    alert.next_step_at = request.app.state.service.clock.now()  # re-plan: `acknowledged` steps
    session.add(alert)
    await session.commit()
    request.app.state.service.escalator_wake()
    return _out(alert)


async def _link_alert(session: AsyncSession, code: str | None) -> Alert | None:
    """The alert a known link is for (to tell its state on a refusal), if any."""
    row = await session.get(AckCode, code) if code else None
    return await session.get(Alert, row.alert_id) if row else None


@router.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
async def ack_page(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    """The page a link opens: what the alert is, and one button while it can be acknowledged."""
    service = request.app.state.service
    code = None
    try:
        code = service.ack_links.code_of(token)
        row = await ack_code(session, code, service.clock.now())
        alert = await session.get(Alert, row.alert_id)
        if alert is None:
            raise AckRefused(404, "unknown_alert", f"No alert {row.alert_id}.")
    except AckRefused as exc:
        return pages.refused(exc, await _link_alert(session, code))
    return pages.confirm(alert)


@router.post("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
async def ack_by_link(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    """Acknowledge through a signed, expiring, single-use link."""
    service = request.app.state.service
    now = service.clock.now()
    code = None
    try:
        code = service.ack_links.code_of(token)
        alert = await use_code(session, code, now)
    except AckRefused as exc:
        await session.rollback()
        return pages.refused(exc, await _link_alert(session, code))
    # Acknowledging twice is harmless: say whether this link did it or someone had before.
    by = alert.acknowledged_by or ""
    by_this_link = alert.acknowledged_at == now and by.startswith("link:")
    await session.commit()
    service.escalator_wake()
    return pages.acknowledged(alert, by_this_link)
