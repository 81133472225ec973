"""Alerts over HTTP: list them, acknowledge with a token, or with a signed link from a message.

A link opens a small confirmation page; only its POST acknowledges, so mail scanners that
prefetch links cannot acknowledge on someone's behalf.
"""

from __future__ import annotations

import html
import uuid
from datetime import datetime
from typing import Annotated, Literal

from duban_shared.api import ApiError, Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import PrincipalDep, require_agency_access
from duban_shared.events import WorkPointId
from duban_shared.kafka import trace_id_of
from duban_shared.numerals import chinese_number
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.alerts import RESOLVED, AckRefused, ack_code, acknowledge, use_code
from notifier.models import Alert, NotificationLog

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


@router.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
async def ack_page(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    """The page a link opens: what the alert is, and one button to acknowledge it."""
    service = request.app.state.service
    try:
        row = await ack_code(session, service.ack_links.code_of(token), service.clock.now())
    except AckRefused as exc:
        return _page(exc.message, status=exc.status)
    alert = await session.get(Alert, row.alert_id)
    if alert is None:
        return _page("没有找到这条督办提醒。", status=404)
    return _page(
        f"第{chinese_number(alert.number)}项“{alert.title}”:点击下方按钮确认已知悉。",
        form='<form method="post"><button type="submit">确认已知悉</button></form>',
    )


@router.post("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
async def ack_by_link(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    """Acknowledge through a signed, expiring, single-use link."""
    service = request.app.state.service
    now = service.clock.now()
    try:
        alert = await use_code(session, service.ack_links.code_of(token), now)
    except AckRefused as exc:
        await session.rollback()
        return _page(exc.message, status=exc.status)
    await session.commit()
    service.escalator_wake()
    return _page(f"已确认:第{chinese_number(alert.number)}项“{alert.title}”。谢谢。")


def _page(message: str, *, status: int = 200, form: str = "") -> HTMLResponse:
    body = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>督办确认</title>'
        f"<body><p>{html.escape(message)}</p>{form}</body></html>"
    )
    return HTMLResponse(body, status_code=status)
