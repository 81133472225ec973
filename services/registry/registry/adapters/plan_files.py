"""Plan files: read the bytes of a plan as published (text in UTF-8 or GB18030/GBK, Word .docx,
PDF with a text layer, an HTML page saved from a government site) into the text that
`registry.domain.plan_parser.parse_plan` takes.

The format is sniffed from the content first (a zip is a .docx, ``%PDF`` a PDF, ``<html`` a page)
and only then from the file name's extension, because saved files are often misnamed. What cannot
be read is refused with a stable code: ``plan_file_empty``, ``plan_file_unsupported``,
``plan_file_unreadable``, ``plan_file_scanned``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import pdfplumber
from bs4 import BeautifulSoup, Tag
from bs4.dammit import EncodingDetector
from charset_normalizer import from_bytes
from docx.table import Table
from docx.text.paragraph import Paragraph

from registry.domain.errors import Refusal

SUFFIXES = {".txt": "txt", ".docx": "docx", ".pdf": "pdf", ".html": "html", ".htm": "html"}
_SPACES = re.compile(r"[ \t\r\n\f]+")
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|meta)\b", re.I | re.S)
# Aliases that Python's codecs read more narrowly than the pages that declare them mean.
_WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "iso-8859-1": "cp1252"}
# Page parts that are not the article.
_CHROME = ("script", "style", "nav", "header", "footer", "aside", "noscript", "form", "iframe")
_BLOCKS = (
    "p",
    "div",
    "li",
    "tr",
    "table",
    "section",
    "article",
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "title",
    "pre",
    "blockquote",
    "dd",
    "dt",
)


def unsupported(what: str) -> Refusal:
    """The refusal for a file of a format the registry does not read (422 like every refused
    input in the error contract)."""
    return Refusal(
        422,
        "plan_file_unsupported",
        f"无法识别的计划文件格式（{what}）。请提供 .txt（UTF-8 或 GB18030）、.docx、"
        "带文字层的 .pdf 或 .html 文件。",
    )


def unreadable(kind: str, reason: str) -> Refusal:
    """The refusal for a file that claims a format but cannot be opened as one."""
    return Refusal(
        422,
        "plan_file_unreadable",
        f"无法读取该 {kind} 文件（{reason}）。请用原软件重新打开并另存后再导入。",
    )


def read_plan_file(path: str | Path) -> str:
    """Read a plan file into plan text (see `plan_text`)."""
    path = Path(path)
    return plan_text(path.read_bytes(), path.name)


def sniff(data: bytes, name: str = "") -> str:
    """Name a plan file's format (txt, docx, pdf, html): the content decides, then the name."""
    head = data[:2048]
    if head.startswith(b"PK\x03\x04"):
        return "docx"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%PDF"):
        return "pdf"
    if _HTML_START.match(head.removeprefix(b"\xef\xbb\xbf")):
        return "html"
    suffix = Path(name).suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if suffix:
        raise unsupported(f"扩展名 {suffix}")
    return "txt"


def plan_text(data: bytes, name: str = "") -> str:
    """Turn the bytes of a plan file into plan text; `name` (the file name) is a fallback hint."""
    if not data.strip():
        raise Refusal(422, "plan_file_empty", "计划文件是空的。请提供含有计划正文的文件。")
    kind = sniff(data, name)
    if kind == "docx":
        return docx_text(data)
    if kind == "pdf":
        return pdf_text(data)
    if kind == "html":
        return html_text(data)
    return decode_text(data)


