"""Escalation policy files: the YAML format, read as meant, and an error message naming the
file, the line, the key and the fix for every mistake."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from datetime import time
from pathlib import Path

import pytest
from duban_shared.events import Level, StallReason
from notifier.adapters.policy_files import PolicyError, load_policies
from notifier.domain.policy import Channel, EscalationPolicy, Notify, Since, While
from notifier.domain.workhours import WorkingHours

REPO_POLICIES = Path(__file__).resolve().parents[4] / "data" / "escalation"

STEPS = """\
steps:
  - id: lead
    notify: lead
"""


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
        "working_hours, quiet_channels, urgent, group_window_minutes, steps, notice_steps)",
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
