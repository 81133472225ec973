"""Evidence files (佐证材料) uploaded with a report from the board: checked, kept, read back.

A file is accepted when its content (not its name) is a PDF, a PNG, JPEG or WebP image, or a
Word (.docx) or Excel (.xlsx) document, and it is no larger than the limit. The type is told by
the file's signature (`filetype`); a .docx or .xlsx must moreover be a readable ZIP holding the
part that makes it one (word/document.xml, xl/workbook.xml), so a renamed archive is refused.

Files are kept under the evidence directory, one folder per agency, named by the SHA-256 of
their content: the same file sent twice (a resubmitted form) is the same file and the same
link, so the report's idempotency fingerprint matches. Writes go to a temporary name first and
are renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import filetype

KINDS: dict[str, tuple[str, str]] = {  # suffix -> (media type, what people call it)
    "pdf": ("application/pdf", "PDF"),
    "png": ("image/png", "PNG 图片"),
    "jpg": ("image/jpeg", "JPEG 图片"),
    "webp": ("image/webp", "WebP 图片"),
    "docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "Word 文档(.docx)",
    ),
    "xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Excel 表格(.xlsx)",
    ),
}
ALLOWED_WORDS = "PDF、图片(PNG/JPEG/WebP)、Word(.docx)或 Excel(.xlsx)"
_OOXML_PART = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml"}
_NAME = re.compile(r"[0-9a-f]{64}\.(pdf|png|jpg|webp|docx|xlsx)")


class EvidenceRefused(Exception):
    """A file that is not kept: too large, empty, or not of an allowed type (said in Chinese)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def kind_of(content: bytes) -> str | None:
    """The suffix of an allowed type the content is, or None."""
    guess = filetype.guess(content)
    suffix = {
        "application/pdf": "pdf",
        "image/png": "png",
        "image/jpeg": "jpg",
        "image/webp": "webp",
    }.get(guess.mime if guess is not None else "")
    if suffix is not None:
        return suffix
    if not content.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = set(archive.namelist())
            if archive.testzip() is not None:
                return None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return None
    for suffix, part in _OOXML_PART.items():
        if part in names and "[Content_Types].xml" in names:
            return suffix
    return None


def check(content: bytes, filename: str, max_bytes: int) -> str:
    """The suffix the file is kept under; EvidenceRefused when it is not kept."""
    shown = filename or "文件"
    if not content:
        raise EvidenceRefused("evidence_empty", f"{shown} 是空文件。")
    if len(content) > max_bytes:
        raise EvidenceRefused(
            "evidence_too_large",
            f"{shown} 有 {len(content) / 1048576:.1f} MiB,超过了 "
            f"{max_bytes / 1048576:g} MiB 的上限;请压缩后再上传,或改为填写链接。",
        )
    suffix = kind_of(content)
    if suffix is None:
        raise EvidenceRefused(
            "evidence_type_not_allowed",
            f"{shown} 不是允许的文件类型(按文件内容判断,而非文件名):请上传{ALLOWED_WORDS}。",
        )
    return suffix


@dataclass(frozen=True)
class EvidenceStore:
    """The evidence directory: a folder per agency, files named by their content's hash."""

    root: Path

    def keep(self, agency_id: uuid.UUID, content: bytes, suffix: str) -> str:
        """Keep a checked file of an agency; return its name (the same for the same content)."""
        name = f"{hashlib.sha256(content).hexdigest()}.{suffix}"
        folder = self.root / str(agency_id)
        target = folder / name
        if target.exists():
            return name
        folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return name

    def path(self, agency_id: uuid.UUID, name: str) -> Path | None:
        """A kept file of an agency, or None (a name that is not one of ours is never a
        path: no traversal)."""
        if not _NAME.fullmatch(name):
            return None
        target = self.root / str(agency_id) / name
        return target if target.is_file() else None


def media_type(name: str) -> str:
    """The media type a kept file is served with."""
    return KINDS[name.rpartition(".")[2]][0]