def decode_text(data: bytes) -> str:
    """Decode a text file: UTF-8 (with or without a byte-order mark), else the detected encoding
    (GB18030/GBK and others). Binary content is refused."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        raise unsupported("二进制文件")
    best = from_bytes(data).best()
    if best is None:
        raise unsupported("二进制文件或未知编码")
    encoding = _WIDER.get(best.encoding.replace("_", "-").lower(), best.encoding)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = str(best)
    if sum(1 for c in text if ord(c) < 32 and c not in "\t\r\n\f") > len(text) // 100:
        raise unsupported("二进制文件")
    return text


def _docx_blocks(items: Iterator[Paragraph | Table]) -> Iterator[str]:
    for item in items:
        if isinstance(item, Paragraph):
            yield item.text
            continue
        seen: set[int] = set()
        for row in item.rows:
            for cell in row.cells:
                if id(cell._tc) in seen:  # a merged cell is listed once per grid column
                    continue
                seen.add(id(cell._tc))
                yield from _docx_blocks(cell.iter_inner_content())


def docx_text(data: bytes) -> str:
    """The paragraphs and table cells of a Word document, one per line, in document order."""
    try:
        document = docx.Document(io.BytesIO(data))
        return "\n".join(_docx_blocks(document.iter_inner_content()))
    except Exception as exc:  # a damaged package fails in zipfile, lxml or python-docx
        raise unreadable("Word (.docx)", "文件已损坏或不是 Word 文档") from exc


def _unwrap(lines: list[dict[str, Any]], right: float) -> list[str]:
    """Join the lines a PDF wrapped back into paragraphs: a line continues the one before when
    that one ran to the right margin and this one is not indented."""
    paragraphs: list[str] = []
    left = min((line["x0"] for line in lines), default=0.0)
    previous: dict[str, Any] | None = None
    for line in lines:
        text = line["text"].strip()
        if not text:
            continue
        size = max((c.get("size", 10.0) for c in line.get("chars", [])), default=10.0)
        continues = (
            previous is not None
            and previous["x1"] >= right - 1.5 * size
            and line["x0"] <= left + 0.5 * size
        )
        if continues and paragraphs:
            paragraphs[-1] += text
        else:
            paragraphs.append(text)
        previous = line
    return paragraphs


def pdf_text(data: bytes) -> str:
    """The text layer of a PDF, with lines wrapped by the layout joined into paragraphs.
    A PDF without a text layer (a scan) is refused: it needs OCR first."""
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = [page.extract_text_lines(return_chars=True) for page in pdf.pages]
    except Exception as exc:  # pdfminer raises many kinds on a damaged file
        raise unreadable("PDF", "文件已损坏或已加密") from exc
    lines = [line for page in pages for line in page]  # a paragraph may run on to the next page
    if not any(line["text"].strip() for line in lines):
        raise Refusal(
            422,
            "plan_file_scanned",
            "该 PDF 没有文字层，是扫描件。请先做文字识别（OCR），或提供原始的 Word/文本文件。",
        )
    right = max(line["x1"] for line in lines)
    return "\n".join(_unwrap(lines, right))


def _html_decode(data: bytes) -> str:
    declared = EncodingDetector.find_declared_encoding(data, is_html=True)
    if declared:
        encoding = _WIDER.get(declared.lower(), declared)
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            pass
    return decode_text(data)


def html_text(data: bytes) -> str:
    """The article of a saved web page as text: markup stripped, one line per paragraph or line
    break; scripts, styles, navigation, header and footer dropped. The page is decoded by its
    meta charset, else by detection."""
    soup = BeautifulSoup(_html_decode(data), "html.parser")
    for tag in soup.find_all(_CHROME):
        tag.decompose()
    for tag in soup.find_all(True, {"role": ["navigation", "banner", "contentinfo"]}):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    if not isinstance(root, Tag):
        return ""
    for string in root.find_all(string=True):  # a line end in the source is only a space
        string.replace_with(_SPACES.sub(" ", str(string)))
    for br in root.find_all("br"):
        br.replace_with("\n")
    for block in root.find_all(_BLOCKS):
        block.insert_before("\n")
        block.append("\n")
    lines = (" ".join(line.split()) for line in root.get_text().splitlines())
    return "\n".join(line for line in lines if line)
