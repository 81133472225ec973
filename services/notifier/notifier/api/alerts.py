"""Alerts over HTTP: list them, acknowledge with a token (links are `notifier.api.links`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from duban_shared.api import ApiError, Limit, Offset, Page, error_responses
from duban_shared.auth import PrincipalDep, require_agency_access
from duban_shared.contracts import Alert
from duban_shared.events import WorkPointId
from fastapi import APIRouter, Query

from notifier.api.deps import ServiceDep
from notifier.api.schemas import alert_out
from notifier.domain.alerts import AckRefused
from notifier.store.models import Alert as AlertRow

router = APIRouter(tags=["alerts"])


@router.get("/v1/alerts")
async def list_alerts(
    service: ServiceDep,
    principal: PrincipalDep,
    state: Literal["firing", "acknowledged", "resolved", "open"] | None = Query(
        default=None, description="open: firing or acknowledged"
    ),
    work_point_id: Annotated[WorkPointId | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[Alert]:
    """Alerts, newest first: the office sees all, an agency those it was alerted about."""

    def visible(alert: AlertRow) -> bool:
        return principal.is_office() or principal.agency_id in alert.agency_ids()

    page = await service.alerts.page(
        state=state, work_point_id=work_point_id, visible=visible, limit=limit, offset=offset
    )
    return Page(
        items=[alert_out(a, page.trace_ids.get(a.id)) for a in page.alerts],
        total=page.total,
        limit=limit,
        offset=offset,
    )


@router.post("/v1/alerts/{alert_id}/ack", responses=error_responses(409))
async def ack_alert(alert_id: uuid.UUID, service: ServiceDep, principal: PrincipalDep) -> Alert:
    """Acknowledge an alert: the agencies alerted, or the coordinating office."""

    def may_acknowledge(alert: AlertRow) -> None:
        require_agency_access(
            principal,
            alert.agency_ids(),
            f"the alert on work point {alert.code} ({alert.title})",
            code="not_your_alert",
        )

    try:
        alert = await service.alerts.acknowledge(
            alert_id, principal.client_id, may_acknowledge, person=principal.person
        )
    except AckRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return alert_out(alert)
