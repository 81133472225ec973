"""Escalation policies: the YAML format and its error messages, urgency and holding, and the
planner for every kind of step, with explicit datetimes (no clock, no sleeping).

The planner scenarios run in the last week of September 2024: an alert fires on Wednesday
25 September at 14:00; Saturday 28 is off, Sunday 29 is a make-up working day (调休), 1-7 October
are the National Day holidays. With 09:00-18:00 working hours, 8 working hours after the firing
is Thursday 13:00, 16 is Friday 12:00 and 24 is Sunday 29 September 11:00.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from duban_shared.events import Level, StallReason
from duban_shared.workdays import SHANGHAI, WorkingCalendar
from hypothesis import given, settings
from hypothesis import strategies as st
from notifier.adapters.policy_files import PolicyError, load_policies
from notifier.domain.planner import AlertClock, due_steps
from notifier.domain.policy import Channel, EscalationPolicy, Notify, Since, While
from notifier.domain.workhours import WorkingHours

CAL = WorkingCalendar()
REPO_POLICIES = Path(__file__).resolve().parents[4] / "data" / "escalation"

STEPS = """\
steps:
  - id: lead
    notify: lead
"""


def sh(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment of 2024 on Shanghai's clock."""
    return datetime(2024, month, day, hour, minute, tzinfo=SHANGHAI)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(folder: Path, files: Mapping[str, str]) -> list[str]:
    """The problems load_policies reports for these files (a default.yaml is added if absent)."""
    for name, text in {"default.yaml": STEPS, **files}.items():
        write(folder, name, text)
    with pytest.raises(PolicyError) as caught:
        load_policies(folder)
    assert str(caught.value).splitlines() == list(caught.value.problems)
    return list(caught.value.problems)


def only_problem(folder: Path, text: str) -> str:
    """The single problem of a default.yaml with this text."""
    found = problems(folder, {"default.yaml": text})
    assert len(found) == 1, found
    return found[0]


def load(folder: Path, text: str) -> EscalationPolicy:
    write(folder, "default.yaml", text)
    return load_policies(folder).default


# --- loading ---------------------------------------------------------------------------------


def test_the_shipped_default_policy_is_valid() -> None:
    policy = load_policies(REPO_POLICIES).default
    assert [s.id for s in policy.steps] == ["lead", "co", "lead-again", "office", "office-stuck"]
    assert policy.quiet_channels == (Channel.SMS, Channel.WECOM)


def test_a_plan_file_overrides_the_default_for_that_plan_only(tmp_path: Path) -> None:
    write(tmp_path, "default.yaml", STEPS)
    write(
        tmp_path,
        "zhaoqing-digital-2024.yaml",
        """\
        group_window_minutes: 30
        steps:
          - {id: office, notify: coordinating_office}
        """,
    )
    policies = load_policies(tmp_path)
    assert policies.for_plan("zhaoqing-digital-2024").group_window_minutes == 30
    assert policies.for_plan("zhaoqing-digital-2024").steps[0].notify is Notify.COORDINATING_OFFICE
    assert policies.for_plan("another-plan") is policies.default
    assert set(policies.plans) == {"zhaoqing-digital-2024"}


def test_omitted_keys_take_the_documented_defaults(tmp_path: Path) -> None:
    policy = load(tmp_path, STEPS)
    assert policy.hours == WorkingHours(time(9), time(18))
    assert policy.quiet_channels == (Channel.SMS, Channel.WECOM)
    assert policy.urgent.levels == (Level.RED,)
    assert policy.urgent.reasons == (StallReason.BLOCKED, StallReason.OVERDUE)
    assert policy.group_window_minutes == 15
    step = policy.steps[0]
    assert (step.after, step.since, step.while_, step.every) == (
        None,
        Since.FIRED,
        While.ANY,
        None,
    )


