"""Alert messages from templates: every event and colour, the three roles, digests, and the
budgets (SMS parts, WeCom bytes). Pure rendering: no database, broker or clock."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest
from duban_shared.events import Level, StallReason
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader, PackageLoader, UndefinedError
from notifier.adapters.render import AlertView, Renderer, render
from notifier.domain.sms_segments import analyze

TITLE = "加强林业数字化应用"
URL = "https://duban.zhaoqing.example.cn/v1/ack/eyJhIjoiMzUifQ.c2lnbmF0dXJl"
SHORT_URL = "https://d.example.cn/a/X7"  # a short link: one SMS part still has room for it
FIRED = datetime(2024, 10, 22, 1, 30, tzinfo=UTC)  # 09:30 in Zhaoqing
FOOTER = "—— 督办系统(自动发送,请勿回复)\n"
OFFICE = "市政务服务和数据管理局"


def _alert(**changes: object) -> AlertView:
    alert = AlertView(
        work_point_id="zhaoqing-digital-2024/35",
        number=35,
        title=TITLE,
        level=Level.RED,
        previous_level=None,
        reasons=(StallReason.BLOCKED,),
        event="fired",
        silent_working_days=None,
        note="林分优化用地审批未完成",
        lead_agencies=("市林业局",),
        fired_at=FIRED,
        ack_url=URL,
    )
    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]


def _point(number: int, level: Level, **changes: object) -> AlertView:
    reasons = {
        Level.RED: (StallReason.BLOCKED,),
        Level.YELLOW: (StallReason.BEHIND_PACE,),
        Level.BLUE: (StallReason.DUE_SOON,),
        Level.GREEN: (),
    }[level]
    defaults: dict[str, object] = {
        "work_point_id": f"zhaoqing-digital-2024/{number}",
        "number": number,
        "title": f"第{number}号工作要点",
        "level": level,
        "reasons": reasons,
        "note": None,
        "lead_agencies": (OFFICE,),
        "ack_url": f"https://duban.zhaoqing.example.cn/v1/ack/wp{number}",
    }
    return _alert(**(defaults | changes))


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
    out = render([_alert(number=5)], recipient_name="市林业局", role="lead")
    assert out.subject == f"【督办提醒】第五项“{TITLE}”进展停滞"


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


def _fifteen() -> list[AlertView]:
    """Five reds (7, 16, 22, 35, 50), five yellows, five blues, in no particular order."""
    red, yellow, blue = Level.RED, Level.YELLOW, Level.BLUE
    levels = {50: red, 35: red, 5: yellow, 12: yellow, 7: red, 41: yellow, 3: yellow, 22: red}
    levels |= {18: blue, 9: blue, 30: blue, 44: yellow, 1: blue, 27: blue, 16: red}
    return [_point(n, level) for n, level in levels.items()]


def test_a_digest_of_fifteen_is_one_message_reddest_first_then_by_number() -> None:
    alerts = _fifteen()
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
    alerts = _fifteen()
    out = render(alerts, recipient_name=OFFICE, role="lead")
    assert out.sms.startswith("您单位有15项工作需关注:第七项(红)、第十六项(红)、第二十二项(红)")
    top = "https://duban.zhaoqing.example.cn/v1/ack/wp7"
    assert out.sms.endswith(f"确认第七项已知悉:{top}") and out.sms_has_link
    assert "…" in out.sms  # not all fifteen fit
    assert out.sms_segments == analyze(out.sms).segments <= 2


def test_a_digest_link_for_all_replaces_the_top_items_link() -> None:
    url = "https://duban.zhaoqing.example.cn/v1/ack/digest"
    out = render(_fifteen(), recipient_name=OFFICE, role="lead", digest_url=url)
    assert out.sms.endswith(f"。确认已知悉:{url}")
    out4 = render(_fifteen(), recipient_name=OFFICE, role="lead", max_sms_segments=4)
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


# --- SMS budget --------------------------------------------------------------------------


def test_seventy_chinese_characters_are_one_part_and_seventy_one_are_two() -> None:
    assert analyze("督" * 70).segments == 1
    assert analyze("督" * 71).segments == 2
    assert analyze("督" * 134).segments == 2
    assert analyze("督" * 135).segments == 3


@pytest.mark.parametrize(("title_length", "segments"), [(57, 1), (58, 2)])
def test_the_rendered_sms_is_counted_as_the_provider_counts_it(
    title_length: int, segments: int
) -> None:
    # 第三十五项 + “title” + 已恢复正常 + 。 is 13 characters besides the title.
    alert = _alert(event="recovered", level=Level.GREEN, title="督" * title_length)
    out = render([alert], recipient_name="市林业局", role="lead")
    assert len(out.sms) == 13 + title_length
    assert out.sms_segments == segments


def test_a_long_note_is_cut_in_the_middle_and_the_link_stays_whole() -> None:
    out = render([_alert(note="用地审批" * 500)], recipient_name="市林业局", role="lead")
    assert out.sms_segments == analyze(out.sms).segments == 2
    assert out.sms.startswith(
        f"第三十五项“{TITLE}”进展停滞,原因:牵头或责任单位报告工作受阻,报送说明(报送单位原文):「"
    )
    assert out.sms.endswith(f"…」。确认已知悉:{URL}")  # cut inside its quotation marks
    one = render(
        [_alert(note="用地审批" * 500, ack_url=SHORT_URL)],
        recipient_name="市林业局",
        role="lead",
        max_sms_segments=1,
    )
    assert one.sms_segments == 1 and one.sms.endswith(f"。确认已知悉:{SHORT_URL}")
    assert "报送说明" not in one.sms  # no room for the quotation: left out, not half-opened
    two = render(
        [_alert(note="用地审批" * 500, ack_url=SHORT_URL)],
        recipient_name="市林业局",
        role="lead",
        max_sms_segments=2,
    )
    assert two.sms.endswith(f"…」。确认已知悉:{SHORT_URL}")
    # The email keeps 500 characters of it, in lines of 60, and says the rest was left out.
    kept = ("｜ " + "用地审批" * 15 + "\n") * 8 + "｜ " + "用地审批" * 5 + "…(原文过长,以下从略)\n"
    assert kept in out.text


def test_a_long_title_is_shortened_after_the_details() -> None:
    out = render(
        [_alert(title="数" * 100, ack_url=SHORT_URL)],
        recipient_name="市林业局",
        role="lead",
        max_sms_segments=1,
    )
    assert out.sms_segments == 1 and out.sms.endswith(f"。确认已知悉:{SHORT_URL}")
    assert out.sms.startswith("第三十五项“数") and "…”进展停滞。" in out.sms
    assert "原因" not in out.sms


def test_a_link_that_cannot_fit_is_left_out_never_cut() -> None:
    # A signed link of the notifier's current shape is about 210 characters: in a Chinese SMS
    # each costs a UCS-2 unit, more than two parts (134) hold.
    long_url = "http://127.0.0.1:8003/v1/ack/." + "eJwVizEOwjAMAP" * 13
    assert len(long_url) > 134
    out = render([_alert(ack_url=long_url)], recipient_name="市林业局", role="lead")
    assert not out.sms_has_link and "http" not in out.sms
    assert out.sms.endswith("。请登录督办系统确认已知悉。") and out.sms_segments <= 2
    assert f"确认已知悉请点击:{long_url}" in out.text  # the email still has it
    roomy = render(
        [_alert(ack_url=long_url)], recipient_name="市林业局", role="lead", max_sms_segments=4
    )
    assert roomy.sms_has_link and roomy.sms.endswith(long_url)


@settings(max_examples=60, deadline=None)
@given(
    title=st.text(alphabet="数字肇庆林业ab1 ", min_size=1, max_size=120),
    note=st.none() | st.text(alphabet="审批用地\n ,;xyz€", max_size=400),
    path=st.text(alphabet="abcXYZ019-_.", min_size=1, max_size=120),
    max_segments=st.integers(min_value=1, max_value=4),
    reasons=st.lists(st.sampled_from(list(StallReason)), min_size=1, max_size=6, unique=True),
)
def test_an_sms_never_exceeds_its_budget_and_a_link_in_it_is_whole(
    title: str, note: str | None, path: str, max_segments: int, reasons: list[StallReason]
) -> None:
    url = f"https://d.example.cn/{path}"
    alert = _alert(
        title=title, note=note, ack_url=url, reasons=tuple(reasons), silent_working_days=3
    )
    for role in ("lead", "co", "office"):
        out = render([alert], recipient_name="x", role=role, max_sms_segments=max_segments)
        assert out.sms_segments == analyze(out.sms).segments <= max_segments
        if out.sms_has_link:
            assert out.sms.endswith(url)
        else:
            assert "https://" not in out.sms


# --- WeCom markdown ----------------------------------------------------------------------


def test_a_digest_of_fifty_fits_a_wecom_message_most_urgent_first() -> None:
    levels = [Level.BLUE, Level.RED, Level.YELLOW]
    alerts = [
        _point(n, levels[n % 3], note="说明" * 50, lead_agencies=("市林业局", "市自然资源局"))
        for n in range(1, 51)
    ]
    out = render(alerts, recipient_name=OFFICE, role="office")
    size = len(out.markdown.encode("utf-8"))
    assert size <= 4096
    assert out.markdown.startswith("### 【督办提醒】有50项工作需关注\n1. **第一项“第1号工作要点”**")
    shown = len(re.findall(r"^\d+\. \*\*", out.markdown, re.M))
    assert 0 < shown < 50
    assert f"另有 {50 - shown} 项未列出" in out.markdown
    assert '<font color="comment">蓝色(预警)</font>' not in out.markdown  # blues are the rest
    assert out.markdown.count("[确认已知悉](https://") == shown


def test_one_alerts_markdown_has_colour_and_stays_within_4096_bytes() -> None:
    out = render([_alert(note="审批" * 1000)], recipient_name="市林业局", role="lead")
    assert len(out.markdown.encode("utf-8")) <= 4096
    assert out.markdown.startswith(f"### 【督办提醒】第三十五项“{TITLE}”进展停滞\n")
    assert '> 状态:<font color="warning">红色(停滞)</font>' in out.markdown
    assert "…" in out.markdown and f"[确认已知悉]({URL})" in out.markdown
    blue = render(
        [_alert(level=Level.BLUE, reasons=(StallReason.DUE_SOON,))], recipient_name="x", role="lead"
    )
    assert '<font color="comment">蓝色(预警)</font>' in blue.markdown


def test_values_cannot_inject_markup_into_a_group_message() -> None:
    note = '已完成<font color="info">绿色</font>\n### 标题 [点此](https://evil.example.com) **粗**'
    out = render([_alert(note=note, title="林业`代码`")], recipient_name="市林业局", role="lead")
    assert '<font color="info">绿色' not in out.markdown
    assert "](https://evil" not in out.markdown and "\n### 标题" not in out.markdown
    assert "**粗**" not in out.markdown and "`代码`" not in out.markdown
    assert "＜font" in out.markdown  # still readable, in full-width look-alikes
    # The plain-text email keeps the markup as text, quoted line by line, the link defanged.
    assert '｜ 已完成<font color="info">绿色</font>\n' in out.text
    assert "｜ ### 标题 [点此](hxxps://evil[.]example[.]com) **粗**\n" in out.text


# --- templates ---------------------------------------------------------------------------


def test_an_unknown_reason_or_level_stops_the_message_instead_of_a_blank() -> None:
    with pytest.raises(UndefinedError):
        render([_alert(reasons=("stolen",))], recipient_name="市林业局", role="lead")
    with pytest.raises(UndefinedError):
        render([_alert(level="purple")], recipient_name="市林业局", role="lead")


@pytest.mark.parametrize(
    "template",
    [
        "{{ recipient }}:{{ a.title }}",  # a misspelt variable
        "{{ recipient_name }}:{{ a.phone }}",  # a field the renderer does not have
    ],
)
def test_a_template_naming_a_missing_field_is_an_error(template: str) -> None:
    edited = ChoiceLoader(
        [DictLoader({"alert.txt.j2": template}), PackageLoader("notifier", "templates")]
    )
    with pytest.raises(UndefinedError):
        Renderer(edited).render([_alert()], recipient_name="市林业局", role="lead")


def test_an_operator_can_reword_a_template() -> None:
    edited = ChoiceLoader(
        [
            DictLoader({"alert.subject.j2": "【请阅】{{ a.number_cn }}"}),
            PackageLoader("notifier", "templates"),
        ]
    )
    out = Renderer(edited).render([_alert()], recipient_name="市林业局", role="lead")
    assert out.subject == "【请阅】三十五"


def test_a_message_holds_only_what_it_was_given() -> None:
    # The renderer sees names, never contacts: no field could carry a number or an address.
    assert {f.name for f in dataclasses.fields(AlertView)} == {
        "work_point_id", "number", "title", "level", "previous_level", "reasons", "event",
        "silent_working_days", "note", "lead_agencies", "fired_at", "ack_url", "note_author",
    }  # fmt: skip
    outputs = []
    for role in ("lead", "co", "office"):
        for alerts in ([_alert(event="escalated")], _fifteen()):
            out = render(
                alerts, recipient_name="市林业局", role=role, now=FIRED + timedelta(days=1)
            )
            outputs += [out.subject, out.text, out.sms, out.markdown]
    everything = "\n".join(outputs)
    assert "@" not in everything
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", everything)  # no mobile number
    assert set(re.findall(r"https?://\S+?(?=[\s)]|$)", everything)) <= {
        URL,
        *(a.ack_url for a in _fifteen()),
    }
