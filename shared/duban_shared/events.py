"""Event contracts carried on Kafka; the one definition every service imports.

Every event has an `event_id` (UUID, the idempotency key), a `schema_version` and an aware UTC
`occurred_at`. Trace context travels in Kafka headers, not in the payload.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1

OCCURRED_AT_OUT_OF_RANGE = "occurred_at_out_of_range"
REPORT_YEARS = range(2000, 2100)
"""The years a status report may describe: anything else is a typo or a placeholder (0001,
9999), and years this far out are beyond every calendar and every plan."""

CODED_ERRORS = frozenset({OCCURRED_AT_OUT_OF_RANGE})
"""Validation errors with a stable code of their own: an API answers with that code (not the
generic `invalid_request`) when it is a request's only problem, a consumer parks with it."""


def coded_error(exc: ValidationError) -> tuple[str, str] | None:
    """The code and message of a validation failure whose every error is one coded error
    (`CODED_ERRORS`); None when any other problem is among them."""
    errors = exc.errors()
    codes = {e["type"] for e in errors}
    if len(codes) != 1 or not codes <= CODED_ERRORS:
        return None
    return errors[0]["type"], errors[0]["msg"]


def _out_of_range(value: object) -> PydanticCustomError:
    return PydanticCustomError(
        OCCURRED_AT_OUT_OF_RANGE,
        "occurred_at {value} is outside the years {first} to {last}; send the moment the status "
        "was observed, with its UTC offset (e.g. 2024-09-02T09:30:00+08:00).",
        {"value": str(value), "first": REPORT_YEARS[0], "last": REPORT_YEARS[-1]},
    )


def _within_report_years(value: datetime) -> datetime:
    """Refuse a moment outside REPORT_YEARS, judged by its own date so that nothing is computed
    on it (a conversion of year 1 or 9999 to UTC overflows)."""
    if value.year not in REPORT_YEARS:
        raise _out_of_range(value.isoformat())
    return value


ReportTime = Annotated[
    AwareDatetime,
    AfterValidator(_within_report_years),
    Field(
        description="When the status was true, with an offset; years 2000 to 2099.",
        examples=["2024-09-02T09:30:00+08:00"],
    ),
]
"""`occurred_at` of a status report: aware, and within REPORT_YEARS."""

WORK_POINT_CODE_PATTERN = r"[0-9]{1,4}(\.[0-9]{1,4}){0,3}"
"""A work point's code within its plan: its number where the plan numbers continuously ("35"),
else its place in the plan's numbering levels, outermost first ("3.2" is item 2 of section 3,
"2.1.3" item 3 of group 1 of section 2): one to four levels of one to four digits."""

WorkPointCodeField = Annotated[
    str,
    Field(
        min_length=1,
        max_length=19,
        pattern=rf"^{WORK_POINT_CODE_PATTERN}$",
        description="The work point's code in its plan: its number in a continuously numbered "
        "plan ('35'), else section.item ('3.2') or section.group.item ('2.1.3').",
        examples=["35", "3.2"],
    ),
]
"""A work point's code in a model (the part of its id after the slash); in an API path it is
`duban_shared.inputs.WorkPointCode`."""

WorkPointId = Annotated[
    str,
    Field(
        min_length=3,
        max_length=120,
        pattern=rf"^[a-z0-9][a-z0-9-]*/{WORK_POINT_CODE_PATTERN}$",
        description="Plan slug and work point code, e.g. 'zhaoqing-digital-2024/35' or "
        "'some-plan-2025/3.2'.",
        examples=["zhaoqing-digital-2024/35", "some-plan-2025/3.2"],
    ),
]


def work_point_id(plan_slug: str, code: str) -> str:
    """Build the stable id of a work point from its plan and code."""
    return f"{plan_slug}/{code}"


def code_of(work_point_id: str) -> str:
    """The code of a work point id: what follows the plan slug ('3.2' of 'plan/3.2')."""
    return work_point_id.rpartition("/")[2]


