"""A circular's files: the `.docx` in the official-document style and the `.xlsx` detail.

The `.docx` follows GB/T 9704-2012 where python-docx can: A4, margins 37/35/28/26 mm (top,
bottom, left, right), the title in 方正小标宋简体 22 pt (二号), the body in 仿宋_GB2312 16 pt
(三号), first-level headings 一、二、… in 黑体, the 文号 under the title, the date at the end.
The `.xlsx` has four sheets: 概况 (counts), 单位 (each agency, with its acknowledgement
times), 红色事项, 变化. Both print the acknowledgement rule (`progress.domain.acks`).
"""

from __future__ import annotations

import io
from datetime import date

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.text.paragraph import Paragraph
from openpyxl import Workbook
from openpyxl.styles import Font

from progress.domain.acks import hours_words
from progress.domain.circulars import (
    COLOUR_WORDS,
    KIND_WORDS,
    REASON_WORDS,
    Content,
    Kind,
    rate_words,
    reason_words,
)

TITLE_FONT = "方正小标宋简体"
BODY_FONT = "仿宋_GB2312"
HEADING_FONT = "黑体"
NUMERALS = "一二三四五六七八九十"
FIRST_COLUMN_MM = 44
ISSUER = "肇庆市政务服务数据管理局督查督办室"
"""The issuing office signed under a circular unless told otherwise."""
ACK_HEADER = ["单位", "本期预警", "已确认", "确认时长中位数（小时）", "未确认"]
"""The columns of the acknowledgement table (the .docx) and sheet (the .xlsx's 单位)."""


def chinese_date(day: date) -> str:
    """A date as documents write it: 2024年9月2日."""
    return f"{day.year}年{day.month}月{day.day}日"


def _run_font(paragraph: Paragraph, text: str, font: str, size: float, bold: bool = False) -> None:
    run = paragraph.add_run(text)
    run.font.name = font
    run.font.size = Pt(size)
    run.font.bold = bold
    fonts = run._element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), font)


def _body(document: object, text: str, *, indent: bool = True) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    if indent:
        paragraph.paragraph_format.first_line_indent = Pt(32)  # two characters
    paragraph.paragraph_format.line_spacing = Pt(28)
    _run_font(paragraph, text, BODY_FONT, 16)


def _heading(document: object, number: int, text: str) -> None:
    paragraph = document.add_paragraph()  # type: ignore[attr-defined]
    paragraph.paragraph_format.first_line_indent = Pt(32)
    paragraph.paragraph_format.line_spacing = Pt(28)
    _run_font(paragraph, f"{NUMERALS[number - 1]}、{text}", HEADING_FONT, 16)


def _table(document: object, header: list[str], rows: list[list[str]]) -> None:
    table = document.add_table(rows=1, cols=len(header))  # type: ignore[attr-defined]
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = ""
        _run_font(cell.paragraphs[0], text, HEADING_FONT, 10.5)
        cell.paragraphs[0].paragraph_format.keep_with_next = True  # never a header alone
    for values in rows:
        cells = table.add_row().cells
        for cell, text in zip(cells, values, strict=True):
            cell.text = ""
            _run_font(cell.paragraphs[0], text, BODY_FONT, 10.5)
    # The first column (the agency's name) wide, the figures narrow: 156 mm in all.
    rest = (156 - FIRST_COLUMN_MM) / (len(header) - 1)
    table.autofit = False
    for position, column in enumerate(table.columns):
        column.width = Mm(FIRST_COLUMN_MM if position == 0 else rest)
    for number, table_row in enumerate(table.rows):
        for position, cell in enumerate(table_row.cells):
            cell.width = Mm(FIRST_COLUMN_MM if position == 0 else rest)
        # No row is broken across pages, and the header row repeats on each page the table
        # runs onto (so a page never starts with figures under no heading).
        properties = table_row._tr.get_or_add_trPr()
        properties.append(OxmlElement("w:cantSplit"))
        if number == 0:
            properties.append(OxmlElement("w:tblHeader"))


def title_of(content: Content) -> str:
    """The circular's title."""
    kind = KIND_WORDS[Kind(content.kind)]
    plan = content.plan_title or content.plan_slug
    return f"关于{plan}推进情况的{kind}通报"


