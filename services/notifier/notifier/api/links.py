"""Acknowledgement links from messages: `/a/{token}` opens a confirmation page, and only its
POST acknowledges, so mail scanners that prefetch links cannot acknowledge on someone's
behalf."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from notifier.api import ack_page as pages
from notifier.api.deps import ServiceDep
from notifier.use_cases.alerts import LinkRefused

router = APIRouter(tags=["alerts"])


@router.get("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
async def ack_page(token: str, service: ServiceDep) -> HTMLResponse:
    """The page a link opens: what the alert is, and one button while it can be acknowledged."""
    try:
        alert = await service.alerts.link(token)
    except LinkRefused as exc:
        return pages.refused(exc.refusal, exc.alert)
    return pages.confirm(alert)


@router.post("/a/{token}", response_class=HTMLResponse, include_in_schema=False)
async def ack_by_link(token: str, service: ServiceDep) -> HTMLResponse:
    """Acknowledge through a signed, expiring, single-use link."""
    try:
        alert, by_this_link = await service.alerts.acknowledge_by_link(token)
    except LinkRefused as exc:
        return pages.refused(exc.refusal, exc.alert)
    return pages.acknowledged(alert, by_this_link)