def _code_from_id(data: object, field: str) -> object:
    """Fill a missing code from the record's `work_point_id` (records written before codes
    existed: their id ends with the number, which was the code)."""
    if isinstance(data, dict) and data.get(field) is None and "work_point_id" in data:
        wp_id = data["work_point_id"]
        if isinstance(wp_id, str):
            return {**data, field: code_of(wp_id)}
    return data


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(description="Idempotency key; a redelivery keeps the same id.")
    schema_version: int = SCHEMA_VERSION
    occurred_at: AwareDatetime

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it
            raise _out_of_range(value.isoformat()) from None

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

    occurred_at: ReportTime
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
    reported_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The person who filed it: the username of a personal account (the token's "
        "`person` claim), absent when an agency's system reported.",
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
    """Full state of a work point (compacted topic duban.registry.work-points.v1).

    `code` is the work point's stable code in its plan (the part of `work_point_id` after the
    slash); `number` is its ordinal, 1..N in reading order, for ordering only. A record
    written before codes existed has no `code`: it is read as the id's (which was the number).
    """

    work_point_id: WorkPointId
    plan_slug: str
    number: int = Field(description="The ordinal of the work point in its plan (1..N).")
    code: WorkPointCodeField
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

    @model_validator(mode="before")
    @classmethod
    def _code_default(cls, data: object) -> object:
        return _code_from_id(data, "code")

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

    `work_point_code` is what people see ("35", "3.2"); `work_point_number` is the ordinal in
    the plan. A record written before codes existed has no `work_point_code`: it is read as the
    code in `work_point_id` (which was the number).
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
    work_point_number: int = Field(description="The ordinal of the work point in its plan.")
    work_point_code: WorkPointCodeField
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

    @model_validator(mode="before")
    @classmethod
    def _code_default(cls, data: object) -> object:
        return _code_from_id(data, "work_point_code")


class NoticeTransitionKind(StrEnum):
    """What happened to a supervision notice (督办单)."""

    ISSUED = "issued"
    REPLIED = "replied"
    OVERDUE = "overdue"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


class NoticeTransition(Event):
    """A supervision notice changed state (topic duban.notices.v1, key work_point_id).

    `issued`: the office issued it; the lead agencies must reply by `reply_due`. `overdue`: no
    reply came by `reply_due` (once per notice); the notifier escalates it to the coordinating
    office. `replied`, `closed` and `withdrawn` end any escalation.
    """

    notice_id: uuid.UUID
    number: str = Field(description="The notice's number, e.g. 督办〔2024〕7号.")
    kind: NoticeTransitionKind
    work_point_id: WorkPointId
    work_point_code: WorkPointCodeField
    work_point_title: str
    plan_slug: str
    lead_agencies: list[AgencyRef]
    coordinating_agency_id: uuid.UUID | None = Field(
        default=None, description="The plan's coordinating office, for escalations."
    )
    issued_at: AwareDatetime
    reply_due: AwareDatetime = Field(description="The reply is late from this moment on.")
    reason: str
    required_action: str
    note: str | None = Field(
        default=None, description="The reply's text, or the office's note on a closure."
    )


class AlertTransitionKind(StrEnum):
    """What happened to an alert (the notifier's, one per stall episode)."""

    FIRED = "fired"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertTransition(Event):
    """An alert changed state (topic duban.alerts.v1, key work_point_id), written by the
    notifier's outbox in the transaction that changed it; progress keeps each alert's
    acknowledgement time for the circulars (通报).

    Each event carries the alert's whole lifecycle so far (`fired_at`, `acknowledged_at`,
    `resolved_at`), so a consumer that missed or reordered one still knows the latest state:
    fired < acknowledged < resolved, and a time once known is never unset. `event_id` is derived
    from the alert's id and the kind, so a redelivery is the same event.
    """

    alert_id: uuid.UUID
    kind: AlertTransitionKind
    plan_slug: str | None = None
    work_point_id: WorkPointId
    work_point_code: WorkPointCodeField
    lead_agencies: list[AgencyRef] = Field(description="The agencies expected to acknowledge.")
    fired_at: AwareDatetime
    acknowledged_at: AwareDatetime | None = None
    acknowledged_via: Literal["api", "link"] | None = Field(
        default=None,
        description="api: with a token (the board or a client); link: a message's link.",
    )
    acknowledged_by: str | None = Field(
        default=None,
        max_length=160,
        description="The API client id, or `link:<agency id>` for a link.",
    )
    acknowledged_person: str | None = Field(
        default=None, max_length=200, description="The personal account that acknowledged, if any."
    )
    resolved_at: AwareDatetime | None = None
    resolution: Literal["recovered", "closed"] | None = None


class RevocationKind(StrEnum):
    """What a revocation refuses."""

    CLIENT = "client"  # the tokens a client holds: it was revoked or its secret rotated
    TOKEN = "token"  # one token (a logout)  # noqa: S105 - a kind, not a secret


class Revocation(Event):
    """Access tokens refused before they expire (compacted topic
    duban.registry.revocations.v1; key `client:<client_id>` or `token:<jti>`).

    A `client` revocation refuses every token of `client_id` issued with a secret set before
    `occurred_at` (the moment of the revocation or rotation): all of them when the client was
    revoked, those of the old secret when it was rotated. A `token` revocation refuses the
    token `jti` (a logout). `expires_at` is when the last token it concerns expires: after
    that, the entry can be forgotten.
    """

    kind: RevocationKind
    reason: Literal["revoked", "rotated", "logout"]
    client_id: str = Field(min_length=1, max_length=64)
    jti: str | None = Field(default=None, min_length=1, max_length=64)
    expires_at: AwareDatetime

    @field_validator("expires_at")
    @classmethod
    def _expiry_to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _token_names_its_jti(self) -> Revocation:
        if (self.kind == RevocationKind.TOKEN) != (self.jti is not None):
            raise ValueError("a token revocation names its jti, a client revocation none")
        return self

    @property
    def key(self) -> str:
        """The record's key: one entry per client, one per revoked token."""
        if self.kind == RevocationKind.TOKEN:
            return f"token:{self.jti}"
        return f"client:{self.client_id}"


class CircularPublished(Event):
    """A circular (通报) of a plan was published (topic duban.circulars.v1, key the circular's
    id): the notifier mails its two files to the configured list.

    `event_id` is derived from the circular's id, so a redelivery is the same event. The files
    travel base64-encoded (a circular's are some tens of KiB).
    """

    circular_id: uuid.UUID
    plan_slug: str = Field(max_length=80)
    plan_title: str = Field(default="", max_length=200)
    number: str = Field(max_length=60, description="The 文号, e.g. 肇数督通〔2024〕3号.")
    kind: Literal["weekly", "monthly"]
    period: str = Field(max_length=10, description="2024-W36 (ISO week) or 2024-09 (month).")
    version: int = Field(ge=1)
    title: str = Field(max_length=300, description="The circular's title, the mail's subject.")
    docx_base64: str
    xlsx_base64: str


class DeliverySent(Event):
    """The notifier sent a planned delivery (topic duban.deliveries.v1, compacted, key the
    delivery's key), written through its outbox in the transaction that recorded the send.

    A notifier restored from a backup reads the topic before it sends anything and takes every
    delivery found here as sent, so a message that went out after the backup does not go out
    again. No address travels: `delivery_key` is a digest of the delivery's cause, channel and
    recipient (`notifier.domain.delivery.delivery_key`), which the restored notifier computes
    again from the rows it plans. `event_id` is that key as a UUID, so a record written twice
    is one event.
    """

    delivery_key: str = Field(pattern=r"^[0-9a-f]{32}$")
    cause_id: uuid.UUID = Field(description="The delivery's cause: alert and step occurrence.")
    alert_id: uuid.UUID | None = None
    channel: str = Field(max_length=16)
    message_ref: str | None = Field(default=None, max_length=80)
    provider_id: str | None = Field(default=None, max_length=120)
