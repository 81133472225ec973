"""Plan files in every published format read into the same plan: the 2024 plan as GB18030 text,
Word, PDF and a saved government web page parses like its UTF-8 text; line-end and byte-order
mark variants too; files that cannot be read get a stable code; `parse-plan` reads each format."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from registry.adapters.plan_files import plan_text, read_plan_file, sniff
from registry.cli import main as cli
from registry.domain.errors import Refusal
from registry.domain.plan_parser import ParsedPlan, parse_plan

from .plan_text import plan_text as utf8_plan

FILES = Path(__file__).resolve().parents[1] / "data" / "plan-files"
FORMATS = [
    "zhaoqing-2024.gb18030.txt",
    "zhaoqing-2024.docx",
    "zhaoqing-2024.pdf",
    "zhaoqing-2024.html",
]


def extraction(parsed: ParsedPlan) -> dict[str, Any]:
    """What a plan yields, without line numbers (a web page has lines of its own before it)."""
    return {
        "plan": parsed.plan.model_dump(),
        "sections": [s.model_dump(exclude={"line"}) for s in parsed.sections],
        "work_points": [w.model_dump(exclude={"line", "marker_lines"}) for w in parsed.work_points],
        "agencies": [a.model_dump() for a in parsed.agencies],
    }


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return extraction(parse_plan(utf8_plan()))


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_yields_the_plan_of_the_text(name: str, expected: dict[str, Any]) -> None:
    parsed = parse_plan(read_plan_file(FILES / name))
    assert len(parsed.work_points) == 50
    assert [w.number for w in parsed.work_points] == list(range(1, 51))
    targets = [t for w in parsed.work_points for t in w.targets]
    assert len(targets) == 7
    assert extraction(parsed) == expected


@pytest.mark.parametrize(
    ("variant", "encoding"),
    [
        ("\r\n", "utf-8"),
        ("\r", "utf-8"),
        ("\n", "utf-8-sig"),
        ("\r\n", "utf-8-sig"),
        ("\n", "gbk"),
        ("\r", "gb18030"),
    ],
)
def test_line_ends_and_byte_order_marks(
    variant: str, encoding: str, expected: dict[str, Any]
) -> None:
    text = utf8_plan().replace("\n", variant)
    parsed = parse_plan(plan_text(text.encode(encoding), "plan.txt"))
    assert extraction(parsed) == expected


def test_the_content_decides_before_the_extension() -> None:
    docx_bytes = (FILES / "zhaoqing-2024.docx").read_bytes()
    assert sniff(docx_bytes, "plan.txt") == "docx"
    assert sniff((FILES / "zhaoqing-2024.pdf").read_bytes(), "plan.doc") == "pdf"
    assert sniff(b"\xef\xbb\xbf<!DOCTYPE html><html></html>", "plan") == "html"
    assert sniff("一、总体要求".encode(), "plan.htm") == "html"
    assert sniff("一、总体要求".encode(), "plan") == "txt"


def test_the_page_keeps_the_article_and_drops_the_chrome() -> None:
    text = read_plan_file(FILES / "zhaoqing-2024.html")
    for chrome in ("首页", "统计代码", "网站标识码", "分享", "font-family", "当前位置"):
        assert chrome not in text
    assert text.splitlines()[0].endswith("的通知")  # the article's heading comes first
    assert "发布日期：2024-08-06 来源：肇庆市政务服务和数据管理局" in text.splitlines()


def test_a_page_declaring_utf8_and_one_without_a_charset() -> None:
    body = "<html><head><meta charset='utf-8'></head><body><p>一、甲</p><p>二、乙<br>丙</p></body>"
    assert plan_text(body.encode("utf-8"), "p.html") == "一、甲\n二、乙\n丙"
    bare = "<html><body><div>（一）推进数字政府建设。</div><script>x()</script></body></html>"
    assert plan_text(bare.encode("gb18030") * 3, "p.html").startswith("（一）推进数字政府建设。")


def refusal(data: bytes, name: str) -> Refusal:
    with pytest.raises(Refusal) as caught:
        plan_text(data, name)
    assert caught.value.message and caught.value.status == 422
    return caught.value


def test_a_scanned_pdf_needs_ocr() -> None:
    error = refusal((FILES / "scanned.pdf").read_bytes(), "scan.pdf")
    assert error.code == "plan_file_scanned"
    assert "OCR" in error.message and "扫描件" in error.message


def test_unreadable_files_get_stable_codes() -> None:
    docx_bytes = (FILES / "zhaoqing-2024.docx").read_bytes()
    assert refusal(docx_bytes[: len(docx_bytes) // 2], "plan.docx").code == "plan_file_unreadable"
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("data.csv", "a,b\n")
    assert refusal(other_zip.getvalue(), "plan.docx").code == "plan_file_unreadable"
    assert refusal(b"%PDF-1.7\n garbage", "plan.pdf").code == "plan_file_unreadable"
    binary = bytes(range(256)) * 8
    assert refusal(binary, "plan.bin").code == "plan_file_unsupported"
    assert refusal(binary, "plan").code == "plan_file_unsupported"
    assert refusal("一、总体要求".encode(), "plan.xlsx").code == "plan_file_unsupported"
    assert refusal(b"", "plan.txt").code == "plan_file_empty"
    assert refusal(b" \r\n\t", "plan.docx").code == "plan_file_empty"


@pytest.mark.parametrize("name", FORMATS)
def test_parse_plan_reads_each_format(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["parse-plan", str(FILES / name)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["work_points"]) == 50
    assert printed["plan"]["title"] == "数字肇庆建设2024年工作要点"


def test_parse_plan_names_the_code_of_a_refused_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(["parse-plan", str(FILES / "scanned.pdf")])
    assert "[plan_file_scanned]" in str(exited.value.code)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(SystemExit) as exited:
        cli(["parse-plan", str(empty)])
    assert "[plan_file_empty]" in str(exited.value.code)
