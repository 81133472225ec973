"""Escalation policies: the schema of a plan's policy file, checked strictly on the way in.

Why files: how hard to push an agency (whom to tell, after how many working hours, what may
wait for the morning) is the coordinating office's decision and changes with experience. A
reviewed YAML file per plan (`data/escalation/<plan-slug>.yaml`, `default.yaml` for the rest)
lets operators change it without a release; `notifier.adapters.policy_files` reads the files
and this schema refuses a typo with a message that names the key and the fix, instead of an
escalation that silently never happens. When steps fall due is `notifier.domain.planner`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated

from duban_shared.events import Level, StallReason
from duban_shared.workdays import SHANGHAI, WorkingCalendar
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from notifier.domain.workhours import WorkingHours, next_open

MAX_WORKING_HOURS = 2000.0  # about a working year: a longer wait is a typo, not a policy
MAX_WORKING_DAYS = 250


class Channel(StrEnum):
    """Ways a message reaches an agency."""

    EMAIL = "email"
    SMS = "sms"
    WECOM = "wecom"


class Notify(StrEnum):
    """Who a step tells: the lead agencies, the co-responsible ones, or the coordinating office."""

    LEAD = "lead"
    CO = "co"
    COORDINATING_OFFICE = "coordinating_office"


class Since(StrEnum):
    """What a step's wait counts from."""

    FIRED = "fired"
    ACKNOWLEDGED = "acknowledged"


class While(StrEnum):
    """When a step applies."""

    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    ANY = "any"


RULE_ERROR = "policy_rule"
"""The pydantic error type of a broken rule of the format (its message is the explanation)."""


def _rule(message: str, at: int | str | tuple[int | str, ...] | None = None) -> PydanticCustomError:
    """A broken rule of the format; `at` points below the validated value (e.g. at `end`)."""
    return PydanticCustomError(RULE_ERROR, message, {"at": at} if at is not None else None)


