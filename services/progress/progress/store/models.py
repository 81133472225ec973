"""Progress tables: the registry read model, reports, state per work point and agency."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from duban_shared.audit import AuditFields
from duban_shared.db import utc_column as _ts
from duban_shared.inbox import InboxFields
from duban_shared.outbox import OutboxFields
from sqlalchemy import JSON, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class ProgressBase(SQLModel, registry=registry()):
    """Base of progress's tables."""


class WorkPointView(ProgressBase, table=True):
    """Read model of the registry's work point snapshots (never written by our API).

    `code` ('35', '3.2') is how people and paths name the work point (its id is
    '<plan_slug>/<code>'); `number` is its ordinal in the plan, what lists are ordered by.
    """

    __tablename__ = "work_point_view"

    id: str = Field(primary_key=True, max_length=120)
    plan_slug: str = Field(max_length=80)
    number: int
    code: str = Field(max_length=19)
    title: str = Field(max_length=200)
    responsibilities: list[dict[str, Any]] = Field(sa_type=JSON, nullable=False)
    section: int = 0
    plan_title: str = Field(default="", max_length=200)
    section_title: str = Field(default="", max_length=200)
    report_every_working_days: int
    grace_working_days: int
    warn_before_due_working_days: int = 10
    pace_tolerance_pct: float = 10.0
    flatline_reports: int = 3
    starts_on: date | None = None
    due_on: date | None = None
    targets: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON, nullable=False)
    coordinating_agency_id: uuid.UUID | None = None
    deleted: bool = False
    registry_traceparent: str | None = Field(default=None, max_length=100)
    snapshot_at: datetime = _ts()

    def role_of(self, agency_id: uuid.UUID) -> str | None:
        """Return 'lead', 'co' or None for an agency."""
        for r in self.responsibilities:
            if r["agency_id"] == str(agency_id):
                return str(r["role"])
        return None

    def agency_ids(self, role: str | None = None) -> list[uuid.UUID]:
        """The responsible agencies (of one role, if given)."""
        return [
            uuid.UUID(r["agency_id"])
            for r in self.responsibilities
            if role is None or r["role"] == role
        ]


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
    kpis: dict[str, float] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    note: str | None = None
    evidence: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    occurred_at: datetime = _ts()
    received_at: datetime | None = _ts(nullable=True)
    stored_at: datetime = _ts()
    out_of_order: bool = False
    late: bool = Field(default=False, description="Reported long after the fact.")
    delay_working_days: int | None = Field(
        default=None,
        description="Working days past the agency's report period since its previous report on "
        "this work point (0 when on time; null for an out-of-order report).",
    )
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
    kpis: dict[str, float] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    last_report_at: datetime = _ts()


class WorkPointState(ProgressBase, table=True):
    """What progress knows about a work point now, and when to look at it again."""

    __tablename__ = "work_point_state"

    work_point_id: str = Field(primary_key=True, max_length=120)
    tracking_since: datetime = _ts()
    last_lead_report_at: datetime | None = _ts(nullable=True)
    report_seq: int = Field(default=0, description="The last chain_seq of its report history.")
    chain_head: str | None = Field(
        default=None, max_length=64, description="The row_hash of that last report."
    )
    status: str | None = Field(default=None, max_length=20)
    percent: int | None = None
    kpis: dict[str, float] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    recent_percents: list[int | None] = Field(
        default_factory=list, sa_type=JSON, nullable=False, description="The leads' last reports."
    )
    level: str = Field(default="green", max_length=10)
    reasons: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    expected_percent: float | None = None
    judged_at: datetime | None = _ts(nullable=True)
    stall_episode_id: uuid.UUID | None = None
    stalled_since: datetime | None = _ts(nullable=True)
    closure: str | None = Field(default=None, max_length=12, description="in_review or closed.")
    closure_requested_at: datetime | None = _ts(nullable=True)
    closed_at: datetime | None = _ts(nullable=True)
    next_check_at: datetime | None = _ts(nullable=True, index=True)
    provisional_years: list[int] | None = Field(
        default=None,
        sa_type=JSON(none_as_null=True),  # None is SQL NULL, so `IS NOT NULL` finds them
        nullable=True,
        description="Years the last judgement counted on a provisional calendar (none: null).",
    )
    last_traceparent: str | None = Field(default=None, max_length=100)

    @property
    def open_level(self) -> str | None:
        """The colour of the open episode (the current one), None without an episode."""
        return self.level if self.stall_episode_id else None

    @property
    def stall_reason(self) -> str | None:
        """The open episode's headline reason (the most severe), None without an episode."""
        return self.reasons[0] if self.stall_episode_id and self.reasons else None

    def last_heard(self) -> datetime:
        """When the lead was last heard from (tracking start if never)."""
        return self.last_lead_report_at or self.tracking_since


class TransitionRecord(ProgressBase, table=True):
    """Every stall transition emitted, for the work point's timeline (append-only)."""

    __tablename__ = "stall_transition"

    event_id: uuid.UUID = Field(primary_key=True)
    work_point_id: str = Field(max_length=120, index=True)
    episode_id: uuid.UUID | None = None
    kind: str = Field(max_length=20)
    level: str = Field(max_length=10)
    previous_level: str | None = Field(default=None, max_length=10)
    reasons: list[str] = Field(default_factory=list, sa_type=JSON, nullable=False)
    triggered_by_event_id: uuid.UUID | None = None
    after_report_seq: int = Field(default=0, description="Reports in the history before it.")
    occurred_at: datetime = _ts()


class ClosureDecision(ProgressBase, table=True):
    """The coordinating office's decisions on closure requests (append-only)."""

    __tablename__ = "closure_decision"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    work_point_id: str = Field(max_length=120, index=True)
    decision: str = Field(max_length=10, description="approved or rejected")
    reason: str | None = None
    decided_by: str = Field(max_length=120, description="The office client that decided.")
    after_report_seq: int = Field(default=0, description="Reports in the history before it.")
    decided_at: datetime = _ts()


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
    late: bool = False
    accepted_at: datetime = _ts()


class AuditLog(AuditFields, ProgressBase, table=True):
    """Progress's audit trail: the office's closure decisions (see duban_shared.audit)."""

    __tablename__ = "audit_log"
