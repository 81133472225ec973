"""Circulars' pure rules: period keys, the schedule on the working-day calendar, the 红黄榜, the
changes since the previous circular, and the files read back."""

from __future__ import annotations

import io
import uuid
from datetime import date, datetime

from docx import Document
from duban_shared.workdays import SHANGHAI, WorkingCalendar
from openpyxl import load_workbook
from progress.adapters.circular_files import render_docx, render_xlsx
from progress.domain.circulars import (
    AgencyRow,
    CardLine,
    Kind,
    PointLine,
    compose,
    days_overdue,
    document_number,
    due_periods,
    honour_list,
    period_key,
    red_list,
    scheduled_moment,
    yellow_list,
)

CALENDAR = WorkingCalendar()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_period_keys_are_iso_weeks_and_months() -> None:
    assert period_key(Kind.WEEKLY, date(2024, 9, 2)) == "2024-W36"
    assert period_key(Kind.WEEKLY, date(2024, 9, 8)) == "2024-W36"  # Sunday: same ISO week
    assert period_key(Kind.WEEKLY, date(2024, 12, 30)) == "2025-W01"  # ISO year
    assert period_key(Kind.MONTHLY, date(2024, 9, 30)) == "2024-09"


def test_the_schedule_is_the_first_working_day_at_nine() -> None:
    # Week of 30 September 2024: Monday works, 1-7 October is the National Day holiday.
    assert scheduled_moment(Kind.WEEKLY, date(2024, 10, 3), CALENDAR) == at("2024-09-30T09:00")
    # October 2024: its first working day is 8 October.
    assert scheduled_moment(Kind.MONTHLY, date(2024, 10, 20), CALENDAR) == at("2024-10-08T09:00")
    # Week of 7 October: Monday is a holiday, Tuesday the first working day.
    assert scheduled_moment(Kind.WEEKLY, date(2024, 10, 7), CALENDAR) == at("2024-10-08T09:00")


def test_due_periods_start_at_the_moment() -> None:
    both = (Kind.WEEKLY, Kind.MONTHLY)
    assert due_periods(at("2024-10-08T08:59"), CALENDAR, both) == []
    assert due_periods(at("2024-10-08T09:00"), CALENDAR, both) == [
        (Kind.WEEKLY, "2024-W41"),
        (Kind.MONTHLY, "2024-10"),
    ]
    # Later in the week the period is still due (a process down at 09:00 catches up).
    assert due_periods(at("2024-10-10T15:00"), CALENDAR, (Kind.WEEKLY,)) == [
        (Kind.WEEKLY, "2024-W41")
    ]


def test_number_and_days_overdue() -> None:
    assert document_number("肇数督通", 2024, 3) == "肇数督通〔2024〕3号"
    assert days_overdue(date(2024, 9, 1), date(2024, 9, 11)) == 10
    assert days_overdue(date(2024, 9, 30), date(2024, 9, 11)) == 0
    assert days_overdue(None, date(2024, 9, 11)) == 0


def row(name: str, **figures: object) -> AgencyRow:
    base: dict[str, object] = {
        "agency_id": name,
        "name": name,
        "lead_of": 1,
        "reports": 10,
        "reports_on_time": 10,
        "on_time_rate": 1.0,
        "stalled": 0,
        "red": 0,
        "yellow": 0,
        "overdue": 0,
        "days_overdue": 0,
        "silent_now": 0,
    }
    return AgencyRow(**{**base, **figures})  # type: ignore[arg-type]


def test_red_list_by_red_count_then_days_overdue_then_name() -> None:
    rows = [
        row("甲", red=1, stalled=1, days_overdue=3),
        row("乙", red=2, stalled=2),
        row("丙", red=1, stalled=1, days_overdue=9),
        row("丁", red=1, stalled=1, days_overdue=3),
        row("戊", yellow=1, stalled=1),
    ]
    assert [r.name for r in red_list(rows)] == ["乙", "丙", "丁", "甲"]


