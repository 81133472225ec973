"""Notifier HTTP API: alerts and their acknowledgement; agency contacts and the notification log
(office tokens only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from duban_shared.api import ApiError, Limit, Offset, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import Principal, PrincipalDep, require_office
from duban_shared.events import WorkPointId
from duban_shared.kafka import trace_id_of
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, EmailStr, Field
from sqlmodel import col, select

from notifier import api_alerts, api_contacts
from notifier.contacts import ContactProblem, published_agency
from notifier.models import Contact, NotificationLog
from notifier.store import replace_email_contacts

router = APIRouter()
router.include_router(api_alerts.router)
router.include_router(api_contacts.router)


def _office(principal: PrincipalDep) -> Principal:
    """Contacts and the log are the coordinating office's (coordinator or operator)."""
    require_office(principal)
    return principal


OfficeDep = Annotated[Principal, Depends(_office)]


class EmailContacts(BaseModel):
    """An agency's email addresses, in the order they are tried."""

    addresses: list[EmailStr] = Field(max_length=20)


class NotificationOut(BaseModel):
    """One entry of the notification log (addresses are shown to the office only).

    The entry answers an operator's "why did this agency get (or not get) this message?":
    `status` (pending, held for quiet hours, sending, sent, failed, superseded when the stall
    recovered first, no_contact), `next_attempt_at` when it waits, `last_error` when a channel
    refused it, and `trace_id`, the trace that planned it (the stall transition or escalation
    step), to open in the trace viewer or on the board's `/board/traces/{trace_id}`.
    """

    id: int
    alert_id: uuid.UUID | None
    work_point_id: str
    agency_id: uuid.UUID
    channel: str
    recipient: str
    role: str
    event: str
    step: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    trace_id: str | None = Field(
        description="The trace of the transition or escalation step that planned the message "
        "(W3C trace id, 32 hex), from the traceparent the entry kept."
    )


def _notification_out(row: NotificationLog) -> NotificationOut:
    return NotificationOut.model_validate(
        {**row.model_dump(), "trace_id": trace_id_of(row.traceparent)}
    )


@router.put("/v1/agencies/{agency_id}/contacts/email", responses=error_responses(409))
async def put_email_contacts(
    agency_id: uuid.UUID,
    contacts: EmailContacts,
    request: Request,
    session: SessionDep,
    _office: OfficeDep,
) -> EmailContacts:
    """Replace an agency's email contacts; the agency must be one the registry published."""
    now = request.app.state.service.clock.now()
    async with session.begin():
        try:
            await published_agency(session, agency_id)
        except ContactProblem as problem:
            status = api_contacts.STATUS.get(problem.code, 422)
            raise ApiError(status, problem.code, problem.message, problem.details) from problem
        await replace_email_contacts(session, agency_id, [str(a) for a in contacts.addresses], now)
    return contacts


@router.get("/v1/agencies/{agency_id}/contacts/email")
async def get_email_contacts(
    agency_id: uuid.UUID, session: SessionDep, _office: OfficeDep
) -> EmailContacts:
    """Show an agency's email contacts."""
    rows = await session.exec(
        select(Contact)
        .where(Contact.agency_id == agency_id, Contact.channel == "email")
        .order_by(col(Contact.position), col(Contact.id))
    )
    return EmailContacts(addresses=[r.address for r in rows.all()])


@router.get("/v1/notifications")
async def notifications(
    session: SessionDep,
    _office: OfficeDep,
    work_point_id: Annotated[WorkPointId | None, Query()] = None,
    alert_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[NotificationOut]:
    """List the newest notification log entries, optionally for one work point or alert."""
    query = (
        select(NotificationLog).order_by(col(NotificationLog.id).desc()).limit(limit).offset(offset)
    )
    if work_point_id:
        query = query.where(NotificationLog.work_point_id == work_point_id)
    if alert_id:
        query = query.where(NotificationLog.alert_id == alert_id)
    return [_notification_out(r) for r in (await session.exec(query)).all()]
