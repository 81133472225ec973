"""Escalation policies per plan, read from YAML, and a pure planner of the steps that are due.

Why files: how hard to push an agency (whom to tell, after how many working hours, what may
wait for the morning) is the coordinating office's decision and changes with experience. A
reviewed YAML file per plan (`data/escalation/<plan-slug>.yaml`, `default.yaml` for the rest)
lets operators change it without a release, and a strict check when the notifier starts turns a
typo into a refusal that names the file, the line, the key and the fix, instead of an escalation
that silently never happens.

Why a pure planner: `due_steps` takes the alert's clock (when it fired, when it was
acknowledged, which steps were already executed) and `now`, and answers which steps are due and
when to look again. It reads no clock and no database, so every timing rule is tested with
explicit datetimes, and the service around it only has to store executions and wake up at the
answered time.

Timing rules (the README in data/escalation says the same for operators):
- A step's wait (`after`) counts from when the alert fired or, with `since: acknowledged`, from
  its acknowledgement. Working hours count only open time; working days keep the time of day.
  A zero wait means at once, even at night: holding messages for the morning is a property of
  the channel (`quiet_channels`, decided by `holds` when sending), not of the schedule, so an
  urgent alert and email are never delayed by it.
- `while` says when the step applies: until the alert is acknowledged, from the acknowledgement
  on, or always (until the alert resolves, which ends planning altogether). An occurrence
  scheduled before its condition started holding falls due when it starts holding; one whose
  condition ended before it fell due never does.
- A repeating step (`every`) falls due first after `after` (which defaults to one period), then
  once per period. Only the latest occurrence is ever due: an execution at or after it covers
  it, so after an outage the step is executed once, not once per missed period.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from duban_shared.events import Level, StallReason
from duban_shared.workdays import SHANGHAI, WorkingCalendar
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from notifier.workhours import (
    WorkingHours,
    add_working_days,
    add_working_time,
    next_open,
    whole_working_days_between,
    working_time_between,
)

__all__ = [
    "AlertClock",
    "Channel",
    "Duration",
    "EscalationPolicy",
    "Notify",
    "PolicyError",
    "PolicySet",
    "Since",
    "Step",
    "StepDue",
    "Urgent",
    "While",
    "WorkingHoursSetting",
    "due_steps",
    "load_policies",
]

DEFAULT_FILE = "default.yaml"
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


_RULE = "policy_rule"


def _rule(message: str, at: int | str | tuple[int | str, ...] | None = None) -> PydanticCustomError:
    """A broken rule of the format; `at` points below the validated value (e.g. at `end`)."""
    return PydanticCustomError(_RULE, message, {"at": at} if at is not None else None)


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


class EscalationPolicy(_Model):
    """One plan's escalation: working hours, quiet channels, urgency, grouping, steps."""

    working_hours: WorkingHoursSetting = WorkingHoursSetting()
    quiet_channels: tuple[Channel, ...] = (Channel.SMS, Channel.WECOM)
    urgent: Urgent = Urgent()
    group_window_minutes: int = Field(default=15, ge=0, le=24 * 60, strict=True)
    steps: tuple[Step, ...] = Field(min_length=1)

    @field_validator("quiet_channels")
    @classmethod
    def _email_is_never_held(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        if Channel.EMAIL in value:
            raise _rule(
                "email always goes and is never held; remove it from quiet_channels",
                at=value.index(Channel.EMAIL),
            )
        return value

    @field_validator("steps")
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

    @property
    def hours(self) -> WorkingHours:
        """The working hours for the arithmetic in notifier.workhours."""
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
        return _aware(now, "now").astimezone(SHANGHAI)


# --- loading ----------------------------------------------------------------------------------


class PolicyError(Exception):
    """Policy files that cannot be used: one line per problem, each naming the file and the fix."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class PolicySet:
    """Every plan's policy: its own file's, else the default."""

    default: EscalationPolicy
    plans: Mapping[str, EscalationPolicy]

    def for_plan(self, slug: str) -> EscalationPolicy:
        """The policy of plan `slug` (`default.yaml` when it has no file of its own)."""
        return self.plans.get(slug, self.default)


_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_README = "data/escalation/README.md"


def load_policies(folder: Path) -> PolicySet:
    """Read and check every `*.yaml` of `folder`; raise one PolicyError listing every problem.

    All files are checked before anything is refused, so one start shows all the mistakes.
    """
    if not folder.is_dir():
        raise PolicyError(
            [f"{folder}: no such folder; create it with a {DEFAULT_FILE} (see {_README})"]
        )
    problems: list[str] = [
        f"{path}: ignored because policy files end in .yaml; rename it to {path.stem}.yaml"
        for path in sorted(folder.glob("*.yml"))
    ]
    policies: dict[str, EscalationPolicy] = {}
    for path in sorted(folder.glob("*.yaml")):
        if not _SLUG.fullmatch(path.stem):
            problems.append(
                f"{path}: the file name must be a plan slug (lower-case letters, digits and "
                "'-', e.g. zhaoqing-digital-2024.yaml); rename it"
            )
            continue
        policy, found = _load_file(path)
        problems += found
        if policy is not None:
            policies[path.stem] = policy
    if not (folder / DEFAULT_FILE).is_file():
        problems.append(
            f"{folder / DEFAULT_FILE}: missing; every plan without its own file uses it, so "
            f"add it (see {_README})"
        )
    if problems:
        raise PolicyError(problems)
    default = policies.pop(DEFAULT_FILE.removesuffix(".yaml"))
    return PolicySet(default=default, plans=policies)


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping that names a key twice (YAML would silently keep the last)."""


class _Loader(yaml.SafeLoader):
    """YAML with the surprises that matter here removed.

    YAML 1.1 reads an unquoted 9:00 as the number 540 and `no`/`on` as booleans; here only
    decimal numbers and true/false are typed, as in YAML 1.2, so `start: 9:00` means nine
    o'clock. A key given twice is an error instead of the last one silently winning.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_seen: dict[str, yaml.Mark] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE:
                key = str(key_node.value)
                if key in first_seen:
                    raise _DuplicateKey(
                        problem=f"the key {key!r} is given twice (first on line "
                        f"{first_seen[key].line + 1}); keep one of them",
                        problem_mark=key_node.start_mark,
                    )
                first_seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


_MERGE = "tag:yaml.org,2002:merge"
_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float"))
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF")
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), "-+0123456789")
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    "-+0123456789.",
)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    # Decimal only: YAML 1.1 would read 08 as a broken octal number.
    return int(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Loader.add_constructor(_INT, _construct_decimal)


def _load_file(path: Path) -> tuple[EscalationPolicy | None, list[str]]:
    """One file's policy, or the problems that keep it from being one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot be read ({exc}); save it as UTF-8 text"]
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        if isinstance(exc, _DuplicateKey):
            return None, [f"{where}: {exc.problem}"]
        context = f" ({exc.context})" if exc.context else ""
        return None, [
            f"{where}: not valid YAML: {exc.problem}{context}; fix the syntax (see {_README})"
        ]
    except yaml.YAMLError as exc:
        flat = " ".join(str(exc).split())
        return None, [f"{path}: not valid YAML: {flat}; fix the syntax (see {_README})"]
    finally:
        loader.dispose()
    if node is None:
        return None, [f"{path}: the file is empty; write a policy in it (see {_README})"]
    try:
        return EscalationPolicy.model_validate(data), []
    except ValidationError as exc:
        errors = exc.errors()
    return None, [_describe(path, node, e) for e in errors if not _follows_from(e, errors)]


def _follows_from(error: ErrorDetails, errors: Sequence[ErrorDetails]) -> bool:
    """Whether the error only repeats others: a list is "too short" when its items failed."""
    loc = tuple(error["loc"])
    return error["type"] == "too_short" and any(
        len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc for other in errors
    )


def _describe(path: Path, root: yaml.Node, error: ErrorDetails) -> str:
    """`file:line: location: what is wrong and what to do`, for one validation error."""
    # A defaulted field's error carries its Python name; the file spells it as the alias.
    loc: tuple[int | str, ...] = tuple(_ALIASES.get(p, p) for p in error["loc"])
    at = (error.get("ctx") or {}).get("at") if error["type"] == _RULE else None
    if at is not None:
        loc += at if isinstance(at, tuple) else (at,)
    return f"{path}:{_line_of(root, loc)}: {_format_loc(loc)}: {_explain(error, loc)}"


_ALIASES: dict[int | str, int | str] = {"while_": "while"}


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _line_of(root: yaml.Node, loc: tuple[int | str, ...]) -> int:
    """The line of the deepest node of `loc` present in the file (the parent for a missing key)."""
    node, line = root, root.start_mark.line
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    line, child = key.start_mark.line, value
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line
        if child is None:
            break
        node = child
    return line + 1


_HINTS = {
    "id": "a name of lower-case letters, digits and '-', e.g. lead-again",
    "notify": "lead, co or coordinating_office",
    "steps": "a list of steps",
}


def _explain(error: ErrorDetails, loc: tuple[int | str, ...]) -> str:
    kind, ctx, found = error["type"], error.get("ctx") or {}, error.get("input")
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == _RULE:
        return error["msg"]
    if kind == "missing":
        hint = _HINTS.get(name)
        return f"required; add `{name}:`" + (f" ({hint})" if hint else "") + f", see {_README}"
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return "unknown key; remove it or correct its spelling" + (
            f" (known keys: {', '.join(known)})" if known else ""
        )
    if kind == "enum":
        return f"{found!r} is not allowed; use one of {ctx.get('expected')}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected keys and values (`key: value` lines), found {_kind(found)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, e.g. [a, b] or `- item` lines, found {_kind(found)}"
    if kind == "too_short":
        return "needs at least one step, e.g. `- {id: lead, notify: lead}`"
    if kind == "greater_than_equal":
        return f"must be {ctx.get('ge'):g} or more, found {found!r}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le'):g}, found {found!r}"
    if kind == "string_pattern_mismatch":
        return f"{found!r}: use lower-case letters, digits and '-' only, e.g. lead-again"
    if kind == "string_too_long":
        return f"{found!r} is too long; use at most {ctx.get('max_length')} characters"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, found {_kind(found)} {found!r}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, found {_kind(found)} {found!r}"
    if kind == "finite_number":
        return f"must be a finite number, found {found!r}"
    if kind == "string_type":
        return f"must be text, found {_kind(found)} {found!r}; put it in quotes"
    return f"{error['msg']} (found {found!r})"


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "keys and values"
    return type(value).__name__


def _known_keys(parent: tuple[int | str, ...]) -> list[str]:
    """The keys the model at `parent` accepts (for 'unknown key' messages)."""
    model: type[BaseModel] | None = EscalationPolicy
    for part in parent:
        if model is None:
            return []
        if isinstance(part, str):
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
            model = _model_in(field.annotation) if field else None
    return [f.alias or n for n, f in model.model_fields.items()] if model else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if found := _model_in(arg):
            return found
    return None


# --- planning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertClock:
    """What the planner needs to know about one alert.

    `level` and `reasons` travel with it for the caller's `holds` decision on each due step: they
    change when a message may go, never when a step falls due.
    """

    fired_at: datetime
    acknowledged_at: datetime | None
    level: Level
    reasons: tuple[StallReason, ...]
    done: Mapping[str, Sequence[datetime]]  # step id -> when it was executed (each occurrence)


@dataclass(frozen=True)
class StepDue:
    """A step to execute now, and when this occurrence fell due."""

    step: Step
    due_at: datetime


def due_steps(
    policy: EscalationPolicy, alert: AlertClock, now: datetime, calendar: WorkingCalendar
) -> tuple[list[StepDue], datetime | None]:
    """The steps due at `now` and not yet executed, in the policy's order, and when the next
    step falls due (None when none will unless the alert changes, e.g. is acknowledged).

    The next moment assumes the steps returned are executed now. Times are Asia/Shanghai-aware.
    Call again after executing, at the next moment, and whenever the alert changes.
    """
    _aware(now, "now")
    _aware(alert.fired_at, "fired_at")
    if alert.acknowledged_at is not None:
        _aware(alert.acknowledged_at, "acknowledged_at")
    for step_id, times in alert.done.items():
        for moment in times:
            _aware(moment, f"done[{step_id!r}]")
    due: list[StepDue] = []
    upcoming: list[datetime] = []
    for step in policy.steps:
        due_at, next_at = _plan_step(step, alert, now, policy.hours, calendar)
        if due_at is not None:
            due.append(StepDue(step=step, due_at=due_at))
        if next_at is not None:
            upcoming.append(next_at)
    return due, min(upcoming, default=None)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} ({moment.isoformat()}) must be an aware datetime")
    return moment


