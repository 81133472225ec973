"""Progress's evidence files travel with a backup: copied after the databases, listed in the
manifest with their count and bytes, checked against their names (the SHA-256 of their
content) on restore; a damaged backup restores none of them."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from scripts import backup as backups


def _database(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    return f"sqlite+aiosqlite:///{path}"


def _keep(root: Path, agency: uuid.UUID, content: bytes, suffix: str) -> Path:
    folder = root / str(agency)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(content).hexdigest()}.{suffix}"
    path.write_bytes(content)
    return path


@pytest.fixture
def source(tmp_path: Path) -> tuple[list[backups.Database], Path]:
    databases = [backups.Database(s, _database(tmp_path / f"{s}.db")) for s in backups.SERVICES]
    evidence = tmp_path / "evidence"
    linye, ziran = uuid.uuid4(), uuid.uuid4()
    _keep(evidence, linye, b"%PDF-1.7 minutes of the meeting", "pdf")
    _keep(evidence, linye, b"\x89PNG photo of the site", "png")
    _keep(evidence, ziran, b"%PDF-1.7 approval", "pdf")
    (evidence / str(ziran) / ".upload-abc123").write_bytes(b"half an upload")  # not kept yet
    return databases, evidence


def test_evidence_files_are_backed_up_listed_and_restored_by_hash(
    tmp_path: Path, source: tuple[list[backups.Database], Path]
) -> None:
    databases, evidence = source
    folder = backups.backup(tmp_path / "backups", databases, kafka=None, evidence=evidence)
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["evidence"]
    expected = backups.evidence_files(evidence)
    assert len(expected) == 3
    assert entry["files"] == 3
    assert entry["bytes"] == sum((evidence / p).stat().st_size for p in expected)
    assert sorted(entry["sizes"]) == [p.as_posix() for p in expected]

    targets = [
        backups.Database(s, f"sqlite+aiosqlite:///{tmp_path / 'restored' / s}.db")
        for s in backups.SERVICES
    ]
    restored = tmp_path / "restored" / "evidence"
    backups.restore(folder, targets, evidence=restored)
    assert backups.evidence_files(restored) == expected
    for relative in expected:
        assert (restored / relative).read_bytes() == (evidence / relative).read_bytes()
    assert not list(restored.rglob(".upload-*")) and not list(restored.rglob(".restore-*"))


def test_a_damaged_evidence_file_refuses_the_restore_and_puts_nothing_in_place(
    tmp_path: Path, source: tuple[list[backups.Database], Path]
) -> None:
    databases, evidence = source
    folder = backups.backup(tmp_path / "backups", databases, kafka=None, evidence=evidence)
    [damaged, *_] = sorted((folder / backups.EVIDENCE).rglob("*.pdf"))
    damaged.write_bytes(b"%PDF-1.7 something else")
    targets = [
        backups.Database(s, f"sqlite+aiosqlite:///{tmp_path / 'restored' / s}.db")
        for s in backups.SERVICES
    ]
    restored = tmp_path / "restored" / "evidence"
    with pytest.raises(backups.BackupError, match="damaged"):
        backups.restore(folder, targets, evidence=restored)
    assert not restored.exists()
    assert not (tmp_path / "restored" / "progress.db").exists()  # no database restored either


def test_the_evidence_folder_comes_from_progress_setting() -> None:
    env = {"DUBAN_PROGRESS_EVIDENCE_DIR": "/srv/duban/evidence"}
    assert backups.evidence_dir_of(env) == Path("/srv/duban/evidence")
    assert backups.evidence_dir_of({}) == backups.ROOT / ".run" / "evidence"