def test_yaml_1_1_surprises_are_read_as_meant(tmp_path: Path) -> None:
    policy = load(
        tmp_path,
        """\
        working_hours: {start: 8:30, end: 17:30}   # YAML 1.1 would read 510 and 1050
        group_window_minutes: 08                   # YAML 1.1 would fail on octal
        steps:
          - id: no                                 # YAML 1.1 would read false
            notify: lead
        """,
    )
    assert policy.hours == WorkingHours(time(8, 30), time(17, 30))
    assert policy.group_window_minutes == 8
    assert policy.steps[0].id == "no"


def test_every_file_is_checked_and_all_problems_are_reported_together(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "default.yaml": "group_window_minutes: -1\n" + STEPS,
            "plan-a.yaml": "steps: []\n",
            "plan-b.yaml": STEPS,  # valid: it does not hide the others' problems
        },
    )
    assert found == [
        f"{tmp_path}/default.yaml:1: group_window_minutes: must be 0 or more, found -1",
        f"{tmp_path}/plan-a.yaml:1: steps: needs at least one step, e.g. "
        "`- {id: lead, notify: lead}`",
    ]


def test_default_yaml_is_required(tmp_path: Path) -> None:
    write(tmp_path, "zhaoqing-digital-2024.yaml", STEPS)
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path)
    assert caught.value.problems == (
        f"{tmp_path}/default.yaml: missing; every plan without its own file uses it, so add it "
        "(see data/escalation/README.md)",
    )


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nowhere: no such folder; create it with a default"):
        load_policies(tmp_path / "nowhere")


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, "steps: [\n  - id: a\n")
    assert problem.startswith(f"{tmp_path}/default.yaml:2:3: not valid YAML: ")
    assert problem.endswith("fix the syntax (see data/escalation/README.md)")


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, "steps:\n  - id: a\n    notify: lead\n    id: b\n")
    assert problem == (
        f"{tmp_path}/default.yaml:4:5: the key 'id' is given twice (first on line 2); "
        "keep one of them"
    )


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "# nothing yet\n") == (
        f"{tmp_path}/default.yaml: the file is empty; write a policy in it "
        "(see data/escalation/README.md)"
    )


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert only_problem(tmp_path, "- lead\n") == (
        f"{tmp_path}/default.yaml:1: (top level): expected keys and values (`key: value` "
        "lines), found a list"
    )


def test_yml_files_and_names_that_are_not_slugs_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, {"plan.yml": STEPS, "Plan_2024.yaml": STEPS})
    assert found == [
        f"{tmp_path}/plan.yml: ignored because policy files end in .yaml; rename it to plan.yaml",
        f"{tmp_path}/Plan_2024.yaml: the file name must be a plan slug (lower-case letters, "
        "digits and '-', e.g. zhaoqing-digital-2024.yaml); rename it",
    ]


