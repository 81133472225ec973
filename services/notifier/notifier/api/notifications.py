"""The notification log over HTTP (the coordinating office only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from duban_shared.api import Limit, Offset
from duban_shared.events import WorkPointId
from fastapi import APIRouter, Query

from notifier.api.deps import OfficeDep, ServiceDep
from notifier.api.schemas import NotificationOut, notification_out

router = APIRouter()


@router.get("/v1/notifications")
async def notifications(
    service: ServiceDep,
    _office: OfficeDep,
    work_point_id: Annotated[WorkPointId | None, Query()] = None,
    alert_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[NotificationOut]:
    """List the newest notification log entries, optionally for one work point or alert."""
    rows = await service.notifications.newest(
        work_point_id=work_point_id, alert_id=alert_id, limit=limit, offset=offset
    )
    return [notification_out(r) for r in rows]
