"""Evidence files: told by content, not by name; kept once per content; never a path outside."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

import pytest
from docx import Document
from openpyxl import Workbook
from progress.adapters.evidence_files import EvidenceRefused, EvidenceStore, check, kind_of

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32


def _docx() -> bytes:
    out = io.BytesIO()
    Document().save(out)
    return out.getvalue()


def _xlsx() -> bytes:
    out = io.BytesIO()
    Workbook().save(out)
    return out.getvalue()


def _zip(**parts: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name.replace("__", "/"), text)
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (PDF, "pdf"),
        (PNG, "png"),
        (JPEG, "jpg"),
        (WEBP, "webp"),
        (_docx(), "docx"),
        (_xlsx(), "xlsx"),
    ],
)
def test_allowed_types_are_told_by_their_content(content: bytes, kind: str) -> None:
    assert kind_of(content) == kind
    assert check(content, "任意名字.bin", 10 * 1024 * 1024) == kind


@pytest.mark.parametrize(
    "content",
    [
        "一段文字".encode(),
        b"MZ\x90\x00\x03" + b"\x00" * 64,  # a Windows program
        b"<html><script>alert(1)</script></html>",
        b"GIF89a" + b"\x00" * 32,  # an image type not on the list
        _zip(readme__txt="x"),  # a ZIP that is not an Office document
        _zip(word__document__xml="<w/>"),  # a part without [Content_Types].xml
        _docx()[:200],  # cut short
    ],
)
def test_other_content_is_refused_whatever_its_name(content: bytes) -> None:
    with pytest.raises(EvidenceRefused) as refused:
        check(content, "报告.pdf", 10 * 1024 * 1024)
    assert refused.value.code == "evidence_type_not_allowed"
    assert "报告.pdf 不是允许的文件类型" in refused.value.message


def test_size_and_emptiness_are_refused_in_chinese() -> None:
    with pytest.raises(EvidenceRefused) as large:
        check(PDF + b"0" * 2048, "大.pdf", 1024)
    assert large.value.code == "evidence_too_large" and "MiB" in large.value.message
    with pytest.raises(EvidenceRefused) as empty:
        check(b"", "空.pdf", 1024)
    assert empty.value.code == "evidence_empty"


def test_the_same_content_is_kept_once_and_names_are_never_paths(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    agency = uuid.uuid4()
    first = store.keep(agency, PNG, "png")
    assert store.keep(agency, PNG, "png") == first
    assert [p.name for p in (tmp_path / str(agency)).iterdir()] == [first]
    kept = store.path(agency, first)
    assert kept is not None and kept.read_bytes() == PNG
    assert store.path(uuid.uuid4(), first) is None  # another agency's folder
    for name in ("../x.png", "..%2F..%2Fetc%2Fpasswd", first.upper(), first + "/", "a.png"):
        assert store.path(agency, name) is None