def test_yellow_list_leaves_out_the_red_and_ranks_by_yellow_then_lower_rate() -> None:
    rows = [
        row("甲", red=1, yellow=3, stalled=4),
        row("乙", yellow=1, stalled=1, on_time_rate=0.8),
        row("丙", yellow=1, stalled=1, on_time_rate=0.5),
        row("丁", yellow=2, stalled=2),
    ]
    assert [r.name for r in yellow_list(rows)] == ["丁", "丙", "乙"]


def test_honour_list_is_all_green_with_a_rate_of_ninety_percent() -> None:
    rows = [
        row("甲", on_time_rate=0.9),
        row("乙", on_time_rate=0.899),
        row("丙", on_time_rate=1.0),
        row("丁", on_time_rate=1.0, stalled=1),  # a blue work point is not all green
        row("戊", on_time_rate=None, reports=0),  # never reported
        row("己", lead_of=0),  # co-responsible only
    ]
    assert [r.name for r in honour_list(rows)] == ["丙", "甲"]


def test_compose_counts_changes_and_renders_both_files() -> None:
    forestry, water = uuid.uuid4(), uuid.uuid4()
    points = [
        PointLine("1", "智慧林业", "red", ["overdue"], None, date(2024, 9, 1), ["市林业局"],
                  [forestry], 10),
        PointLine("2", "智慧水务", "green", [], None, None, ["市水务局"], [water], 0),
        PointLine("3", "智慧农业", "yellow", ["behind_pace"], None, None, ["市林业局"],
                  [forestry], 0),
    ]  # fmt: skip
    cards = [
        CardLine(forestry, "市林业局", 2, 4, 2, 0.5, {"red": 1, "yellow": 1}, 0),
        CardLine(water, "市水务局", 1, 5, 5, 1.0, {}, 0),
    ]
    content = compose(
        plan_slug="p",
        plan_title="数字肇庆2024年工作要点",
        kind=Kind.WEEKLY,
        period="2024-W37",
        now=at("2024-09-11T09:00"),
        totals={
            "work_points": 3,
            "by_level": {"green": 1, "blue": 0, "yellow": 1, "red": 1},
            "by_reason": {"overdue": 1, "behind_pace": 1},
            "in_review": 0,
            "closed": 0,
        },
        cards=cards,
        points=points,
        previous_colours={"1": "yellow", "2": "green", "3": "yellow"},
        previous_number="肇数督通〔2024〕1号",
    )
    assert content.red_list == [str(forestry)]
    assert content.honour_list == [str(water)]
    assert content.agency(str(forestry)).overdue == 1
    assert content.agency(str(forestry)).days_overdue == 10
    assert [(c.code, c.before, c.after) for c in content.changes] == [("1", "yellow", "red")]
    assert [p.code for p in content.red_points] == ["1"]

    docx = Document(io.BytesIO(render_docx(content, "肇数督通〔2024〕2号", date(2024, 9, 11))))
    text = "\n".join(p.text for p in docx.paragraphs)
    assert "肇数督通〔2024〕2号" in text
    assert "一、总体情况" in text and "五、与上期相比的变化" in text
    assert "红榜：1. 市林业局。" in text and "表扬榜：1. 市水务局。" in text
    assert "已超期10天" in text and "2024年9月11日" in text
    assert "肇庆市政务服务数据管理局督查督办室" in text  # the default issuer
    other = Document(io.BytesIO(render_docx(content, "x", date(2024, 9, 11), "某市督查室")))
    assert other.paragraphs[-2].text == "某市督查室"
    section = docx.sections[0]
    assert round(section.page_width.mm) == 210 and round(section.top_margin.mm) == 37

    book = load_workbook(io.BytesIO(render_xlsx(content, "肇数督通〔2024〕2号")))
    assert book.sheetnames == ["概况", "单位", "红色事项", "变化"]
    agencies = list(book["单位"].iter_rows(min_row=2, values_only=True))
    assert agencies[0][0] == "市林业局" and agencies[0][-1] == "红榜"
    changes = list(book["变化"].iter_rows(min_row=2, values_only=True))
    assert [c[0] for c in changes] == ["1"]
