"""Supervision notice rules (progress.domain.notices), checked by hand against the official
calendar: issued on Fri 27 Sep 2024, 3 working days to reply are Sun 29 Sep (调休), Mon 30 Sep
and — after the National Day holiday, 1-7 Oct — Tue 8 Oct. The reply is late from Wed 9 Oct
00:00 in Beijing."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from duban_shared.workdays import OFFICIAL
from progress.domain import notices as rules

ISSUED_AT = datetime.fromisoformat("2024-09-27T15:00:00+08:00")


def test_the_reply_is_due_on_the_working_day_calendar_across_national_day() -> None:
    due_on = rules.reply_due_on(ISSUED_AT, 3, OFFICIAL)
    assert due_on == date(2024, 10, 8)
    assert rules.reply_due_at(due_on) == datetime.fromisoformat("2024-10-09T00:00:00+08:00")
    # One working day: the 调休 Sunday counts.
    assert rules.reply_due_on(ISSUED_AT, 1, OFFICIAL) == date(2024, 9, 29)


def test_the_day_of_issue_is_counted_in_beijing_not_utc() -> None:
    # 01:00 in Beijing on Mon 30 Sep is still Sunday 29 Sep in UTC.
    early = datetime.fromisoformat("2024-09-30T01:00:00+08:00")
    assert rules.reply_due_on(early, 1, OFFICIAL) == date(2024, 10, 8)


def test_a_deadline_outside_one_to_thirty_working_days_is_refused() -> None:
    for days in (0, 31):
        with pytest.raises(ValueError, match=r"1\.\.30"):
            rules.reply_due_on(ISSUED_AT, days, OFFICIAL)


def test_only_an_issued_notice_past_its_deadline_becomes_overdue() -> None:
    due = datetime.fromisoformat("2024-10-09T00:00:00+08:00")
    before = datetime.fromisoformat("2024-10-08T23:59:59+08:00")
    assert not rules.is_overdue(rules.ISSUED, due, before)
    assert rules.is_overdue(rules.ISSUED, due, due)
    for state in (rules.REPLIED, rules.OVERDUE, rules.CLOSED, rules.WITHDRAWN):
        assert not rules.is_overdue(state, due, due)


def test_the_number_names_the_year_and_the_sequence() -> None:
    assert rules.notice_number(2024, 7) == "督办〔2024〕7号"


@pytest.mark.parametrize("state", [rules.ISSUED, rules.OVERDUE])
def test_an_open_notice_takes_a_reply_and_a_withdrawal(state: str) -> None:
    rules.check_reply(state, "督办〔2024〕1号")
    rules.check_withdraw(state, "督办〔2024〕1号")
    rules.check_close(state, "督办〔2024〕1号")


@pytest.mark.parametrize("state", [rules.REPLIED, rules.CLOSED, rules.WITHDRAWN])
def test_a_notice_no_longer_open_refuses_a_reply_in_chinese(state: str) -> None:
    with pytest.raises(rules.NoticeRefused) as refused:
        rules.check_reply(state, "督办〔2024〕1号")
    assert refused.value.code == "notice_not_open"
    assert "督办〔2024〕1号" in refused.value.message
    assert rules.STATE_NAMES[state] in refused.value.message
    with pytest.raises(rules.NoticeRefused):
        rules.check_withdraw(state, "督办〔2024〕1号")


def test_a_replied_notice_may_be_closed_but_not_twice() -> None:
    rules.check_close(rules.REPLIED, "督办〔2024〕1号")
    for state in (rules.CLOSED, rules.WITHDRAWN):
        with pytest.raises(rules.NoticeRefused) as refused:
            rules.check_close(state, "督办〔2024〕1号")
        assert refused.value.code == "notice_finished"