def _plan_step(
    step: Step, alert: AlertClock, now: datetime, hours: WorkingHours, calendar: WorkingCalendar
) -> tuple[datetime | None, datetime | None]:
    """(when the step fell due if it is due now, when it next falls due)."""
    fired = alert.fired_at.astimezone(SHANGHAI)
    acknowledged = alert.acknowledged_at and alert.acknowledged_at.astimezone(SHANGHAI)
    # The step's condition holds from `opens` until `closes` (None: until the alert resolves).
    closes: datetime | None = None
    if step.while_ is While.ACKNOWLEDGED:
        if acknowledged is None:
            return None, None  # cannot be scheduled before the acknowledgement: re-plan then
        opens = acknowledged
    else:
        opens = fired
        if step.while_ is While.UNACKNOWLEDGED:
            closes = acknowledged
    if closes is not None and closes <= now:
        return None, None  # acknowledged: an `unacknowledged` step is over for good
    anchor = acknowledged if step.since is Since.ACKNOWLEDGED else fired
    if anchor is None:
        return None, None
    first = _wait(anchor, step.first_wait, hours, calendar)
    executed = alert.done.get(step.id, ())

    def applies(moment: datetime) -> bool:
        return closes is None or moment < closes

    if step.every is None:
        if executed:
            return None, None
        due_at = max(first, opens)
        if due_at > now:
            return None, (due_at if applies(due_at) else None)
        return due_at, None

    # The latest occurrence scheduled by now (index `latest`), or the first one if none is.
    latest = _occurrences_by(first, step.every, now, hours, calendar) - 1
    if latest < 0:
        following = max(first, opens)
        return None, (following if applies(following) else None)
    due_at = max(_occurrence(first, step.every, latest, hours, calendar), opens)
    if due_at > now:  # the condition starts holding later (acknowledged after `now`)
        return None, (due_at if applies(due_at) else None)
    covered = any(moment >= due_at for moment in executed)
    following = max(_occurrence(first, step.every, latest + 1, hours, calendar), opens)
    return (None if covered else due_at), (following if applies(following) else None)


