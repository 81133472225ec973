"""Progress tables: the registry read model, reports, state per work point and agency."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from duban_shared.audit import AuditFields
from duban_shared.db import utc_column as _ts
from duban_shared.inbox import InboxFields
from duban_shared.offsets import ConsumerOffsetFields
from duban_shared.outbox import OutboxFields
from sqlalchemy import JSON, LargeBinary, UniqueConstraint
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


class ReportFields(SQLModel):
    """The columns of a stored status report (in the history, or archived with its plan year)."""

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
    reported_by: str | None = Field(
        default=None,
        max_length=200,
        description="The person who filed it (a personal account's username); null when an "
        "agency's system reported.",
    )


class StatusReport(ReportFields, ProgressBase, table=True):
    """Every status event ever applied: append-only, hash-chained per work point."""

    __tablename__ = "status_report"
    __table_args__ = (
        UniqueConstraint("work_point_id", "chain_seq", name="uq_status_report_chain"),
    )


class ArchivedReport(ReportFields, ProgressBase, table=True):
    """A status report of an archived plan year, moved out of `status_report` as it was (its
    hash and links unchanged, so its chain still verifies); never pruned either."""

    __tablename__ = "status_report_archive"
    __table_args__ = (
        UniqueConstraint("work_point_id", "chain_seq", name="uq_status_report_archive_chain"),
    )

    plan_year: int = Field(index=True, description="The year of the work point's plan.")
    archived_at: datetime = _ts()


class AgencyProgress(ProgressBase, table=True):
    """Latest report of one agency on one work point."""

    __tablename__ = "agency_progress"

    work_point_id: str = Field(primary_key=True, max_length=120)
    agency_id: uuid.UUID = Field(primary_key=True)
    status: str = Field(max_length=20)
    percent: int | None = None
    kpis: dict[str, float] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    last_report_at: datetime = _ts()


class EpisodeReading:
    """What the domain reads off a work point's state about its open stall episode; shared by
    the table (`WorkPointState`) and the plain rows of the consumer and the sweeper."""

    __slots__ = ()
    if TYPE_CHECKING:
        level: str
        reasons: list[str]
        stall_episode_id: uuid.UUID | None
        last_lead_report_at: datetime | None
        tracking_since: datetime

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


class WorkPointState(EpisodeReading, ProgressBase, table=True):
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


class SupervisionNotice(ProgressBase, table=True):
    """A supervision notice (督办单) the office issued on a work point, and its reply.

    Numbered per year of issue (督办〔2024〕7号); `reply_due_at` is when a reply becomes late
    (the end of `reply_due_on`, a working day). The work point's facts are copied at issue, so
    the printed notice stays what was sent.
    """

    __tablename__ = "supervision_notice"
    __table_args__ = (UniqueConstraint("year", "seq", name="uq_supervision_notice_number"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    year: int
    seq: int
    number: str = Field(max_length=40)
    work_point_id: str = Field(max_length=120, index=True)
    plan_slug: str = Field(max_length=80, index=True)
    code: str = Field(max_length=19)
    title: str = Field(max_length=200)
    lead_agencies: list[dict[str, Any]] = Field(sa_type=JSON, nullable=False)
    coordinating_agency_id: uuid.UUID | None = None
    reason: str
    required_action: str
    reply_within_working_days: int
    status: str = Field(max_length=12, index=True)
    issued_at: datetime = _ts()
    issued_by: str = Field(max_length=120)
    reply_due_on: date
    reply_due_at: datetime = _ts(index=True)
    reply_text: str | None = None
    evidence_url: str | None = Field(default=None, max_length=500)
    replied_at: datetime | None = _ts(nullable=True)
    replied_by: str | None = Field(default=None, max_length=120)
    updated_at: datetime = _ts()

    def lead_agency_ids(self) -> list[uuid.UUID]:
        """The lead agencies that must reply."""
        return [uuid.UUID(a["agency_id"]) for a in self.lead_agencies]


class NoticeSequence(ProgressBase, table=True):
    """The last notice number given in a year (locked while a notice is numbered)."""

    __tablename__ = "supervision_notice_sequence"

    year: int = Field(primary_key=True)
    last: int = 0


class NoticeHistory(ProgressBase, table=True):
    """Every state change of a notice: who, when, a note (append-only)."""

    __tablename__ = "supervision_notice_history"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    notice_id: uuid.UUID = Field(index=True)
    status: str = Field(max_length=12)
    actor: str = Field(max_length=120, description="The client that acted, or `sweeper`.")
    note: str | None = None
    at: datetime = _ts()


class Inbox(InboxFields, ProgressBase, table=True):
    """Status events already applied."""

    __tablename__ = "inbox"


class ConsumerOffset(ConsumerOffsetFields, ProgressBase, table=True):
    """Where each consumer group of this service goes on, per partition, as this database
    knows it (duban_shared.offsets): after a restore the consumers seek back to it."""

    __tablename__ = "consumer_offset"


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
    accepted_at: datetime = _ts(index=True)  # retention prunes by it


class Circular(ProgressBase, table=True):
    """A circular (通报) of a plan for a period, with its files; a period may have several
    versions (on demand), and at most one scheduled circular (`scheduled_key`)."""

    __tablename__ = "circular"
    __table_args__ = (
        UniqueConstraint("plan_slug", "period", "version", name="uq_circular_version"),
        UniqueConstraint("year", "seq", name="uq_circular_number"),
        UniqueConstraint("scheduled_key", name="uq_circular_scheduled"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    plan_slug: str = Field(max_length=80, index=True)
    kind: str = Field(max_length=10, description="weekly or monthly")
    period: str = Field(max_length=10, description="2024-W36 or 2024-09")
    version: int = Field(description="1, 2, ... within the plan and period.")
    year: int
    seq: int = Field(description="The circular's place in its year: the n of 〔2024〕n号.")
    number: str = Field(max_length=60, description="The 文号, e.g. 肇数督通〔2024〕3号.")
    trigger: str = Field(max_length=10, description="scheduled or on_demand")
    scheduled_key: str | None = Field(
        default=None, max_length=100, description="plan:kind:period of a scheduled circular."
    )
    created_by: str | None = Field(default=None, max_length=120)
    created_at: datetime = _ts()
    summary: dict[str, Any] = Field(sa_type=JSON, nullable=False)
    docx: bytes = Field(sa_type=LargeBinary, nullable=False)
    xlsx: bytes = Field(sa_type=LargeBinary, nullable=False)


class AuditLog(AuditFields, ProgressBase, table=True):
    """Progress's audit trail: the office's closure decisions (see duban_shared.audit)."""

    __tablename__ = "audit_log"


class AlertAck(ProgressBase, table=True):
    """The notifier's stall alerts as its AlertTransition events tell them (duban.alerts.v1):
    one row per alert, for the circulars' acknowledgement times. Written only by the alert
    consumer, monotonically (`progress.domain.acks.merge`)."""

    __tablename__ = "alert_ack"

    alert_id: uuid.UUID = Field(primary_key=True)
    plan_slug: str = Field(max_length=80, index=True)
    work_point_id: str = Field(max_length=120, index=True)
    work_point_code: str = Field(max_length=19)
    lead_agency_ids: list[str] = Field(sa_type=JSON, nullable=False)
    state: str = Field(max_length=14, description="fired, acknowledged or resolved")
    fired_at: datetime = _ts()
    acknowledged_at: datetime | None = _ts(nullable=True)
    acknowledged_via: str | None = Field(default=None, max_length=8, description="api or link")
    acknowledged_by: str | None = Field(default=None, max_length=160)
    acknowledged_person: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()
