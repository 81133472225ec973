"""A supervision notice (督办单) printed as a Word document (python-docx), in the manner of an
official document (GB/T 9704 where practical): A4, a centred title in 小标宋 二号, the number
under it, the body in 仿宋_GB2312 三号, headed sections, the reply (if any) at the end."""

from __future__ import annotations

import io
from datetime import date

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from docx.text.run import Run
from duban_shared.numerals import chinese_code
from duban_shared.workdays import local_day

from progress.domain.notices import STATE_NAMES
from progress.store.models import SupervisionNotice

TITLE = "督办通知单"
BODY_FONT, TITLE_FONT, HEADING_FONT = "仿宋_GB2312", "方正小标宋简体", "黑体"
DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _font(run: Run, name: str, size: float, *, bold: bool = False) -> None:
    run.font.name = name
    run.font.size = Pt(size)
    run.font.bold = bold
    properties = run._element.get_or_add_rPr()  # the East Asian font needs the raw property
    properties.get_or_add_rFonts().set(qn("w:eastAsia"), name)


def _day(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def notice_docx(notice: SupervisionNotice, office_name: str = "督办协调部门") -> bytes:
    """The notice as .docx bytes."""
    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(3.7), Cm(3.5)
    section.left_margin, section.right_margin = Cm(2.8), Cm(2.6)

    def paragraph(
        text: str = "",
        *,
        font: str = BODY_FONT,
        size: float = 16,
        align: WD_ALIGN_PARAGRAPH | None = None,
        bold: bool = False,
        indent: bool = False,
    ) -> None:
        p = document.add_paragraph()
        if align is not None:
            p.alignment = align
        if indent:
            p.paragraph_format.first_line_indent = Pt(size * 2)
        p.paragraph_format.line_spacing = Pt(28)
        _font(p.add_run(text), font, size, bold=bold)

    def heading(text: str) -> None:
        paragraph(text, font=HEADING_FONT, indent=True)

    paragraph(TITLE, font=TITLE_FONT, size=22, align=WD_ALIGN_PARAGRAPH.CENTER)
    paragraph(notice.number, align=WD_ALIGN_PARAGRAPH.CENTER)
    paragraph()
    leads = "、".join(a["name"] for a in notice.lead_agencies) or "牵头单位"
    paragraph(f"{leads}:")
    paragraph(
        f"根据工作计划督查督办安排,现就第{chinese_code(notice.code)}项“{notice.title}”"
        "下发督办通知,请认真研究办理,并按期反馈。",
        indent=True,
    )
    heading("一、督办事由")
    paragraph(notice.reason, indent=True)
    heading("二、整改要求")
    paragraph(notice.required_action, indent=True)
    heading("三、反馈期限")
    paragraph(
        f"请于{_day(notice.reply_due_on)}前(含当日,{notice.reply_within_working_days}个工作日内)"
        "通过督办系统反馈办理情况。",
        indent=True,
    )
    heading("四、办理情况反馈")
    if notice.reply_text:
        replied = _day(local_day(notice.replied_at)) if notice.replied_at else ""
        paragraph(f"{notice.reply_text}(反馈时间:{replied})", indent=True)
        if notice.evidence_url:
            paragraph(f"佐证材料:{notice.evidence_url}", indent=True)
    else:
        paragraph(
            f"尚未反馈(当前状态:{STATE_NAMES.get(notice.status, notice.status)})。", indent=True
        )
    paragraph()
    paragraph(office_name, align=WD_ALIGN_PARAGRAPH.RIGHT)
    paragraph(_day(local_day(notice.issued_at)), align=WD_ALIGN_PARAGRAPH.RIGHT)
    out = io.BytesIO()
    document.core_properties.title = f"{TITLE} {notice.number}"
    document.save(out)
    return out.getvalue()
