"""Alert messages within their budgets (SMS parts, WeCom bytes) and the templates' own rules.
Pure rendering: no database, broker or clock."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from duban_shared.events import Level, StallReason
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader, PackageLoader, UndefinedError
from notifier.adapters.render import AlertView, Renderer, render
from notifier.domain.sms_segments import analyze

from services.notifier.tests.unit.alert_views import (
    FIRED,
    OFFICE,
    SHORT_URL,
    TITLE,
    URL,
    fifteen,
)
from services.notifier.tests.unit.alert_views import alert_view as _alert
from services.notifier.tests.unit.alert_views import point as _point

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
        for alerts in ([_alert(event="escalated")], fifteen()):
            out = render(
                alerts, recipient_name="市林业局", role=role, now=FIRED + timedelta(days=1)
            )
            outputs += [out.subject, out.text, out.sms, out.markdown]
    everything = "\n".join(outputs)
    assert "@" not in everything
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", everything)  # no mobile number
    assert set(re.findall(r"https?://\S+?(?=[\s)]|$)", everything)) <= {
        URL,
        *(a.ack_url for a in fifteen()),
    }