# Each case: the file's text and the one problem expected (after "<file>:"), line included.
INVALID: dict[str, tuple[str, str]] = {
    "missing steps": (
        "group_window_minutes: 15\n",
        "1: steps: required; add `steps:` (a list of steps), see data/escalation/README.md",
    ),
    "no steps": (
        "steps: []\n",
        "1: steps: needs at least one step, e.g. `- {id: lead, notify: lead}`",
    ),
    "unknown top-level key": (
        STEPS + "quiet_hours: [sms]\n",
        "4: quiet_hours: unknown key; remove it or correct its spelling (known keys: "
        "working_hours, quiet_channels, urgent, group_window_minutes, steps)",
    ),
    "misspelt step key": (
        STEPS + "    evrey: {working_hours: 8}\n",
        "4: steps[0].evrey: unknown key; remove it or correct its spelling (known keys: id, "
        "notify, after, since, while, every)",
    ),
    "unknown duration key": (
        STEPS + "    after: {hours: 8}\n",
        "4: steps[0].after.hours: unknown key; remove it or correct its spelling (known keys: "
        "working_hours, working_days)",
    ),
    "missing id": (
        "steps:\n  - notify: lead\n",
        "2: steps[0].id: required; add `id:` (a name of lower-case letters, digits and '-', "
        "e.g. lead-again), see data/escalation/README.md",
    ),
    "missing notify": (
        "steps:\n  - id: lead\n",
        "2: steps[0].notify: required; add `notify:` (lead, co or coordinating_office), see "
        "data/escalation/README.md",
    ),
    "bad id": (
        "steps:\n  - id: Lead Again\n    notify: lead\n",
        "2: steps[0].id: 'Lead Again': use lower-case letters, digits and '-' only, e.g. "
        "lead-again",
    ),
    "id too long": (
        f"steps:\n  - id: {'a' * 41}\n    notify: lead\n",
        f"2: steps[0].id: '{'a' * 41}' is too long; use at most 40 characters",
    ),
    "id not text": (
        "steps:\n  - id: 12\n    notify: lead\n",
        "2: steps[0].id: must be text, found a number 12; put it in quotes",
    ),
    "duplicate id": (
        STEPS + "  - id: lead\n    notify: co\n",
        "4: steps[1].id: the step id 'lead' is used twice; give each step its own id "
        "(executions are recorded by id)",
    ),
    "unknown notify": (
        "steps:\n  - id: lead\n    notify: mayor\n",
        "3: steps[0].notify: 'mayor' is not allowed; use one of 'lead', 'co' or "
        "'coordinating_office'",
    ),
    "both durations": (
        STEPS + "    after: {working_hours: 8, working_days: 1}\n",
        "4: steps[0].after: give exactly one of working_hours or working_days, e.g. "
        "`{working_hours: 8}` or `{working_days: 5}`",
    ),
    "no duration": (
        STEPS + "    after: {}\n",
        "4: steps[0].after: give exactly one of working_hours or working_days, e.g. "
        "`{working_hours: 8}` or `{working_days: 5}`",
    ),
    "negative working hours": (
        STEPS + "  - id: co\n    notify: co\n  - id: office\n    notify: coordinating_office\n"
        "    after:\n      working_hours: -8\n",
        "9: steps[2].after.working_hours: must be 0 or more, found -8",
    ),
    "working hours too long": (
        STEPS + "    after: {working_hours: 2001}\n",
        "4: steps[0].after.working_hours: must be at most 2000, found 2001",
    ),
    "working hours as text": (
        STEPS + '    after: {working_hours: "8"}\n',
        "4: steps[0].after.working_hours: must be a number, found text '8'",
    ),
    "working hours not finite": (
        STEPS + "    after: {working_hours: .inf}\n",
        "4: steps[0].after.working_hours: must be a finite number, found inf",
    ),
    "fractional working days": (
        STEPS + "    after: {working_days: 2.5}\n",
        "4: steps[0].after.working_days: must be a whole number, found a number 2.5",
    ),
    "negative working days": (
        STEPS + "    after: {working_days: -1}\n",
        "4: steps[0].after.working_days: must be 0 or more, found -1",
    ),
    "unknown since": (
        STEPS + "    since: resolved\n",
        "4: steps[0].since: 'resolved' is not allowed; use one of 'fired' or 'acknowledged'",
    ),
    "unknown while": (
        STEPS + "    while: always\n",
        "4: steps[0].while: 'always' is not allowed; use one of 'unacknowledged', "
        "'acknowledged' or 'any'",
    ),
    "every without while": (
        STEPS + "    every: {working_hours: 8}\n",
        "4: steps[0].every: a repeating step needs `while: unacknowledged` or "
        "`while: acknowledged`, or it would repeat until the alert resolves; add one of them",
    ),
    "every with while any": (
        STEPS + "    while: any\n    every: {working_hours: 8}\n",
        "5: steps[0].every: a repeating step needs `while: unacknowledged` or "
        "`while: acknowledged`, or it would repeat until the alert resolves; add one of them",
    ),
    "every zero": (
        STEPS + "    while: unacknowledged\n    every: {working_days: 0}\n",
        "5: steps[0].every: a repeat period must be more than 0, e.g. `every: {working_hours: 8}`",
    ),
    "since acknowledged without while": (
        STEPS + "    since: acknowledged\n",
        "2: steps[0].while: a step counted `since: acknowledged` can only apply once "
        "acknowledged; add `while: acknowledged`, or count `since: fired`",
    ),
    "since acknowledged while unacknowledged": (
        STEPS + "    since: acknowledged\n    while: unacknowledged\n",
        "5: steps[0].while: a step counted `since: acknowledged` can only apply once "
        "acknowledged; add `while: acknowledged`, or count `since: fired`",
    ),
    "hours reversed": (
        'working_hours: {start: "18:00", end: "09:00"}\n' + STEPS,
        "1: working_hours.end: working hours must end after they start (18:00 to 09:00); "
        "windows across midnight are not supported",
    ),
    "hours not a time": (
        'working_hours: {start: "9am"}\n' + STEPS,
        '1: working_hours.start: \'9am\' is not a time of day; write it as "HH:MM", e.g. "09:00"',
    ),
    "hours out of range": (
        'working_hours: {end: "24:00"}\n' + STEPS,
        '1: working_hours.end: \'24:00\' is not a time of day; write it as "HH:MM", e.g. "09:00"',
    ),
    "hours as seconds": (
        "working_hours: {start: 32400}\n" + STEPS,
        '1: working_hours.start: 32400 is not a time of day; write it as "HH:MM", e.g. "09:00"',
    ),
    "email held": (
        "quiet_channels: [sms, email]\n" + STEPS,
        "1: quiet_channels[1]: email always goes and is never held; remove it from quiet_channels",
    ),
    "unknown channel": (
        "quiet_channels: [fax]\n" + STEPS,
        "1: quiet_channels[0]: 'fax' is not allowed; use one of 'email', 'sms' or 'wecom'",
    ),
    "quiet channels not a list": (
        "quiet_channels: sms\n" + STEPS,
        "1: quiet_channels: expected a list, e.g. [a, b] or `- item` lines, found text",
    ),
    "unknown level": (
        "urgent: {levels: [crimson]}\n" + STEPS,
        "1: urgent.levels[0]: 'crimson' is not allowed; use one of 'green', 'blue', 'yellow' "
        "or 'red'",
    ),
    "unknown reason": (
        "urgent:\n  reasons: [late]\n" + STEPS,
        "2: urgent.reasons[0]: 'late' is not allowed; use one of 'blocked', 'overdue', "
        "'silent', 'behind_pace', 'flatline' or 'due_soon'",
    ),
    "urgent not a mapping": (
        "urgent: red\n" + STEPS,
        "1: urgent: expected keys and values (`key: value` lines), found text",
    ),
    "group window negative": (
        "group_window_minutes: -5\n" + STEPS,
        "1: group_window_minutes: must be 0 or more, found -5",
    ),
    "group window too long": (
        "group_window_minutes: 1441\n" + STEPS,
        "1: group_window_minutes: must be at most 1440, found 1441",
    ),
    "group window as text": (
        'group_window_minutes: "15"\n' + STEPS,
        "1: group_window_minutes: must be a whole number, found text '15'",
    ),
    "step not a mapping": (
        "steps:\n  - lead\n",
        "2: steps[0]: expected keys and values (`key: value` lines), found text",
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_each_mistake_is_named_with_its_line_location_and_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert only_problem(tmp_path, text) == f"{tmp_path}/default.yaml:{expected}"


def test_several_mistakes_in_one_file_are_all_listed(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "default.yaml": """\
            quiet_channels: [email]
            steps:
              - id: lead
                notify: boss
              - id: again
                notify: lead
                every: {working_hours: 8}
            """
        },
    )
    assert [p.split(": ", 2)[1] for p in found] == [
        "quiet_channels[0]",
        "steps[0].notify",
        "steps[1].every",
    ]


# --- urgency and holding ---------------------------------------------------------------------


@pytest.fixture
def policy() -> EscalationPolicy:
    return load_policies(REPO_POLICIES).default


@pytest.mark.parametrize(
    ("level", "reasons", "urgent"),
    [
        (Level.RED, (StallReason.BLOCKED,), True),
        (Level.RED, (StallReason.SILENT, StallReason.OVERDUE), True),
        (Level.RED, (StallReason.SILENT,), False),
        (Level.YELLOW, (StallReason.BEHIND_PACE,), False),
        (Level.YELLOW, (StallReason.BLOCKED,), False),  # the level must match as well
        (Level.RED, (), False),
    ],
)
def test_urgent_needs_both_a_level_and_a_reason(
    policy: EscalationPolicy, level: Level, reasons: tuple[StallReason, ...], urgent: bool
) -> None:
    assert policy.is_urgent(level, reasons) is urgent


def test_quiet_channels_hold_unless_urgent_and_email_is_never_held(
    policy: EscalationPolicy,
) -> None:
    silent, blocked = (StallReason.SILENT,), (StallReason.BLOCKED,)
    assert policy.holds(Channel.SMS, Level.RED, silent)
    assert policy.holds("wecom", Level.YELLOW, (StallReason.FLATLINE,))
    assert not policy.holds(Channel.SMS, Level.RED, blocked)
    assert not policy.holds(Channel.EMAIL, Level.RED, silent)
    with pytest.raises(ValueError, match="fax"):
        policy.holds("fax", Level.RED, silent)


def test_release_at_waits_for_the_next_opening_only_when_held(policy: EscalationPolicy) -> None:
    friday_night = sh(9, 27, 22)
    silent, blocked = (StallReason.SILENT,), (StallReason.BLOCKED,)
    assert policy.release_at(Channel.SMS, Level.RED, silent, friday_night, CAL) == sh(9, 29, 9)
    assert policy.release_at(Channel.SMS, Level.RED, blocked, friday_night, CAL) == friday_night
    assert policy.release_at(Channel.EMAIL, Level.RED, silent, friday_night, CAL) == friday_night
    assert policy.release_at(Channel.SMS, Level.RED, silent, sh(9, 27, 10), CAL) == sh(9, 27, 10)


# --- the planner -----------------------------------------------------------------------------

FIRED = sh(9, 25, 14)  # Wednesday


def clock(
    done: Mapping[str, Sequence[datetime]] | None = None,
    acknowledged_at: datetime | None = None,
    fired_at: datetime = FIRED,
) -> AlertClock:
    return AlertClock(
        fired_at=fired_at,
        acknowledged_at=acknowledged_at,
        level=Level.RED,
        reasons=(StallReason.SILENT,),
        done=done or {},
    )


def plan(
    policy: EscalationPolicy, alert: AlertClock, now: datetime
) -> tuple[list[tuple[str, datetime]], datetime | None]:
    due, next_at = due_steps(policy, alert, now, CAL)
    return [(d.step.id, d.due_at) for d in due], next_at


def steps_policy(*steps: dict[str, Any]) -> EscalationPolicy:
    return EscalationPolicy.model_validate({"steps": list(steps)})


AT_ONCE = {"lead": [FIRED], "co": [FIRED]}


def test_at_once_steps_are_due_when_the_alert_fires(policy: EscalationPolicy) -> None:
    assert plan(policy, clock(), FIRED) == (
        [("lead", FIRED), ("co", FIRED)],
        sh(9, 26, 13),  # the first reminder, 8 working hours later
    )


def test_executed_steps_are_not_due_again(policy: EscalationPolicy) -> None:
    assert plan(policy, clock(AT_ONCE), FIRED) == ([], sh(9, 26, 13))
    assert plan(policy, clock(AT_ONCE), sh(9, 26, 12, 59)) == ([], sh(9, 26, 13))


def test_a_zero_wait_is_at_once_even_when_closed(policy: EscalationPolicy) -> None:
    saturday = sh(9, 28, 22)
    due, next_at = plan(policy, clock(fired_at=saturday), saturday)
    assert due == [("lead", saturday), ("co", saturday)]
    assert next_at == sh(9, 29, 17)  # 8 working hours on the make-up Sunday


def test_the_reminder_repeats_every_8_working_hours_while_unacknowledged(
    policy: EscalationPolicy,
) -> None:
    assert plan(policy, clock(AT_ONCE), sh(9, 26, 13)) == (
        [("lead-again", sh(9, 26, 13))],
        sh(9, 27, 12),
    )
    done = {**AT_ONCE, "lead-again": [sh(9, 26, 13)]}
    assert plan(policy, clock(done), sh(9, 26, 15)) == ([], sh(9, 27, 12))
    # 16 working hours: the second reminder and the office, in the policy's order
    assert plan(policy, clock(done), sh(9, 27, 12)) == (
        [("lead-again", sh(9, 27, 12)), ("office", sh(9, 27, 12))],
        sh(9, 29, 11),  # 24 working hours: Friday 12:00 + 6 h + 2 h on the make-up Sunday
    )


def test_reminders_and_the_office_stop_once_acknowledged(policy: EscalationPolicy) -> None:
    done = {**AT_ONCE, "lead-again": [sh(9, 26, 13)]}
    acknowledged = sh(9, 27, 11)  # an hour before the second reminder and the office
    due, next_at = plan(policy, clock(done, acknowledged), sh(9, 27, 12))
    assert due == []
    # Only `office-stuck` is left: 5 working days after the acknowledgement, over the
    # National Day week (29, 30 September, 8, 9, 10 October).
    assert next_at == sh(10, 10, 11)


def test_escalation_when_still_stalled_working_days_after_acknowledgement(
    policy: EscalationPolicy,
) -> None:
    acknowledged = sh(9, 27, 11)
    done: dict[str, list[datetime]] = {**AT_ONCE, "lead-again": [sh(9, 26, 13)]}
    assert plan(policy, clock(done, acknowledged), sh(10, 10, 10, 59)) == ([], sh(10, 10, 11))
    assert plan(policy, clock(done, acknowledged), sh(10, 10, 11)) == (
        [("office-stuck", sh(10, 10, 11))],
        None,
    )
    done["office-stuck"] = [sh(10, 10, 11)]
    assert plan(policy, clock(done, acknowledged), sh(11, 20)) == ([], None)


def test_after_an_outage_a_repeat_is_due_once_not_once_per_missed_period(
    policy: EscalationPolicy,
) -> None:
    done = {**AT_ONCE, "lead-again": [sh(9, 26, 13)]}
    # 48 working hours after the firing is 8 October 17:00: the 6th reminder is the latest.
    assert plan(policy, clock(done), sh(10, 8, 17, 30)) == (
        [("lead-again", sh(10, 8, 17)), ("office", sh(9, 27, 12))],
        sh(10, 9, 16),
    )
    done = {**done, "lead-again": [sh(9, 26, 13), sh(10, 8, 17, 30)], "office": [sh(10, 8, 17)]}
    assert plan(policy, clock(done), sh(10, 8, 17, 30)) == ([], sh(10, 9, 16))


def test_a_repeat_executed_late_still_counts_for_its_period(policy: EscalationPolicy) -> None:
    done = {**AT_ONCE, "lead-again": [sh(9, 26, 16)]}  # due at 13:00, executed at 16:00
    assert plan(policy, clock(done), sh(9, 26, 17)) == ([], sh(9, 27, 12))


def test_hours_count_over_mid_autumn(policy: EscalationPolicy) -> None:
    fired = sh(9, 13, 17)  # Friday; Saturday 14 is worked, 15-17 September are off
    done = {"lead": [fired], "co": [fired]}
    assert plan(policy, clock(done, fired_at=fired), fired) == ([], sh(9, 14, 16))
    done["lead-again"] = [sh(9, 14, 16)]
    assert plan(policy, clock(done, fired_at=fired), sh(9, 14, 16)) == ([], sh(9, 18, 15))


def test_utc_and_shanghai_moments_plan_alike(policy: EscalationPolicy) -> None:
    fired_utc = FIRED.astimezone(UTC)
    due, next_at = plan(policy, clock(fired_at=fired_utc), fired_utc)
    assert due == [("lead", FIRED), ("co", FIRED)]
    assert next_at == sh(9, 26, 13)
    assert next_at is not None and next_at.tzinfo is SHANGHAI


def test_due_times_are_on_shanghai_clocks_whatever_zone_they_came_in() -> None:
    policy = steps_policy({"id": "check", "notify": "coordinating_office", "while": "acknowledged"})
    acknowledged = sh(9, 26, 10).astimezone(UTC)
    due, _ = due_steps(policy, clock(acknowledged_at=acknowledged), acknowledged, CAL)
    assert [d.due_at for d in due] == [sh(9, 26, 10)]
    assert due[0].due_at.tzinfo is SHANGHAI


def test_naive_datetimes_are_refused(policy: EscalationPolicy) -> None:
    with pytest.raises(ValueError, match=r"now .* must be an aware datetime"):
        due_steps(policy, clock(), datetime(2024, 9, 25, 14), CAL)
    with pytest.raises(ValueError, match=r"done\[.lead.\]"):
        due_steps(policy, clock({"lead": [datetime(2024, 9, 25, 14)]}), FIRED, CAL)


def test_before_the_firing_nothing_is_due(policy: EscalationPolicy) -> None:
    assert plan(policy, clock(), sh(9, 25, 13)) == ([], FIRED)


def test_all_one_off_steps_done_and_no_repeat_applies_means_never() -> None:
    policy = steps_policy(
        {"id": "lead", "notify": "lead"},
        {"id": "office", "notify": "coordinating_office", "after": {"working_hours": 4}},
    )
    assert plan(policy, clock({"lead": [FIRED]}), FIRED) == ([], sh(9, 25, 18))
    done = {"lead": [FIRED], "office": [sh(9, 25, 18)]}
    assert plan(policy, clock(done), sh(12, 1)) == ([], None)


def test_an_unacknowledged_step_whose_time_comes_after_the_acknowledgement_never_runs() -> None:
    policy = steps_policy(
        {
            "id": "office",
            "notify": "coordinating_office",
            "after": {"working_hours": 16},
            "while": "unacknowledged",
        }
    )
    assert plan(policy, clock(), FIRED) == ([], sh(9, 27, 12))
    assert plan(policy, clock(acknowledged_at=sh(9, 26, 10)), FIRED) == ([], None)
    assert plan(policy, clock(acknowledged_at=sh(9, 26, 10)), sh(9, 30)) == ([], None)


def test_an_acknowledged_step_waits_for_the_acknowledgement() -> None:
    policy = steps_policy(
        {
            "id": "check",
            "notify": "coordinating_office",
            "after": {"working_hours": 16},
            "while": "acknowledged",
        }
    )
    assert plan(policy, clock(), sh(9, 30, 10)) == ([], None)  # re-planned when acknowledged
    # acknowledged before its time: due at its time
    assert plan(policy, clock(acknowledged_at=sh(9, 26, 10)), sh(9, 26, 10)) == (
        [],
        sh(9, 27, 12),
    )
    # acknowledged after its time: due at the acknowledgement
    assert plan(policy, clock(acknowledged_at=sh(9, 30, 10)), sh(9, 30, 10)) == (
        [("check", sh(9, 30, 10))],
        None,
    )


def test_a_step_since_any_runs_even_after_acknowledgement() -> None:
    policy = steps_policy(
        {"id": "office", "notify": "coordinating_office", "after": {"working_days": 1}}
    )
    assert plan(policy, clock(acknowledged_at=sh(9, 25, 15)), sh(9, 26, 14)) == (
        [("office", sh(9, 26, 14))],
        None,
    )


def test_a_repeat_after_acknowledgement_in_working_days() -> None:
    policy = steps_policy(
        {
            "id": "nudge-office",
            "notify": "coordinating_office",
            "every": {"working_days": 2},
            "since": "acknowledged",
            "while": "acknowledged",
        }
    )
    acknowledged = sh(9, 26, 10)  # Thursday
    alert = clock(acknowledged_at=acknowledged)
    # first one period after the acknowledgement: Friday 27, Sunday 29 (调休)
    assert plan(policy, alert, sh(9, 26, 11)) == ([], sh(9, 29, 10))
    assert plan(policy, alert, sh(9, 29, 10)) == ([("nudge-office", sh(9, 29, 10))], sh(10, 8, 10))
    executed = clock({"nudge-office": [sh(9, 29, 10)]}, acknowledged)
    assert plan(policy, executed, sh(10, 3, 10)) == ([], sh(10, 8, 10))
    assert plan(policy, executed, sh(10, 8, 10)) == (
        [("nudge-office", sh(10, 8, 10))],
        sh(10, 10, 10),
    )


def test_a_repeat_in_working_days_skips_missed_days() -> None:
    policy = steps_policy(
        {
            "id": "daily",
            "notify": "lead",
            "every": {"working_days": 1},
            "while": "unacknowledged",
        }
    )
    fired = sh(9, 27, 10)  # Friday: then 29, 30 September, 8 October ...
    alert = clock({"daily": [sh(9, 29, 10)]}, fired_at=fired)
    assert plan(policy, alert, sh(10, 8, 10)) == ([("daily", sh(10, 8, 10))], sh(10, 9, 10))


def test_an_explicit_after_starts_a_repeat_at_once() -> None:
    policy = steps_policy(
        {
            "id": "sms",
            "notify": "lead",
            "after": {"working_hours": 0},
            "every": {"working_hours": 4},
            "while": "unacknowledged",
        }
    )
    assert plan(policy, clock(), FIRED) == ([("sms", FIRED)], sh(9, 25, 18))
    assert plan(policy, clock({"sms": [FIRED]}), sh(9, 25, 18)) == (
        [("sms", sh(9, 25, 18))],
        sh(9, 26, 13),
    )


def test_walking_from_one_answer_to_the_next_executes_the_expected_schedule(
    policy: EscalationPolicy,
) -> None:
    """The service's loop: execute what is due, sleep until the answered moment, repeat."""
    acknowledged = sh(9, 30, 12)
    done: dict[str, list[datetime]] = {}
    now: datetime | None = FIRED
    while now is not None:
        ack = acknowledged if now >= acknowledged else None
        due, next_at = due_steps(policy, clock(done, ack), now, CAL)
        for item in due:
            done.setdefault(item.step.id, []).append(now)
        if ack is None and (next_at is None or next_at > acknowledged):
            next_at = acknowledged  # the acknowledgement re-plans the alert
        assert next_at is None or next_at > now
        now = next_at
    assert done == {
        "lead": [FIRED],
        "co": [FIRED],
        # 8, 16, 24, 32 working hours; 40 would be 30 September 18:00, after acknowledgement
        "lead-again": [sh(9, 26, 13), sh(9, 27, 12), sh(9, 29, 11), sh(9, 30, 10)],
        "office": [sh(9, 27, 12)],
        # 5 working days after 30 September 12:00: 8-11 October and the make-up Saturday 12
        "office-stuck": [sh(10, 12, 12)],
    }


@settings(max_examples=60, deadline=None, database=None)
@given(
    polls=st.lists(st.integers(min_value=0, max_value=20 * 24 * 60), min_size=1, max_size=40),
    acknowledge_after=st.one_of(st.none(), st.integers(min_value=0, max_value=20 * 24 * 60)),
)
def test_polling_at_any_moments_never_executes_twice_per_occurrence(
    polls: list[int], acknowledge_after: int | None
) -> None:
    """However often and whenever the planner is asked, a one-off step runs at most once, a
    repeat at most once per period, nothing runs before it is due, and `unacknowledged` steps
    never run after the acknowledgement."""
    policy = load_policies(REPO_POLICIES).default
    acknowledged = (
        None if acknowledge_after is None else FIRED + timedelta(minutes=acknowledge_after)
    )
    done: dict[str, list[datetime]] = {}
    due_times: dict[str, list[datetime]] = {}
    for minutes in sorted(polls):
        now = FIRED + timedelta(minutes=minutes)
        ack = acknowledged if acknowledged is not None and acknowledged <= now else None
        due, next_at = due_steps(policy, clock(done, ack), now, CAL)
        assert next_at is None or next_at > now
        for item in due:
            assert item.due_at <= now
            if item.step.while_ is While.UNACKNOWLEDGED:
                assert ack is None
            done.setdefault(item.step.id, []).append(now)
            due_times.setdefault(item.step.id, []).append(item.due_at)
    for step in policy.steps:
        times = due_times.get(step.id, [])
        if step.every is None:
            assert len(times) <= 1
        else:
            assert len(times) == len(set(times))  # one execution per occurrence
