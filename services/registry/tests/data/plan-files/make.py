"""Make the plan-file fixtures once from data/plans/zhaoqing-digital-2024.txt; the generated files
are committed, so tests need neither this script nor any font of the machine.

    python services/registry/tests/data/plan-files/make.py

Writes, beside this script: the plan as GB18030 text, as a Word document (the notice's signature
and date in a table), as a PDF with a text layer (wrapped lines, indented paragraphs, several
pages), as a government web page in GB2312-declared GB18030 (header, navigation, breadcrumb,
the article, footer, scripts), and a scanned PDF (a page without a text layer).

The PDFs need reportlab (its built-in CID font STSong-Light, which is not embedded, keeps the file
small). reportlab is a tool for making these fixtures only: it is not in requirements.lock;
install it beside the project's environment to run this script.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import docx
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

HERE = Path(__file__).parent
ROOT = HERE.parents[4]
PLAN = ROOT / "data" / "plans" / "zhaoqing-digital-2024.txt"
NAME = "zhaoqing-2024"


def lines() -> list[str]:
    return [line.strip() for line in PLAN.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_gb18030(text: list[str]) -> None:
    (HERE / f"{NAME}.gb18030.txt").write_bytes(("\r\n".join(text) + "\r\n").encode("gb18030"))


def make_docx(text: list[str]) -> None:
    document = docx.Document()
    signature = next(i for i, line in enumerate(text) if line.startswith("2024年8月6日")) - 1
    for i, line in enumerate(text):
        if i == signature:
            table = document.add_table(rows=2, cols=1)
            table.cell(0, 0).text = text[i]
            table.cell(1, 0).text = text[i + 1]
        elif i != signature + 1:
            document.add_paragraph(line)
    document.core_properties.created = datetime(2024, 8, 6, tzinfo=UTC)
    document.save(str(HERE / f"{NAME}.docx"))


def _wrap(line: str, first: float, width: float, font: str, size: float) -> list[str]:
    out: list[str] = []
    current = ""
    room = first
    for char in line:
        if pdfmetrics.stringWidth(current + char, font, size) > room:
            out.append(current)
            current, room = "", width
        current += char
    out.append(current)
    return out


def make_pdf(text: list[str]) -> None:
    font, size = "STSong-Light", 10.5
    pdfmetrics.registerFont(UnicodeCIDFont(font))
    page_width, page_height = A4
    left, top, bottom = 72.0, page_height - 72.0, 72.0
    width = page_width - 2 * left
    pdf = canvas.Canvas(str(HERE / f"{NAME}.pdf"), pagesize=A4, invariant=True)
    pdf.setFont(font, size)
    y = top
    for line in text:
        for i, part in enumerate(_wrap(line, width - 2 * size, width, font, size)):
            if y < bottom:
                pdf.showPage()
                pdf.setFont(font, size)
                y = top
            pdf.drawString(left + (2 * size if i == 0 else 0), y, part)
            y -= size * 1.6
    pdf.save()


def make_scan() -> None:
    pdf = canvas.Canvas(str(HERE / "scanned.pdf"), pagesize=A4, invariant=True)
    pdf.setFillGray(0.8)
    for row in range(30):  # grey bars where a scanner would have drawn lines of text
        pdf.rect(72, 760 - row * 22, 380 + (row * 37) % 70, 12, stroke=0, fill=1)
    pdf.save()


PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>{title}_肇庆市人民政府门户网站</title>
<style>body {{ font-family: SimSun; }} .nav li {{ display: inline; }}</style>
<script>var _hmt = _hmt || []; document.write("统计代码");</script>
</head>
<body>
<header><div class="logo">肇庆市人民政府门户网站</div><div>无障碍 | 长者模式 | 繁體</div></header>
<nav class="nav"><ul><li><a href="/">首页</a></li><li><a href="/zwgk/">政务公开</a></li>
<li><a href="/zwfw/">政务服务</a></li><li><a href="/hdjl/">互动交流</a></li></ul></nav>
<main>
<div class="crumb">当前位置：<a href="/">首页</a> &gt; <a href="/zwgk/">政务公开</a></div>
<article>
<h1>{title}</h1>
<div class="info"><span>发布日期：2024-08-06</span>&nbsp;&nbsp;
<span>来源：肇庆市政务服务和数据管理局</span></div>
<div class="TRS_Editor">
{body}
</div>
</article>
</main>
<footer><p>主办：肇庆市人民政府办公室　　网站标识码：4412000001</p>
<p>粤ICP备05001234号　<a href="#">网站地图</a></p></footer>
<script type="text/javascript">window.onload = function () {{ console.log("分享"); }};</script>
</body>
</html>
"""


def make_html(text: list[str]) -> None:
    title = next(line for line in text if line.endswith("的通知"))
    body = "\n".join(
        f'<p style="text-indent:2em">&#12288;&#12288;{html.escape(line)}</p>' for line in text
    )
    page = PAGE.format(title=html.escape(title), body=body)
    (HERE / f"{NAME}.html").write_bytes(page.encode("gb18030"))


if __name__ == "__main__":
    text = lines()
    make_gb18030(text)
    make_docx(text)
    make_pdf(text)
    make_scan()
    make_html(text)
