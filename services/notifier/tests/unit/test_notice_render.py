"""Supervision notice messages (notifier.adapters.notice_render) and the policy's notice steps."""

from __future__ import annotations

from datetime import datetime

import pytest
from notifier.adapters.notice_render import NoticeView, render_notices
from notifier.domain.policy import NOTICE_STEPS, EscalationPolicy

DUE = datetime.fromisoformat("2024-10-09T00:00:00+08:00")  # the reply was due on Tue 8 Oct


def view(event: str, **changes: object) -> NoticeView:
    fields: dict[str, object] = {
        "number": "督办〔2024〕7号",
        "code": "35",
        "title": "加强林业数字化应用",
        "event": event,
        "reply_due": DUE,
        "reason": "进度滞后 <b>(整改要求:说明原因)",
        "lead_agencies": ("市林业局",),
    }
    return NoticeView(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_lead_is_told_the_number_the_work_point_and_the_last_day() -> None:
    rendered = render_notices([view("notice_issued")], recipient_name="市林业局", role="lead")
    assert rendered.subject == "【督办通知】督办〔2024〕7号 第三十五项“加强林业数字化应用”"
    assert "请于2024年10月8日前(含当日)反馈办理情况" in rendered.text
    assert "督办事由:进度滞后" in rendered.text
    assert rendered.sms.startswith("【督办】督办单督办〔2024〕7号")
    assert rendered.sms_segments <= 2
    assert "<b>" not in rendered.markdown


def test_the_office_hears_of_an_overdue_notice_with_its_lead() -> None:
    rendered = render_notices(
        [view("notice_overdue")], recipient_name="市政务服务数据管理局", role="office"
    )
    assert rendered.subject.startswith("【督办逾期】督办〔2024〕7号")
    assert "牵头单位:市林业局" in rendered.text
    assert "要求于2024年10月8日前反馈,至今未收到反馈" in rendered.text


def test_a_long_sms_is_cut_to_its_budget_and_an_unknown_event_refused() -> None:
    long = view("notice_issued", title="很长的标题" * 60)
    assert (
        render_notices([long], recipient_name="", role="lead", max_sms_segments=1).sms_segments == 1
    )
    with pytest.raises(ValueError, match="unknown notice event"):
        view("fired")


def test_a_policy_without_notice_steps_escalates_notices_to_the_office_at_once() -> None:
    policy = EscalationPolicy.model_validate({"steps": [{"id": "lead", "notify": "lead"}]})
    assert policy.notice_steps == NOTICE_STEPS
    assert [s.id for s in policy.for_notices().steps] == [
        "notice-office",
        "notice-lead",
        "notice-office-again",
    ]
    assert policy.for_notices().steps[0].first_wait.is_zero