class _Model(BaseModel):
    # Unknown keys are refused: a misspelt `evrey:` must not silently turn a repeat off.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Model):
    """A wait on the official calendar: working hours (open time) or working days."""

    working_hours: float | None = Field(
        default=None, ge=0, le=MAX_WORKING_HOURS, strict=True, allow_inf_nan=False
    )
    working_days: int | None = Field(default=None, ge=0, le=MAX_WORKING_DAYS, strict=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> Duration:
        if (self.working_hours is None) == (self.working_days is None):
            raise _rule(
                "give exactly one of working_hours or working_days, e.g. "
                "`{working_hours: 8}` or `{working_days: 5}`"
            )
        return self

    @property
    def is_zero(self) -> bool:
        """Whether the wait is nothing at all."""
        return not (self.working_hours or self.working_days)

    def __str__(self) -> str:
        if self.working_hours is not None:
            return f"{self.working_hours:g} working hours"
        return f"{self.working_days} working days"


_ZERO = Duration(working_hours=0)

StepId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", max_length=40, strict=True)]


class Step(_Model):
    """One escalation step: whom to tell, after what wait, under which condition, how often.

    Field order matters: the rules on `while` and `every` read the fields validated before them.
    """

    id: StepId
    notify: Notify
    after: Duration | None = None
    since: Since = Since.FIRED
    while_: While = Field(default=While.ANY, alias="while", validate_default=True)
    every: Duration | None = None

    @field_validator("while_")
    @classmethod
    def _since_acknowledged_needs_while_acknowledged(
        cls, value: While, info: ValidationInfo
    ) -> While:
        if info.data.get("since") == Since.ACKNOWLEDGED and value != While.ACKNOWLEDGED:
            raise _rule(
                "a step counted `since: acknowledged` can only apply once acknowledged; "
                "add `while: acknowledged`, or count `since: fired`"
            )
        return value

    @field_validator("every")
    @classmethod
    def _repeats_need_a_period_and_a_condition(
        cls, value: Duration | None, info: ValidationInfo
    ) -> Duration | None:
        if value is None:
            return value
        if value.is_zero:
            raise _rule("a repeat period must be more than 0, e.g. `every: {working_hours: 8}`")
        if info.data.get("while_") == While.ANY:
            raise _rule(
                "a repeating step needs `while: unacknowledged` or `while: acknowledged`, "
                "or it would repeat until the alert resolves; add one of them"
            )
        return value

    @property
    def first_wait(self) -> Duration:
        """The wait before the first occurrence: `after`, else one period, else none."""
        return self.after or self.every or _ZERO


_HH_MM = re.compile(r"(\d{1,2}):(\d{2})")


class WorkingHoursSetting(_Model):
    """`working_hours: {start: "09:00", end: "18:00"}` on Asia/Shanghai clocks."""

    start: time = time(9, 0)
    end: time = time(18, 0)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        # Only "HH:MM": pydantic would also read a number as seconds after midnight, and YAML
        # 1.1 reads an unquoted 18:00 as the number 1080.
        if isinstance(value, time) and value.tzinfo is None:
            return value
        if isinstance(value, str) and (match := _HH_MM.fullmatch(value.strip())):
            hour, minute = int(match[1]), int(match[2])
            if hour < 24 and minute < 60:
                return time(hour, minute)
        raise _rule(f'{value!r} is not a time of day; write it as "HH:MM", e.g. "09:00"')

    @model_validator(mode="after")
    def _start_before_end(self) -> WorkingHoursSetting:
        if not self.start < self.end:
            raise _rule(
                f"working hours must end after they start ({self.start:%H:%M} to "
                f"{self.end:%H:%M}); "
                "windows across midnight are not supported",
                at="end",
            )
        return self

    @property
    def window(self) -> WorkingHours:
        """The same hours for the working-hours arithmetic."""
        return WorkingHours(self.start, self.end)


class Urgent(_Model):
    """What is never held: a level in `levels` and (at least) one reason in `reasons`."""

    levels: tuple[Level, ...] = (Level.RED,)
    reasons: tuple[StallReason, ...] = (StallReason.BLOCKED, StallReason.OVERDUE)


NOTICE_STEPS: tuple[Step, ...] = (
    Step.model_validate({"id": "notice-office", "notify": "coordinating_office"}),
    Step.model_validate({"id": "notice-lead", "notify": "lead"}),
    Step.model_validate(
        {
            "id": "notice-office-again",
            "notify": "coordinating_office",
            "every": {"working_days": 2},
            "while": "unacknowledged",
        }
    ),
)
"""What an overdue supervision notice does unless a policy file says otherwise: tell the
coordinating office and remind the lead at once, then the office every 2 working days until the
reply comes (a notice is never acknowledged: a reply, closure or withdrawal ends it)."""


class EscalationPolicy(_Model):
    """One plan's escalation: working hours, quiet channels, urgency, grouping, steps, and the
    steps of an overdue supervision notice (`notice_steps`, counted from when it fell overdue)."""

    working_hours: WorkingHoursSetting = WorkingHoursSetting()
    quiet_channels: tuple[Channel, ...] = (Channel.SMS, Channel.WECOM)
    urgent: Urgent = Urgent()
    group_window_minutes: int = Field(default=15, ge=0, le=24 * 60, strict=True)
    steps: tuple[Step, ...] = Field(min_length=1)
    notice_steps: tuple[Step, ...] = Field(default=NOTICE_STEPS, min_length=1)

    @field_validator("quiet_channels")
    @classmethod
    def _email_is_never_held(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        if Channel.EMAIL in value:
            raise _rule(
                "email always goes and is never held; remove it from quiet_channels",
                at=value.index(Channel.EMAIL),
            )
        return value

    @field_validator("steps", "notice_steps")
    @classmethod
    def _unique_step_ids(cls, value: tuple[Step, ...]) -> tuple[Step, ...]:
        seen: set[str] = set()
        for index, step in enumerate(value):
            if step.id in seen:
                raise _rule(
                    f"the step id {step.id!r} is used twice; give each step its own id "
                    "(executions are recorded by id)",
                    at=(index, "id"),
                )
            seen.add(step.id)
        return value

    def for_notices(self) -> EscalationPolicy:
        """The same policy with the notice steps as its steps (what the planner runs for an
        overdue notice)."""
        return self.model_copy(update={"steps": self.notice_steps})

    @property
    def hours(self) -> WorkingHours:
        """The working hours for the arithmetic in notifier.domain.workhours."""
        return self.working_hours.window

    def is_urgent(self, level: Level, reasons: Iterable[StallReason]) -> bool:
        """Urgent: the level is one of `urgent.levels` and a reason is one of `urgent.reasons`."""
        return level in self.urgent.levels and any(r in self.urgent.reasons for r in reasons)

    def holds(self, channel: Channel | str, level: Level, reasons: Iterable[StallReason]) -> bool:
        """Whether a message on `channel` waits for working hours: a quiet channel, not urgent."""
        return Channel(channel) in self.quiet_channels and not self.is_urgent(level, reasons)

    def release_at(
        self,
        channel: Channel | str,
        level: Level,
        reasons: Iterable[StallReason],
        now: datetime,
        calendar: WorkingCalendar,
    ) -> datetime:
        """When a message on `channel` may go: `now`, or the next opening when it is held."""
        if self.holds(channel, level, reasons):
            return next_open(now, self.hours, calendar)
        return aware(now, "now").astimezone(SHANGHAI)


@dataclass(frozen=True)
class PolicySet:
    """Every plan's policy: its own file's, else the default."""

    default: EscalationPolicy
    plans: Mapping[str, EscalationPolicy]

    def for_plan(self, slug: str) -> EscalationPolicy:
        """The policy of plan `slug` (`default.yaml` when it has no file of its own)."""
        return self.plans.get(slug, self.default)


def aware(moment: datetime, name: str) -> datetime:
    """`moment` itself, refused (ValueError) when it has no time zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} ({moment.isoformat()}) must be an aware datetime")
    return moment
