"""Progress tables: the registry read model, reports, state per work point and agency."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from duban_shared.db import utc_column as _ts
from duban_shared.inbox import InboxFields
from duban_shared.outbox import OutboxFields
from sqlalchemy import JSON, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class ProgressBase(SQLModel, registry=registry()):
    """Base of progress's tables."""


class WorkPointView(ProgressBase, table=True):
    """Read model of the registry's work point snapshots (never written by our API)."""

    __tablename__ = "work_point_view"

    id: str = Field(primary_key=True, max_length=120)
    plan_slug: str = Field(max_length=80)
    number: int
    title: str = Field(max_length=200)
    responsibilities: list[dict[str, Any]] = Field(sa_type=JSON, nullable=False)
    report_every_working_days: int
    grace_working_days: int
    deleted: bool = False
    registry_traceparent: str | None = Field(default=None, max_length=100)
    snapshot_at: datetime = _ts()

    def role_of(self, agency_id: uuid.UUID) -> str | None:
        """Return 'lead', 'co' or None for an agency."""
        for r in self.responsibilities:
            if r["agency_id"] == str(agency_id):
                return str(r["role"])
        return None


class StatusReport(ProgressBase, table=True):
    """Every status event ever applied: append-only, hash-chained per work point."""

    __tablename__ = "status_report"
    __table_args__ = (
        UniqueConstraint("work_point_id", "chain_seq", name="uq_status_report_chain"),
    )

    event_id: uuid.UUID = Field(primary_key=True)
    work_point_id: str = Field(max_length=120, index=True)
    agency_id: uuid.UUID
    status: str = Field(max_length=20)
    percent: int | None = None
    note: str | None = None
    occurred_at: datetime = _ts()
    received_at: datetime | None = _ts(nullable=True)
    stored_at: datetime = _ts()
    out_of_order: bool = False
    chain_seq: int = Field(description="1, 2, 3, ... within the work point's chain.")
    prev_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64)


class AgencyProgress(ProgressBase, table=True):
    """Latest report of one agency on one work point."""

    __tablename__ = "agency_progress"

    work_point_id: str = Field(primary_key=True, max_length=120)
    agency_id: uuid.UUID = Field(primary_key=True)
    status: str = Field(max_length=20)
    percent: int | None = None
    last_report_at: datetime = _ts()


class WorkPointState(ProgressBase, table=True):
    """What progress knows about a work point now, and when to look at it again."""

    __tablename__ = "work_point_state"

    work_point_id: str = Field(primary_key=True, max_length=120)
    tracking_since: datetime = _ts()
    last_lead_report_at: datetime | None = _ts(nullable=True)
    status: str | None = Field(default=None, max_length=20)
    percent: int | None = None
    stall_episode_id: uuid.UUID | None = None
    stall_reason: str | None = Field(default=None, max_length=20)
    stalled_since: datetime | None = _ts(nullable=True)
    next_check_at: datetime | None = _ts(nullable=True, index=True)
    last_traceparent: str | None = Field(default=None, max_length=100)

    def last_heard(self) -> datetime:
        """When the lead was last heard from (tracking start if never)."""
        return self.last_lead_report_at or self.tracking_since


class Inbox(InboxFields, ProgressBase, table=True):
    """Status events already applied."""

    __tablename__ = "inbox"


class OutboxMessage(OutboxFields, ProgressBase, table=True):
    """Stall transitions waiting to be relayed."""

    __tablename__ = "outbox"


class IngestedEvent(ProgressBase, table=True):
    """An event accepted over HTTP, so a replay gets the first answer and a reuse a 409."""

    __tablename__ = "ingested_event"

    event_id: uuid.UUID = Field(primary_key=True)
    agency_id: uuid.UUID
    body_sha256: str = Field(max_length=64)
    partition: int
    offset: int
    accepted_at: datetime = _ts()
