"""Supervision notices (督办单): their number, their reply deadline and their lifecycle.

issued ──reply──▶ replied ──close──▶ closed
  │  ▲                 (the office may also close an issued or overdue notice)
  │  └── reply (late) ── overdue ◀── the sweeper, once reply_due has passed
  └── withdraw (the office, while open) ──▶ withdrawn

Open (a reply is expected): issued and overdue. The rules are pure: no clock, no database.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from duban_shared.workdays import WorkingCalendar, local_day, start_of_local_day

ISSUED, REPLIED, OVERDUE, CLOSED, WITHDRAWN = "issued", "replied", "overdue", "closed", "withdrawn"
STATES = (ISSUED, REPLIED, OVERDUE, CLOSED, WITHDRAWN)
OPEN = (ISSUED, OVERDUE)
"""States in which the lead agency is expected to reply."""

STATE_NAMES = {
    ISSUED: "已下发",
    REPLIED: "已反馈",
    OVERDUE: "逾期未反馈",
    CLOSED: "已办结",
    WITHDRAWN: "已撤回",
}
"""What people see for each state."""

MAX_REPLY_WORKING_DAYS = 30


class NoticeRefused(Exception):
    """A state change the notice's state does not allow (HTTP 409), with a stable code and a
    message in Chinese saying what is possible instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def notice_number(year: int, seq: int) -> str:
    """The notice's number as printed: 督办〔2024〕7号."""
    return f"督办〔{year}〕{seq}号"


def reply_due_on(issued_at: datetime, working_days: int, calendar: WorkingCalendar) -> date:
    """The last day a reply is on time: `working_days` working days after the day of issue
    (that day not counted; Beijing time)."""
    if not 1 <= working_days <= MAX_REPLY_WORKING_DAYS:
        raise ValueError(f"working_days must be 1..{MAX_REPLY_WORKING_DAYS}")
    return calendar.add_working_days(local_day(issued_at), working_days)


def reply_due_at(due_on: date) -> datetime:
    """The moment a reply becomes late: the end of the last day (the next day's 00:00 in
    Beijing)."""
    return start_of_local_day(due_on + timedelta(days=1))


def is_overdue(state: str, due_at: datetime, now: datetime) -> bool:
    """Whether an issued notice is now late (an overdue one is not marked again)."""
    return state == ISSUED and now >= due_at


def check_reply(state: str, number: str) -> None:
    """Refuse a reply to a notice that is not open."""
    if state not in OPEN:
        raise NoticeRefused(
            "notice_not_open",
            f"督办单{number}当前状态为“{STATE_NAMES[state]}”,不再接受反馈;"
            "如需补充情况,请联系督办协调部门。",
        )


def check_close(state: str, number: str) -> None:
    """Refuse closing a notice already closed or withdrawn."""
    if state in (CLOSED, WITHDRAWN):
        raise NoticeRefused(
            "notice_finished",
            f"督办单{number}已{STATE_NAMES[state].removeprefix('已')},无需再次办结。",
        )


def check_withdraw(state: str, number: str) -> None:
    """Refuse withdrawing a notice that is no longer open (replied ones are closed instead)."""
    if state not in OPEN:
        raise NoticeRefused(
            "notice_not_open",
            f"督办单{number}当前状态为“{STATE_NAMES[state]}”,只有待反馈的督办单可以撤回;"
            "已反馈的请办结。",
        )