def render_docx(content: Content, number: str, issued_on: date, issuer: str = ISSUER) -> bytes:
    """The circular as a Word document."""
    document = Document()
    section = document.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(37), Mm(35)
    section.left_margin, section.right_margin = Mm(28), Mm(26)
    normal = document.styles["Normal"]
    normal.font.name = BODY_FONT
    normal.font.size = Pt(16)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), BODY_FONT)

    mark = document.add_paragraph()
    mark.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run_font(mark, number, BODY_FONT, 16)
    title = document.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _run_font(title, title_of(content), TITLE_FONT, 22)

    totals = content.totals
    by_level, by_reason = totals["by_level"], totals["by_reason"]
    _body(
        document,
        f"截至{content.as_of[:16].replace('T', ' ')}（通报期{content.period}），"
        f"{content.plan_title or content.plan_slug}共跟踪工作要点{totals['work_points']}项，"
        f"其中红色{by_level.get('red', 0)}项、黄色{by_level.get('yellow', 0)}项、"
        f"蓝色{by_level.get('blue', 0)}项、绿色{by_level.get('green', 0)}项，"
        f"办结待审核{totals['in_review']}项，已办结销号{totals['closed']}项。现将有关情况通报如下：",
    )

    _heading(document, 1, "总体情况")
    reasons = "；".join(f"{REASON_WORDS.get(k, k)}{v}项" for k, v in sorted(by_reason.items()))
    _body(document, f"按原因统计：{reasons or '无'}。")

    _heading(document, 2, "红黄榜")
    for rule in content.rules:
        _body(document, rule)
    names = {row.agency_id: row.name for row in content.agencies}
    for label, ids in (
        ("红榜", content.red_list),
        ("黄榜", content.yellow_list),
        ("表扬榜", content.honour_list),
    ):
        listed = "、".join(f"{i}. {names[a]}" for i, a in enumerate(ids, start=1))
        _body(document, f"{label}：{listed or '无'}。")

    _heading(document, 3, "各单位情况")
    _table(
        document,
        ["单位", "牵头事项", "按时报送率", "停滞事项", "红色", "黄色", "超期事项", "逾期天数"],
        [
            [
                r.name,
                str(r.lead_of),
                rate_words(r.on_time_rate),
                str(r.stalled),
                str(r.red),
                str(r.yellow),
                str(r.overdue),
                str(r.days_overdue),
            ]
            for r in content.agencies
            if r.lead_of
        ],
    )
    _body(document, content.ack_rule)
    _table(
        document,
        ACK_HEADER,
        [
            [
                r.name,
                str(r.alerts_fired),
                str(r.alerts_acknowledged),
                hours_words(r.median_ack_hours),
                str(r.alerts_unacknowledged),
            ]
            for r in content.agencies
            if r.lead_of
        ],
    )

    _heading(document, 4, "红色事项")
    if not content.red_points:
        _body(document, "本期无红色事项。")
    for point in content.red_points:
        overdue = f"，已超期{point.days_overdue}天" if point.days_overdue else ""
        _body(
            document,
            f"第{point.code}项 {point.title}（牵头单位：{'、'.join(point.leads)}）："
            f"{reason_words(point.reasons)}{overdue}。",
        )

    _heading(document, 5, "与上期相比的变化")
    if content.previous_number is None:
        _body(document, "本期为首期通报，无上期可比。")
    elif not content.changes:
        _body(document, f"与上期（{content.previous_number}）相比，各事项颜色无变化。")
    else:
        _body(
            document,
            f"与上期（{content.previous_number}）相比，{len(content.changes)}项事项颜色变化：",
        )
        for change in content.changes:
            _body(
                document,
                f"第{change.code}项 {change.title}："
                f"{COLOUR_WORDS.get(change.before, change.before)}"
                f"→{COLOUR_WORDS.get(change.after, change.after)}。",
            )

    _body(document, "请红榜、黄榜单位对照问题抓紧整改，按时报送进展。")
    for text in (issuer, chinese_date(issued_on)):
        paragraph = document.add_paragraph()
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _run_font(paragraph, text, BODY_FONT, 16)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def render_xlsx(content: Content, number: str) -> bytes:
    """The circular's detail as a workbook: 概况, 单位, 红色事项, 变化."""
    book = Workbook()
    bold = Font(bold=True)
    overview = book.active
    assert overview is not None
    overview.title = "概况"
    totals = content.totals
    overview.append(["文号", number])
    overview.append(["计划", content.plan_title or content.plan_slug])
    overview.append(["通报期", content.period])
    overview.append(["截至", content.as_of])
    overview.append(["工作要点", totals["work_points"]])
    for level in ("red", "yellow", "blue", "green"):
        overview.append([COLOUR_WORDS[level], totals["by_level"].get(level, 0)])
    overview.append([COLOUR_WORDS["review"], totals["in_review"]])
    overview.append([COLOUR_WORDS["closed"], totals["closed"]])
    for reason, count in sorted(totals["by_reason"].items()):
        overview.append([f"原因：{REASON_WORDS.get(reason, reason)}", count])
    overview.append(["预警确认统计起点", content.alerts_since])
    overview.append(["预警确认口径", content.ack_rule])

    agencies = book.create_sheet("单位")
    agencies.append(
        [
            "单位",
            "单位编号",
            "牵头事项",
            "报送次数",
            "按时报送次数",
            "按时报送率",
            "停滞事项",
            "红色",
            "黄色",
            "超期事项",
            "逾期天数",
            "未报送事项",
            *ACK_HEADER[1:],
            "榜单",
        ]
    )
    lists = {
        **{a: "红榜" for a in content.red_list},
        **{a: "黄榜" for a in content.yellow_list},
        **{a: "表扬榜" for a in content.honour_list},
    }
    for r in content.agencies:
        agencies.append(
            [
                r.name,
                r.agency_id,
                r.lead_of,
                r.reports,
                r.reports_on_time,
                r.on_time_rate,
                r.stalled,
                r.red,
                r.yellow,
                r.overdue,
                r.days_overdue,
                r.silent_now,
                r.alerts_fired,
                r.alerts_acknowledged,
                r.median_ack_hours,
                r.alerts_unacknowledged,
                lists.get(r.agency_id, ""),
            ]
        )

    reds = book.create_sheet("红色事项")
    reds.append(["编号", "事项", "牵头单位", "原因", "完成时限", "逾期天数"])
    for p in content.red_points:
        reds.append(
            [p.code, p.title, "、".join(p.leads), reason_words(p.reasons), p.due_on, p.days_overdue]
        )

    changes = book.create_sheet("变化")
    changes.append(["编号", "事项", "上期", "本期"])
    for c in content.changes:
        changes.append(
            [
                c.code,
                c.title,
                COLOUR_WORDS.get(c.before, c.before),
                COLOUR_WORDS.get(c.after, c.after),
            ]
        )
    for sheet in book.worksheets:
        for cell in sheet[1]:
            cell.font = bold
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
