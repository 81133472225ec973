"""Event contracts carried on Kafka; the one definition every service imports.

Every event has an `event_id` (UUID, the idempotency key), a `schema_version` and an aware UTC
`occurred_at`. Trace context travels in Kafka headers, not in the payload.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1

WorkPointId = Annotated[
    str,
    Field(
        min_length=3,
        max_length=120,
        pattern=r"^[a-z0-9][a-z0-9-]*/[0-9]{1,4}$",
        description="Plan slug and work point number, e.g. 'zhaoqing-digital-2024/35'.",
        examples=["zhaoqing-digital-2024/35"],
    ),
]


def work_point_id(plan_slug: str, number: int) -> str:
    """Build the stable id of a work point from its plan and number."""
    return f"{plan_slug}/{number}"


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(description="Idempotency key; a redelivery keeps the same id.")
    schema_version: int = SCHEMA_VERSION
    occurred_at: AwareDatetime

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_bytes(self) -> bytes:
        """Serialise as UTF-8 JSON for a Kafka message value."""
        return self.model_dump_json().encode()


class ReportStatus(StrEnum):
    """What an agency says about its part of a work point."""

    NOT_STARTED = "not_started"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BLOCKED = "blocked"
    DONE = "done"


MetricName = Annotated[str, Field(min_length=1, max_length=100)]
MetricValue = Annotated[float, Field(allow_inf_nan=False)]
EvidenceUrl = Annotated[
    str,
    Field(
        max_length=500,
        pattern=r"^https?://[^\s]+$",
        description="A link to evidence: a document, a photo, a system page (http or https).",
    ),
]


class StatusEvent(Event):
    """An agency's status report on one work point (topic duban.status.v1, key work_point_id)."""

    work_point_id: WorkPointId
    agency_id: uuid.UUID = Field(description="The reporting agency (lead or co-agency).")
    status: ReportStatus
    percent: int | None = Field(default=None, ge=0, le=100)
    kpis: dict[MetricName, MetricValue] = Field(
        default_factory=dict,
        max_length=20,
        description="KPI actuals, metric -> value; metrics are the work point's target metrics.",
        examples=[{"林分优化提升": 8.2}],
    )
    note: str | None = Field(default=None, max_length=2000)
    evidence: list[EvidenceUrl] = Field(default_factory=list, max_length=10)
    received_at: AwareDatetime | None = Field(
        default=None, description="When ingestion accepted it; absent when produced directly."
    )


class AgencyRef(BaseModel):
    """An agency as other services see it: id and canonical name, no personal data."""

    model_config = ConfigDict(frozen=True)

    agency_id: uuid.UUID
    name: str


class Responsibility(AgencyRef):
    """An agency's role on one work point."""

    role: Literal["lead", "co"]


class TargetShareRef(BaseModel):
    """The part of a target one agency answers for."""

    model_config = ConfigDict(frozen=True)

    agency_id: uuid.UUID
    share: float = Field(gt=0, le=1)


class TargetRef(BaseModel):
    """A quantitative target of a work point."""

    model_config = ConfigDict(frozen=True)

    metric: str
    value: float
    unit: str
    comparator: str
    shares: list[TargetShareRef] = Field(default_factory=list)


class AgencySnapshot(Event):
    """An agency as other services may know it (compacted topic duban.registry.agencies.v1).

    No personal data: names and kinds only. A merged agency names the agency it went into.
    """

    agency_id: uuid.UUID
    name: str
    kind: str
    aliases: list[str] = Field(default_factory=list)
    merged_into: uuid.UUID | None = None


class WorkPointSnapshot(Event):
    """Full state of a work point (compacted topic duban.registry.work-points.v1)."""

    work_point_id: WorkPointId
    plan_slug: str
    number: int
    section: int
    title: str
    responsibilities: list[Responsibility]
    plan_title: str = Field(default="", description="The plan's title, for pages and messages.")
    section_title: str = Field(default="", description="The title of the work point's section.")
    lead_inferred: bool = False
    report_every_working_days: int = Field(default=10, ge=1)
    grace_working_days: int = Field(default=3, ge=0)
    warn_before_due_working_days: int = Field(default=10, ge=0)
    pace_tolerance_pct: float = Field(default=10.0, ge=0, le=100)
    flatline_reports: int = Field(default=3, ge=2)
    starts_on: str | None = Field(
        default=None, description="ISO date the plan starts: where the pace line begins."
    )
    due_on: str | None = Field(default=None, description="ISO date the work point is due.")
    targets: list[TargetRef] = Field(default_factory=list)
    coordinating_agency_id: uuid.UUID | None = None
    deleted: bool = False

    def leads(self) -> list[Responsibility]:
        """Return the lead agencies."""
        return [r for r in self.responsibilities if r.role == "lead"]


class StallReason(StrEnum):
    """Why a work point needs attention; each reason has a level (see REASON_LEVEL)."""

    BLOCKED = "blocked"
    OVERDUE = "overdue"
    SILENT = "silent"
    BEHIND_PACE = "behind_pace"
    FLATLINE = "flatline"
    DUE_SOON = "due_soon"


class Level(StrEnum):
    """A work point's colour: green on track, blue due soon (预警), yellow behind (未达序时进度),
    red stalled."""

    GREEN = "green"
    BLUE = "blue"
    YELLOW = "yellow"
    RED = "red"

    @property
    def rank(self) -> int:
        """0 for green up to 3 for red."""
        return _LEVEL_RANK[self]


_LEVEL_RANK = {level: rank for rank, level in enumerate(Level)}

REASON_LEVEL: dict[StallReason, Level] = {
    StallReason.BLOCKED: Level.RED,
    StallReason.OVERDUE: Level.RED,
    StallReason.SILENT: Level.RED,
    StallReason.BEHIND_PACE: Level.YELLOW,
    StallReason.FLATLINE: Level.YELLOW,
    StallReason.DUE_SOON: Level.BLUE,
}
"""The colour each reason gives; a work point takes the highest of its reasons'."""


class StallTransitionKind(StrEnum):
    """What happened to a stall episode (one episode runs from leaving green to green again)."""

    OPENED = "opened"
    LEVEL_CHANGED = "level_changed"
    RECOVERED = "recovered"
    CLOSED = "closed"


class StallTransition(Event):
    """A change in a work point's stall episode (topic duban.stalls.v1, key work_point_id).

    `closed` is the work point's closure (办结销号) approved by the coordinating office; it ends
    the open episode, if any (then `episode_id` is that episode's, else null).
    """

    work_point_id: WorkPointId
    episode_id: uuid.UUID | None = Field(
        description="One stall episode; an alert follows one episode. Null only for a closure "
        "without an open episode."
    )
    kind: StallTransitionKind
    level: Level = Field(description="The colour after the transition (green once recovered).")
    previous_level: Level | None = Field(
        default=None, description="The colour before it; null when an episode opens."
    )
    reason: StallReason | None = Field(
        description="The headline reason: the most severe of `reasons` (of the episode's last "
        "verdict once it recovers or closes)."
    )
    reasons: list[StallReason] = Field(default_factory=list)
    work_point_number: int
    work_point_title: str
    lead_agencies: list[AgencyRef]
    co_agencies: list[AgencyRef] = Field(default_factory=list)
    coordinating_agency_id: uuid.UUID | None = Field(
        default=None, description="The plan's coordinating office, for escalations."
    )
    plan_slug: str | None = None
    silent_working_days: int | None = None
    triggered_by_event_id: uuid.UUID | None = Field(
        default=None, description="The status event that caused it; absent for the sweeper."
    )
    note: str | None = None