def _wait(
    anchor: datetime, wait: Duration, hours: WorkingHours, calendar: WorkingCalendar
) -> datetime:
    """The end of a wait from `anchor`; no wait is `anchor` itself, open or not."""
    if wait.is_zero:
        return anchor.astimezone(SHANGHAI)
    if wait.working_hours is not None:
        return add_working_time(anchor, timedelta(hours=wait.working_hours), hours, calendar)
    return add_working_days(anchor, wait.working_days or 0, calendar)


def _occurrence(
    first: datetime, every: Duration, index: int, hours: WorkingHours, calendar: WorkingCalendar
) -> datetime:
    """When occurrence `index` (0 = the first) of a repeating step is scheduled."""
    if index == 0:
        return first
    if every.working_hours is not None:
        return add_working_time(
            first, index * timedelta(hours=every.working_hours), hours, calendar
        )
    return add_working_days(first, index * (every.working_days or 0), calendar)


def _occurrences_by(
    first: datetime, every: Duration, now: datetime, hours: WorkingHours, calendar: WorkingCalendar
) -> int:
    """How many occurrences are scheduled at or before `now` (computed, not counted one by one).

    Exact because `working_time_between` inverts `add_working_time` in whole microseconds and
    `whole_working_days_between` inverts `add_working_days`.
    """
    if now < first:
        return 0
    if every.working_hours is not None:
        period = timedelta(hours=every.working_hours)
        return 1 + working_time_between(first, now, hours, calendar) // period
    return 1 + whole_working_days_between(first, now, calendar) // (every.working_days or 1)
