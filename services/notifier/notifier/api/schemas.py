"""Request and response bodies of the notifier's API (`Alert` is the shared contract)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from duban_shared.contracts import Alert
from duban_shared.inputs import Line
from duban_shared.kafka import trace_id_of
from pydantic import BaseModel, EmailStr, Field

from notifier.domain.contacts import MAX_PER_AGENCY
from notifier.store.models import Alert as AlertRow
from notifier.store.models import Contact, NotificationLog


def alert_out(alert: AlertRow, trace_id: str | None = None) -> Alert:
    """The contract's view of a stored alert."""
    return Alert(
        id=alert.id,
        episode_id=alert.episode_id,
        work_point_id=alert.work_point_id,
        number=alert.number,
        code=alert.code,
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


class ContactBody(BaseModel):
    """One way to reach an agency."""

    channel: Literal["email", "sms", "wecom"]
    address: Line = Field(
        min_length=1,
        max_length=320,
        description="An email address, a mobile number (13800138000 or +8613800138000), or "
        "the name of a configured WeCom robot.",
    )
    label: Line | None = Field(default=None, max_length=60, examples=["办公室"])


class ContactOut(ContactBody):
    """A stored contact: numbers in E.164; `failed` once a provider refused it for good."""

    status: str
    failed_reason: str | None


def contact_out(row: Contact) -> ContactOut:
    """The API's view of a stored contact."""
    return ContactOut(
        channel=row.channel,
        address=row.address,
        label=row.label,
        status=row.status,
        failed_reason=row.failed_reason,
    )


class ContactsBody(BaseModel):
    """An agency's contacts, in the order they are tried (the next one when one fails)."""

    contacts: list[ContactBody] = Field(max_length=MAX_PER_AGENCY)


class EmailContacts(BaseModel):
    """An agency's email addresses, in the order they are tried."""

    addresses: list[EmailStr] = Field(max_length=20)


class ImportOut(BaseModel):
    """What an import replaced: agencies named in the file get exactly the file's contacts."""

    agencies: int
    contacts: int


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


def notification_out(row: NotificationLog) -> NotificationOut:
    """The API's view of a notification log entry."""
    return NotificationOut.model_validate(
        {**row.model_dump(), "trace_id": trace_id_of(row.traceparent)}
    )
