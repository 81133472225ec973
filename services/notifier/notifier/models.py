"""Notifier tables: contacts (the only place addresses live), inbox, notification log."""

from __future__ import annotations

import uuid
from datetime import datetime

from duban_shared.db import utc_column
from duban_shared.inbox import InboxFields
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class NotifierBase(SQLModel, registry=registry()):
    """Base of the notifier's tables."""


class Contact(NotifierBase, table=True):
    """A way to reach an agency."""

    __table_args__ = (UniqueConstraint("agency_id", "channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: uuid.UUID = Field(index=True)
    channel: str = Field(max_length=16)
    address: str = Field(max_length=320)
    created_at: datetime = utc_column()


class NotificationLog(NotifierBase, table=True):
    """One intended delivery: at most one send per (transition, channel, recipient)."""

    __tablename__ = "notification_log"
    __table_args__ = (UniqueConstraint("transition_event_id", "channel", "recipient"),)

    id: int | None = Field(default=None, primary_key=True)
    transition_event_id: uuid.UUID = Field(index=True)
    episode_id: uuid.UUID = Field(index=True)
    work_point_id: str = Field(max_length=120, index=True)
    agency_id: uuid.UUID
    channel: str = Field(max_length=16)
    recipient: str = Field(max_length=320)
    status: str = Field(max_length=16)  # pending, sending, sent, failed, no_contact
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = utc_column()
    sent_at: datetime | None = utc_column(nullable=True)


class Inbox(InboxFields, NotifierBase, table=True):
    """Stall transitions already handled."""

    __tablename__ = "inbox"


class AgencyView(NotifierBase, table=True):
    """Read model of the registry's agencies (names only: no personal data travels)."""

    __tablename__ = "agency_view"

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=120)
    kind: str = Field(max_length=40)
    merged_into_id: uuid.UUID | None = None
    snapshot_at: datetime = utc_column()
