"""Notifier tables: contacts (the only place addresses live), inbox, notification log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from duban_shared.audit import AuditFields
from duban_shared.db import utc_column
from duban_shared.inbox import InboxFields
from duban_shared.offsets import ConsumerOffsetFields
from duban_shared.outbox import OutboxFields
from sqlalchemy import JSON, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class NotifierBase(SQLModel, registry=registry()):
    """Base of the notifier's tables."""


class Contact(NotifierBase, table=True):
    """A way to reach an agency; `failed` once a provider refused it for good."""

    __table_args__ = (UniqueConstraint("agency_id", "channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: uuid.UUID = Field(index=True)
    channel: str = Field(max_length=16, description="email, sms or wecom")
    address: str = Field(max_length=320, description="email, E.164 number, or robot name")
    label: str | None = Field(default=None, max_length=60)
    position: int = Field(default=0, description="The order contacts are tried in.")
    status: str = Field(default="active", max_length=10, description="active or failed")
    failed_reason: str | None = Field(default=None, max_length=500)
    failed_at: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()


class NotificationLog(NotifierBase, table=True):
    """One intended delivery: at most one send per (alert, step, channel, recipient).

    `transition_event_id` is the delivery's cause: a uuid5 of the alert and the step occurrence
    (see notifier.domain.delivery.cause_id), so the unique constraint is that promise.
    """

    __tablename__ = "notification_log"
    __table_args__ = (UniqueConstraint("transition_event_id", "channel", "recipient"),)

    id: int | None = Field(default=None, primary_key=True)
    transition_event_id: uuid.UUID = Field(index=True)
    episode_id: uuid.UUID = Field(index=True)
    alert_id: uuid.UUID | None = Field(default=None, index=True)
    step: str = Field(default="lead", max_length=80)
    role: str = Field(default="lead", max_length=10, description="lead, co or office")
    event: str = Field(default="fired", max_length=16)
    contact_id: int | None = None
    urgent: bool = False
    next_attempt_at: datetime | None = utc_column(nullable=True, index=True)
    lease_until: datetime | None = utc_column(nullable=True)
    error_code: str | None = Field(default=None, max_length=40)
    provider_id: str | None = Field(default=None, max_length=120)
    message_ref: str | None = Field(default=None, max_length=40, description="Digest id.")
    traceparent: str | None = Field(default=None, max_length=100)
    work_point_id: str = Field(max_length=120, index=True)
    agency_id: uuid.UUID
    channel: str = Field(max_length=16)
    recipient: str = Field(max_length=320)
    status: str = Field(max_length=16)  # pending held sending sent failed superseded no_contact
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = utc_column(index=True)  # retention prunes by it
    sent_at: datetime | None = utc_column(nullable=True)


class DeliveryRecord(NotifierBase, table=True):
    """A delivery known as sent from the deliveries topic (duban.deliveries.v1), read at start-up
    before anything is sent: after a restore it stands for a send the backup does not hold, and
    the dispatcher marks a row with the same key sent instead of sending it again."""

    __tablename__ = "delivery_record"

    delivery_key: str = Field(primary_key=True, max_length=32)
    cause_id: uuid.UUID
    channel: str = Field(max_length=16)
    message_ref: str | None = Field(default=None, max_length=80)
    provider_id: str | None = Field(default=None, max_length=120)
    sent_at: datetime = utc_column(index=True)  # retention prunes by it


class Alert(NotifierBase, table=True):
    """One stall episode of one work point, as the people alerted see it.

    firing -> acknowledged -> resolved (recovered, or closed with the work point).

    A supervision notice (督办单) has an alert of its own (`kind` notice, `episode_id` the
    notice's id): issued -> firing once overdue (escalated by the policy's notice steps) ->
    resolved (replied, closed or withdrawn). The alert API and board list stall alerts only.
    """

    __tablename__ = "alert"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    episode_id: uuid.UUID = Field(unique=True)
    work_point_id: str = Field(max_length=120, index=True)
    plan_slug: str | None = Field(default=None, max_length=80)
    number: int  # the work point's ordinal in its plan
    code: str = Field(max_length=19)  # the work point's code, as messages and the API name it
    title: str = Field(max_length=200)
    level: str = Field(max_length=10)
    previous_level: str | None = Field(default=None, max_length=10)
    reasons: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    lead_agencies: list[dict[str, Any]] = Field(sa_type=JSON, nullable=False)
    co_agencies: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON, nullable=False)
    coordinating_agency_id: uuid.UUID | None = None
    state: str = Field(default="firing", max_length=14, index=True)
    fired_at: datetime = utc_column()
    updated_at: datetime = utc_column()
    acknowledged_at: datetime | None = utc_column(nullable=True)
    acknowledged_by: str | None = Field(default=None, max_length=160)
    resolved_at: datetime | None = utc_column(nullable=True)
    resolution: str | None = Field(default=None, max_length=10, description="recovered or closed")
    silent_working_days: int | None = None
    note: str | None = None
    urgent: bool = False
    next_step_at: datetime | None = utc_column(nullable=True, index=True)
    steps_done: dict[str, list[str]] = Field(
        default_factory=dict, sa_type=JSON, nullable=False, description="step -> ISO times"
    )
    kind: str = Field(
        default="stall",
        max_length=8,
        description="stall (an episode) or notice (a supervision notice's reply, escalated "
        "once overdue through the policy's notice_steps)",
    )
    notice_number: str | None = Field(default=None, max_length=40, description="督办〔2024〕7号")
    reply_due: datetime | None = utc_column(nullable=True)

    def agency_ids(self) -> set[uuid.UUID]:
        """The agencies alerted: leads and co-agencies."""
        return {uuid.UUID(a["agency_id"]) for a in [*self.lead_agencies, *self.co_agencies]}


class AckCode(NotifierBase, table=True):
    """A one-click acknowledgement link handed to one agency about one alert."""

    __tablename__ = "ack_code"

    code: str = Field(primary_key=True, max_length=16)
    alert_id: uuid.UUID = Field(index=True)
    agency_id: uuid.UUID
    created_at: datetime = utc_column()
    expires_at: datetime = utc_column(index=True)  # retention prunes by it
    used_at: datetime | None = utc_column(nullable=True)


class Inbox(InboxFields, NotifierBase, table=True):
    """Stall transitions already handled."""

    __tablename__ = "inbox"


class ConsumerOffset(ConsumerOffsetFields, NotifierBase, table=True):
    """Where each consumer group of this service goes on, per partition, as this database
    knows it (duban_shared.offsets): after a restore the consumers seek back to it."""

    __tablename__ = "consumer_offset"


class AgencyView(NotifierBase, table=True):
    """Read model of the registry's agencies (names only: no personal data travels)."""

    __tablename__ = "agency_view"

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=120)
    kind: str = Field(max_length=40)
    merged_into_id: uuid.UUID | None = None
    snapshot_at: datetime = utc_column()


class AuditLog(AuditFields, NotifierBase, table=True):
    """The notifier's audit trail: the office's contact changes (see duban_shared.audit)."""

    __tablename__ = "audit_log"


class OutboxMessage(OutboxFields, NotifierBase, table=True):
    """Alert transitions (duban.alerts.v1) and sent deliveries (duban.deliveries.v1) waiting
    to be relayed, written with the alert's state change or the delivery's record."""

    __tablename__ = "outbox"
