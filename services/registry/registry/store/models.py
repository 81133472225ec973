"""Registry tables: plans and their versions, sections, agencies (aliases, history), work points,
responsibilities, targets with shares, and stall policies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from duban_shared.audit import AuditFields
from duban_shared.db import utc_column
from duban_shared.outbox import OutboxFields
from sqlalchemy import JSON, CheckConstraint, Index, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class RegistryBase(SQLModel, registry=registry()):
    """Base of the registry's tables: its own metadata, apart from other services'."""


class Plan(RegistryBase, table=True):
    """An annual work plan as issued."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True, index=True)
    title: str = Field(max_length=200)
    issuer: str = Field(max_length=200)
    issued_on: date
    year: int
    city: str = Field(default="", max_length=40)
    version: int = 1
    source_sha256: str = Field(max_length=64)
    imported_at: datetime = utc_column()
    due_on: date = Field(description="When work points are due unless one says otherwise.")
    coordinating_agency_id: uuid.UUID | None = Field(default=None, foreign_key="agency.id")
    # Stall policy defaults (working days; tolerance in percentage points).
    report_every_working_days: int = 10
    grace_working_days: int = 3
    warn_before_due_working_days: int = 10
    pace_tolerance_pct: float = 10.0
    flatline_reports: int = 3


class PlanVersion(RegistryBase, table=True):
    """One imported text of a plan, with what it changed; the history of a plan."""

    __tablename__ = "plan_version"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    version: int
    source_sha256: str = Field(max_length=64)
    source_text: str
    diff: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    applied_at: datetime = utc_column()


class Section(RegistryBase, table=True):
    """A numbered section of a plan (一、二、...)."""

    __table_args__ = (UniqueConstraint("plan_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    number: int
    title: str = Field(max_length=200)


class Agency(RegistryBase, table=True):
    """A government body that can be held responsible for work points."""

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=120, unique=True, index=True)
    name_key: str = Field(max_length=120, index=True)
    kind: str = Field(max_length=40)
    merged_into_id: uuid.UUID | None = Field(default=None, foreign_key="agency.id")


class AgencyAlias(RegistryBase, table=True):
    """Another name of an agency (市政数局, a former name, a merged agency's name)."""

    __tablename__ = "agency_alias"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    alias: str = Field(max_length=120, unique=True)
    alias_key: str = Field(max_length=120, index=True)


class AgencyHistory(RegistryBase, table=True):
    """What happened to an agency: created, renamed, alias added, merged."""

    __tablename__ = "agency_history"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    action: str = Field(max_length=20)
    old_name: str | None = Field(default=None, max_length=120)
    new_name: str | None = Field(default=None, max_length=120)
    other_agency_id: uuid.UUID | None = None
    at: datetime = utc_column()


class WorkPoint(RegistryBase, table=True):
    """A work point (工作要点); id is '<plan slug>/<code>'.

    `code` is its stable code in the plan ('35' where the plan numbers continuously, '3.2' for
    item 2 of section 3), unique in the plan; `number` is its ordinal, 1..N in reading order,
    which is what anything listing work points orders by (never the code's text).
    """

    __table_args__ = (UniqueConstraint("plan_id", "code", name="uq_workpoint_plan_code"),)

    id: str = Field(primary_key=True, max_length=120)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    number: int
    code: str = Field(max_length=19)
    section_number: int
    title: str = Field(max_length=200)
    text: str
    lead_inferred: bool = False
    with_other_units: bool = False
    due_on: date | None = None
    # Stall policy overrides; None means the plan's default.
    report_every_working_days: int | None = None
    grace_working_days: int | None = None
    warn_before_due_working_days: int | None = None
    pace_tolerance_pct: float | None = None
    flatline_reports: int | None = None
    revision: int = 1
    updated_at: datetime = utc_column()


class Responsibility(RegistryBase, table=True):
    """An agency's role on a work point: lead (牵头) or co-responsible."""

    __table_args__ = (UniqueConstraint("work_point_id", "agency_id"),)

    id: int | None = Field(default=None, primary_key=True)
    work_point_id: str = Field(foreign_key="workpoint.id", index=True, max_length=120)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    role: str = Field(max_length=8)
    position: int


class Target(RegistryBase, table=True):
    """A quantitative target (KPI) of a work point, e.g. 5G base stations >= 8000 座."""

    __table_args__ = (UniqueConstraint("work_point_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    work_point_id: str = Field(foreign_key="workpoint.id", index=True, max_length=120)
    position: int
    metric: str = Field(max_length=120)
    value: float
    unit: str = Field(max_length=20)
    comparator: str = Field(max_length=20)
    source: str = Field(max_length=400)


class TargetShare(RegistryBase, table=True):
    """The part of a target one agency answers for (shares of a target add up to 1)."""

    __tablename__ = "target_share"
    __table_args__ = (UniqueConstraint("target_id", "agency_id"),)

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="target.id", index=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    share: float


class OutboxMessage(OutboxFields, RegistryBase, table=True):
    """Registry events waiting to be relayed to Kafka."""

    __tablename__ = "outbox"


class AuditLog(AuditFields, RegistryBase, table=True):
    """The registry's audit trail: office actions on plans, work points, agencies, clients and
    extension requests (see duban_shared.audit)."""

    __tablename__ = "audit_log"


class ExtensionRequest(RegistryBase, table=True):
    """A lead agency's request (延期申请) for a later due date of a work point, and the office's
    decision: requested -> approved | rejected | withdrawn. At most one is open per work point
    (a partial unique index on PostgreSQL and SQLite)."""

    __tablename__ = "extension_request"
    __table_args__ = (
        CheckConstraint(
            "state IN ('requested', 'approved', 'rejected', 'withdrawn')",
            name="ck_extension_request_state",
        ),
        Index(
            "uq_extension_request_open",
            "work_point_id",
            unique=True,
            postgresql_where=text("state = 'requested'"),
            sqlite_where=text("state = 'requested'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    work_point_id: str = Field(foreign_key="workpoint.id", index=True, max_length=120)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    state: str = Field(max_length=12)
    requested_due_on: date
    previous_due_on: date = Field(description="The due date in force when it was requested.")
    reason: str = Field(max_length=2000)
    requested_by: str = Field(max_length=200, description="The client id that asked.")
    requested_at: datetime = utc_column()
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = utc_column(nullable=True)
    decision_note: str | None = Field(default=None, max_length=2000)
