"""Alert messages from templates: every event and colour, the three roles and digests. Pure
rendering: no database, broker or clock (the budgets are test_render_budgets.py's)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from duban_shared.events import Level, StallReason
from notifier.adapters.render import render
from notifier.domain.sms_segments import analyze

from services.notifier.tests.unit.alert_views import (
    FIRED,
    FOOTER,
    OFFICE,
    TITLE,
    URL,
    fifteen,
)
from services.notifier.tests.unit.alert_views import alert_view as _alert
from services.notifier.tests.unit.alert_views import point as _point

# --- one alert: subjects and bodies ------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "reason", "subject", "state"),
    [
        (Level.RED, StallReason.BLOCKED, f"【督办提醒】第三十五项“{TITLE}”进展停滞", "停滞"),
        (
            Level.YELLOW,
            StallReason.BEHIND_PACE,
            f"【督办提醒】第三十五项“{TITLE}”进度滞后",
            "进度滞后",
        ),
        (
            Level.BLUE,
            StallReason.DUE_SOON,
            f"【督办提醒】第三十五项“{TITLE}”临近时限",
            "临近完成时限",
        ),
    ],
)
def test_a_fired_alert_names_the_item_and_its_colour_in_the_subject(
    level: Level, reason: StallReason, subject: str, state: str
) -> None:
    out = render([_alert(level=level, reasons=(reason,))], recipient_name="市林业局", role="lead")
    assert out.subject == subject
    assert f"您单位牵头的第三十五项“{TITLE}”已被判定为{state}。" in out.text


def test_a_fired_alert_says_why_quotes_the_note_and_carries_the_link() -> None:
    out = render([_alert()], recipient_name="市林业局", role="lead")
    assert out.text.startswith("市林业局:\n\n")
    assert "原因:牵头或责任单位报告工作受阻。" in out.text
    assert "【报送单位 报送说明,原文引用】\n｜ 林分优化用地审批未完成\n" in out.text
    assert "请尽快报送最新进展或说明困难。" in out.text
    assert f"确认已知悉请点击:{URL}\n" in out.text
    assert "工作要点编号:zhaoqing-digital-2024/35" in out.text
    assert out.text.endswith(FOOTER)
    assert "督办颜色" not in out.text  # a new alert has no colour change to tell
    assert "个工作日" not in out.text  # the silence count is for silent stalls only
    assert out.sms.startswith(f"第三十五项“{TITLE}”进展停滞")
    assert out.sms.endswith(f"确认已知悉:{URL}") and out.sms_has_link


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (StallReason.BLOCKED, "牵头或责任单位报告工作受阻"),
        (StallReason.OVERDUE, "已超过完成时限仍未办结"),
        (StallReason.SILENT, "牵头单位逾期未报送进展"),
        (StallReason.BEHIND_PACE, "进度或指标未达序时进度"),
        (StallReason.FLATLINE, "连续多次报送进度无变化"),
        (StallReason.DUE_SOON, "临近完成时限"),
    ],
)
def test_every_reason_is_said_in_words(reason: StallReason, words: str) -> None:
    out = render([_alert(reasons=(reason,))], recipient_name="市林业局", role="lead")
    assert f"原因:{words}。" in out.text
    assert words in out.sms and words in out.markdown


def test_reasons_are_listed_most_severe_first() -> None:
    out = render(
        [_alert(reasons=(StallReason.FLATLINE, StallReason.OVERDUE))],
        recipient_name="市林业局",
        role="lead",
    )
    assert "原因:已超过完成时限仍未办结;连续多次报送进度无变化。" in out.text


def test_a_silent_stall_counts_the_working_days_since_the_last_report() -> None:
    out = render(
        [_alert(reasons=(StallReason.SILENT,), silent_working_days=14, note=None)],
        recipient_name="市林业局",
        role="lead",
    )
    assert "原因:牵头单位逾期未报送进展。" in out.text
    assert "距上次报送已过 14 个工作日。" in out.text
    assert "报送说明" not in out.text
    assert "(已 14 个工作日未报送)" in out.sms


def test_a_level_change_tells_the_colour_before_and_after() -> None:
    out = render(
        [_alert(event="level_changed", previous_level=Level.YELLOW)],
        recipient_name="市林业局",
        role="lead",
    )
    assert out.subject == f"【督办提醒】第三十五项“{TITLE}”进展停滞"
    assert "督办颜色由黄色(滞后)调整为红色(停滞)。" in out.text
    assert "督办颜色由黄色(滞后)调整为红色(停滞)" in out.markdown


def test_a_reminder_says_the_earlier_one_is_unacknowledged() -> None:
    out = render([_alert(event="reminder")], recipient_name="市林业局", role="lead")
    assert out.subject == f"【督办提醒】第三十五项“{TITLE}”进展停滞(再次提醒)"
    assert "此前发出的督办提醒尚未确认,现再次提醒。" in out.text
    assert f"确认已知悉请点击:{URL}" in out.text


def test_an_escalation_to_the_office_names_the_leads_and_how_long_it_waited() -> None:
    out = render(
        [_alert(event="escalated", lead_agencies=("市林业局", "市自然资源局"))],
        recipient_name=OFFICE,
        role="office",
        now=FIRED + timedelta(days=3, hours=2),
    )
    assert out.subject == f"【督办升级】第三十五项“{TITLE}”进展停滞"
    assert out.text.startswith(f"{OFFICE}:\n\n")
    assert f"市林业局、市自然资源局牵头的第三十五项“{TITLE}”已被判定为停滞。" in out.text
    assert "督办提醒于10月22日 09:30发出,已 3 天未获牵头单位确认" in out.text
    assert "请督促牵头单位尽快报送最新进展或说明困难。" in out.text
    assert "督办提醒已 3 天未获确认" in out.sms
    assert "牵头单位:市林业局、市自然资源局" in out.markdown


def test_an_escalation_counts_hours_under_a_day_and_needs_no_clock() -> None:
    soon = render(
        [_alert(event="escalated")],
        recipient_name=OFFICE,
        role="office",
        now=FIRED + timedelta(hours=5, minutes=40),
    )
    assert "已 5 小时未获牵头单位确认" in soon.text
    undated = render([_alert(event="escalated")], recipient_name=OFFICE, role="office")
    assert "督办提醒于10月22日 09:30发出,至今未获牵头单位确认" in undated.text


def test_a_recovery_lifts_the_reminder_and_offers_no_link() -> None:
    out = render(
        [_alert(event="recovered", level=Level.GREEN, previous_level=Level.RED)],
        recipient_name="市林业局",
        role="lead",
    )
    assert out.subject == f"【督办】第三十五项“{TITLE}”已恢复正常"
    assert f"您单位牵头的第三十五项“{TITLE}”已恢复正常推进,此前的督办提醒解除。" in out.text
    assert "原因" not in out.text and "督办颜色" not in out.text
    assert URL not in out.text + out.sms + out.markdown  # a resolved alert cannot be acknowledged
    assert out.text.endswith(FOOTER)
    assert out.sms == f"第三十五项“{TITLE}”已恢复正常。" and not out.sms_has_link
    assert '<font color="info">已恢复正常</font>' in out.markdown


def test_a_closure_gives_the_offices_note() -> None:
    out = render(
        [_alert(event="closed", level=Level.GREEN, note="验收通过", ack_url=None)],
        recipient_name="市林业局",
        role="lead",
    )
    assert out.subject == f"【督办】第三十五项“{TITLE}”已办结销号"
    assert f"您单位牵头的第三十五项“{TITLE}”经督办协调部门审核,已办结销号。" in out.text
    assert "【督办协调部门 审核意见,原文引用】\n｜ 验收通过\n" in out.text
    assert "报送说明" not in out.text
    assert out.sms == f"第三十五项“{TITLE}”已办结销号,审核意见(督办协调部门原文):「验收通过」。"


def test_a_work_point_number_is_written_in_chinese_numerals() -> None:
    five = _alert(number=5, work_point_id="zhaoqing-digital-2024/5")
    out = render([five], recipient_name="市林业局", role="lead")
    assert out.subject == f"【督办提醒】第五项“{TITLE}”进展停滞"


def test_a_dotted_code_is_written_as_it_is_in_every_channel() -> None:
    """A plan numbered per section: work point 3.2 is 第3.2项 in the email, the SMS and WeCom,
    whatever its ordinal."""
    point = _alert(number=9, work_point_id="some-plan-2025/3.2")
    out = render([point], recipient_name="市林业局", role="lead")
    assert out.subject == f"【督办提醒】第3.2项“{TITLE}”进展停滞"
    for body in (out.text, out.sms, out.markdown):
        assert "第3.2项" in body
        assert "第九项" not in body and "第9项" not in body


# --- roles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "relation", "action"),
    [
        ("lead", "您单位牵头的", "请尽快报送最新进展或说明困难。"),
        ("co", "您单位配合的", "请配合牵头单位尽快推进,并及时报送进展。"),
        ("office", "市林业局牵头的", "请督促牵头单位尽快报送最新进展或说明困难。"),
    ],
)
def test_the_role_says_how_the_recipient_relates_to_the_work_point(
    role: str, relation: str, action: str
) -> None:
    out = render([_alert()], recipient_name="某单位", role=role)
    assert f"{relation}第三十五项“{TITLE}”已被判定为停滞。" in out.text
    assert action in out.text
    assert ("牵头单位:市林业局" in out.sms) is (role != "lead")


def test_a_co_agency_is_told_who_leads() -> None:
    out = render([_alert()], recipient_name="市自然资源局", role="co")
    assert "牵头单位:市林业局。" in out.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "mayor"}, "unknown role"),
        ({"max_sms_segments": 0}, "max_sms_segments"),
        ({"digest_url": "javascript:alert(1)"}, "digest_url"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"recipient_name": "市林业局", "role": "lead"} | kwargs
    with pytest.raises(ValueError, match=message):
        render([_alert()], **args)  # type: ignore[arg-type]


def test_nothing_to_render_is_refused() -> None:
    with pytest.raises(ValueError, match="no alerts"):
        render([], recipient_name="市林业局", role="lead")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event": "opened"}, "unknown alert event"),
        ({"fired_at": datetime(2024, 10, 22, 9, 30)}, "aware"),
        ({"ack_url": "https://x.example.cn/ack/a b"}, "plain http"),
        ({"ack_url": "https://x.example.cn/ack/(x)"}, "plain http"),
    ],
)
def test_an_alert_that_would_make_a_wrong_message_is_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _alert(**changes)


# --- digests -----------------------------------------------------------------------------


def test_a_digest_of_fifteen_is_one_message_reddest_first_then_by_number() -> None:
    alerts = fifteen()
    out = render(alerts, recipient_name=OFFICE, role="lead")
    assert out.subject == "【督办提醒】您单位有15项工作需关注"
    assert out.text.startswith(f"{OFFICE}:\n\n您单位有15项工作需关注(红色5项、黄色5项、蓝色5项)")
    expected = sorted(alerts, key=lambda a: (-a.level.rank, a.number))
    listed = [int(n) for n in re.findall(r"^\d+\. 第.+?项“第(\d+)号工作要点”", out.text, re.M)]
    assert listed == [a.number for a in expected]
    assert listed[:5] == [7, 16, 22, 35, 50]  # the reds, by number
    for alert in alerts:
        assert f"确认已知悉请点击:{alert.ack_url}\n" in out.text
    assert out.text.count("工作要点编号:") == 15 and out.text.endswith(FOOTER)


def test_a_digest_sms_lists_items_by_urgency_within_budget_with_the_link_whole() -> None:
    alerts = fifteen()
    out = render(alerts, recipient_name=OFFICE, role="lead")
    assert out.sms.startswith("您单位有15项工作需关注:第七项(红)、第十六项(红)、第二十二项(红)")
    top = "https://duban.zhaoqing.example.cn/v1/ack/wp7"
    assert out.sms.endswith(f"确认第七项已知悉:{top}") and out.sms_has_link
    assert "…" in out.sms  # not all fifteen fit
    assert out.sms_segments == analyze(out.sms).segments <= 2


def test_a_digest_link_for_all_replaces_the_top_items_link() -> None:
    url = "https://duban.zhaoqing.example.cn/v1/ack/digest"
    out = render(fifteen(), recipient_name=OFFICE, role="lead", digest_url=url)
    assert out.sms.endswith(f"。确认已知悉:{url}")
    out4 = render(fifteen(), recipient_name=OFFICE, role="lead", max_sms_segments=4)
    assert out4.sms.count("项(") == 15 and "…" not in out4.sms  # all fit in four parts


def test_an_office_digest_of_escalations_names_the_leads() -> None:
    alerts = [
        _point(5, Level.RED, event="escalated", lead_agencies=("市林业局",)),
        _point(9, Level.YELLOW, event="escalated", lead_agencies=("市公安局",)),
    ]
    out = render(alerts, recipient_name=OFFICE, role="office", now=FIRED + timedelta(days=2))
    assert out.subject == "【督办升级】有2项工作督办提醒逾期未确认"
    assert "   牵头单位:市林业局\n" in out.text and "   牵头单位:市公安局\n" in out.text
    assert "督办提醒于10月22日 09:30发出,已 2 天未获确认。" in out.text
    mixed = render(
        [*alerts, _point(12, Level.BLUE, note="需求调研中")], recipient_name=OFFICE, role="office"
    )
    assert mixed.subject == "【督办升级】有3项工作需关注,其中2项督办提醒逾期未确认"
    assert "   【报送单位 报送说明,原文引用】\n   ｜ 需求调研中\n" in mixed.text  # with its item


def test_a_digest_of_resolved_alerts_lists_them_after_open_ones_or_alone() -> None:
    resolved = [
        _point(3, Level.GREEN, event="recovered"),
        _point(8, Level.GREEN, event="closed", note="验收通过"),
    ]
    alone = render(resolved, recipient_name=OFFICE, role="lead")
    assert alone.subject == "【督办】您单位有2项工作督办提醒解除"
    assert "已恢复正常1项、已办结销号1项" in alone.text
    assert "请尽快报送" not in alone.text and "确认已知悉" not in alone.text
    mixed = render([*resolved, _point(40, Level.BLUE)], recipient_name=OFFICE, role="lead")
    assert mixed.sms.startswith(
        "您单位有3项工作需关注:第四十项(蓝)、第三项(已恢复)、第八项(已销号)"
    )
