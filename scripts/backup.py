"""Back up and restore the three services' databases (`make backup`, `make restore`).

    python -m scripts.backup backup [--dir backups]      # a new backup-<UTC time>/ in --dir
    python -m scripts.backup restore backups/backup-20241202T093000Z [--yes]
    python -m scripts.backup list [--dir backups]

Each service's database comes from its setting (DUBAN_REGISTRY_DATABASE_URL,
DUBAN_PROGRESS_DATABASE_URL, DUBAN_NOTIFIER_DATABASE_URL), by default the SQLite files of
`make up` (.run/<service>.db):

- SQLite: the online backup API (sqlite3 `Connection.backup`): one consistent copy, taken while
  the services go on writing; restored the same way into the target file.
- PostgreSQL: `pg_dump -Fc` (one transaction: a consistent snapshot while the services write),
  restored with `pg_restore` from the same bin dir (DUBAN_PG_BIN, else the newest
  /usr/lib/postgresql/*/bin, else PATH) into the target database, which should be empty (a
  fresh `CREATE DATABASE`); `--clean` replaces what a non-empty one holds.

Progress's evidence files (DUBAN_PROGRESS_EVIDENCE_DIR, by default `.run/evidence`: a folder
per agency, each file named by its content's SHA-256) are copied after the databases into
`evidence/`, so every file a backed-up report names is there (a file is written before the
report that names it, and never changed); the manifest lists them with their count and bytes.
A restore checks each file's content against its name and its size against the manifest before
it puts it in place, and refuses a backup with a file missing or damaged.

Before the databases, the committed offsets of the services' consumer groups (those named
`<DUBAN_TOPIC_PREFIX>duban-*`) are read from the broker and written to `manifest.json` with the
files. Nothing needs them at restore: each database stores where its consumers are
(`consumer_offset`, duban_shared.offsets) and the consumers seek back to that on start. They
are there for the runbook: the difference per partition is what a restore reads again.

Restore only with the services stopped; start them as usual afterwards (same topics and groups).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

SERVICES = ("registry", "progress", "notifier")
ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = "evidence"
"""The backup's folder of evidence files."""
_EVIDENCE_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,8}$")
"""An evidence file's name: its content's SHA-256 and its type (temporary uploads are not)."""


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what to do."""


@dataclass(frozen=True)
class Database:
    """One service's database, as its setting names it."""

    service: str
    url: str

    @property
    def parsed(self) -> URL:
        """The SQLAlchemy URL."""
        return make_url(self.url)

    @property
    def is_sqlite(self) -> bool:
        """Whether it is an SQLite file (else PostgreSQL)."""
        return self.parsed.get_backend_name() == "sqlite"

    @property
    def file_name(self) -> str:
        """The name of its backup file."""
        return f"{self.service}.db" if self.is_sqlite else f"{self.service}.dump"


def database_of(service: str, env: dict[str, str] | None = None) -> Database:
    """A service's database from its setting, or `make up`'s SQLite file."""
    env = dict(os.environ) if env is None else env
    run = Path(env.get("DUBAN_RUN_DIR", ".run"))
    run = run if run.is_absolute() else ROOT / run
    default = f"sqlite+aiosqlite:///{run / service}.db"
    return Database(service, env.get(f"DUBAN_{service.upper()}_DATABASE_URL", default))


def evidence_dir_of(env: dict[str, str] | None = None) -> Path:
    """Progress's evidence folder from its setting, or `make up`'s (.run/evidence)."""
    env = dict(os.environ) if env is None else env
    run = Path(env.get("DUBAN_RUN_DIR", ".run"))
    given = env.get("DUBAN_PROGRESS_EVIDENCE_DIR")
    folder = Path(given) if given else run / "evidence"
    return folder if folder.is_absolute() else ROOT / folder


def evidence_files(root: Path) -> list[Path]:
    """The evidence files under `root` (`<agency id>/<sha256>.<type>`), relative to it."""
    if not root.is_dir():
        return []
    return sorted(
        p.relative_to(root)
        for p in root.glob("*/*")
        if p.is_file() and _EVIDENCE_NAME.fullmatch(p.name)
    )


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's content (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backup_evidence(source: Path, target: Path) -> dict[str, object]:
    """Copy the evidence files into `target`; return the manifest's entry (count, bytes, the
    files with their sizes)."""
    files: dict[str, int] = {}
    for relative in evidence_files(source):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, target / relative)
        files[relative.as_posix()] = (target / relative).stat().st_size
    return {
        "folder": EVIDENCE,
        "source": str(source),
        "files": len(files),
        "bytes": sum(files.values()),
        "sizes": files,
    }


def restore_evidence(folder: Path, entry: dict[str, object], target: Path) -> int:
    """Put a backup's evidence files into `target` after checking each against its name (the
    SHA-256 of its content) and the manifest; return how many were put in place (a file there
    already with the same name has the same content and is left)."""
    sizes = entry.get("sizes", {})
    assert isinstance(sizes, dict)
    source = folder / str(entry.get("folder", EVIDENCE))
    checked = []
    for name, size in sorted(sizes.items()):
        path = source / name
        if not path.is_file():
            raise BackupError(f"{path} is missing: the backup's evidence is incomplete")
        digest = sha256_of(path)
        if path.stat().st_size != size or not path.name.startswith(digest + "."):
            raise BackupError(
                f"{path} is damaged (its content does not match its name or the manifest's"
                " size); take the file from another backup"
            )
        checked.append(name)
    placed = 0
    for name in checked:
        destination = target / name
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".restore-{destination.name}")
        shutil.copyfile(source / name, temporary)
        os.replace(temporary, destination)
        placed += 1
    return placed


def sqlite_path(url: URL) -> Path:
    """The file of an SQLite URL."""
    if not url.database or url.database == ":memory:":
        raise BackupError(f"{url}: an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def libpq_url(url: URL) -> str:
    """The libpq form of a PostgreSQL URL (for pg_dump and pg_restore)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def pg_tool(name: str) -> str:
    """A PostgreSQL client program: from DUBAN_PG_BIN, the newest Debian bin dir, or PATH."""
    if given := os.environ.get("DUBAN_PG_BIN"):
        return str(Path(given) / name)
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path is None:
        raise BackupError(f"{name} not found: install postgresql-client or set DUBAN_PG_BIN")
    return on_path


def backup_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database with the online backup API (one consistent snapshot)."""
    if not source.exists():
        raise BackupError(f"{source} does not exist (has the service run yet?)")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # pages=-1: all pages in one step, under one read transaction
    finally:
        dst.close()
        src.close()


def restore_sqlite(backup: Path, target: Path) -> None:
    """Write a backup into the target file (replacing it) with the backup API."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def backup_database(db: Database, target: Path) -> None:
    """Back up one database into `target` (a file)."""
    if db.is_sqlite:
        backup_sqlite(sqlite_path(db.parsed), target)
        return
    run([pg_tool("pg_dump"), "-Fc", "--no-owner", "-f", str(target), libpq_url(db.parsed)])


def restore_database(backup: Path, db: Database, *, clean: bool = False) -> None:
    """Restore one database from its backup file."""
    if db.is_sqlite:
        restore_sqlite(backup, sqlite_path(db.parsed))
        return
    args = [pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction"]
    if clean:
        args += ["--clean", "--if-exists"]
    run([*args, "-d", libpq_url(db.parsed), str(backup)])


def run(args: Sequence[str]) -> None:
    """Run a client program; its error output becomes the BackupError's message."""
    done = subprocess.run(  # noqa: S603 - PostgreSQL's own tools, arguments are ours
        args, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()}")


async def committed_offsets(bootstrap: str, prefix: str) -> dict[str, dict[str, int]]:
    """The committed offsets of the services' consumer groups: group -> "topic:partition" ->
    offset."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        groups = sorted(
            g[0] for g in await admin.list_consumer_groups() if g[0].startswith(prefix + "duban-")
        )
        found: dict[str, dict[str, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            found[group] = {
                f"{tp.topic}:{tp.partition}": meta.offset for tp, meta in sorted(offsets.items())
            }
        return found
    finally:
        await admin.close()


def backup(
    target_dir: Path,
    databases: Sequence[Database],
    *,
    kafka: tuple[str, str] | None,
    now: datetime | None = None,
    evidence: Path | None = None,
) -> Path:
    """Take a backup of every database into a new `backup-<UTC time>` dir; return it.

    `kafka` = (bootstrap servers, topic prefix): whose group offsets to record first (None:
    none recorded); `evidence`: progress's evidence folder, copied after the databases (None:
    not copied)."""
    now = now or datetime.now(UTC)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = target_dir / f"backup-{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    try:
        _fill(folder, databases, kafka, now, evidence)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half backup that looks like one
        raise
    return folder


def _fill(
    folder: Path,
    databases: Sequence[Database],
    kafka: tuple[str, str] | None,
    now: datetime,
    evidence: Path | None,
) -> None:
    """Record the group offsets, copy each database, then the evidence files, write the
    manifest last."""
    offsets = asyncio.run(committed_offsets(*kafka)) if kafka else {}
    files = {}
    for db in databases:
        path = folder / db.file_name
        backup_database(db, path)
        files[db.service] = {
            "file": path.name,
            "kind": "sqlite" if db.is_sqlite else "postgresql",
            "source": db.parsed.render_as_string(hide_password=True),
            "bytes": path.stat().st_size,
        }
    manifest: dict[str, object] = {
        "taken_at": now.isoformat(),
        "databases": files,
        "group_offsets_before_backup": offsets,
        "note": "Group offsets were read before the databases were copied; each database keeps"
        " its own consumed offsets (consumer_offset), where the consumers resume after a restore.",
    }
    if evidence is not None:
        manifest["evidence"] = backup_evidence(evidence, folder / EVIDENCE)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))


def restore(
    folder: Path,
    databases: Sequence[Database],
    *,
    clean: bool = False,
    evidence: Path | None = None,
) -> None:
    """Restore each database from a backup dir made by `backup`, and the evidence files into
    `evidence` when given (checked first: a damaged backup restores nothing of them)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    if evidence is not None and "evidence" in manifest:
        restore_evidence(folder, manifest["evidence"], evidence)
    for db in databases:
        entry = manifest["databases"].get(db.service)
        if entry is None:
            raise BackupError(f"{folder} holds no backup of {db.service}")
        kind = "sqlite" if db.is_sqlite else "postgresql"
        if entry["kind"] != kind:
            raise BackupError(
                f"{db.service}: the backup is {entry['kind']}, the target is {kind}; set"
                f" DUBAN_{db.service.upper()}_DATABASE_URL to a {entry['kind']} database"
            )
        restore_database(folder / entry["file"], db, clean=clean)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.backup", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    take = sub.add_parser("backup", help="back up the three databases")
    take.add_argument("--dir", type=Path, default=ROOT / "backups")
    take.add_argument(
        "--no-offsets", action="store_true", help="do not record the groups' offsets (no broker)"
    )
    put = sub.add_parser("restore", help="restore the three databases (services stopped)")
    put.add_argument("folder", type=Path)
    put.add_argument("--clean", action="store_true", help="PostgreSQL: replace what is there")
    put.add_argument("--yes", action="store_true", help="do not ask before overwriting")
    show = sub.add_parser("list", help="list the backups")
    show.add_argument("--dir", type=Path, default=ROOT / "backups")
    args = parser.parse_args(argv)
    databases = [database_of(s) for s in SERVICES]
    try:
        if args.command == "backup":
            bootstrap = os.environ.get(
                "DUBAN_KAFKA_BOOTSTRAP_SERVERS",
                f"127.0.0.1:{os.environ.get('DUBAN_KAFKA_PORT', '19092')}",
            )
            kafka = (
                None if args.no_offsets else (bootstrap, os.environ.get("DUBAN_TOPIC_PREFIX", ""))
            )
            folder = backup(args.dir, databases, kafka=kafka, evidence=evidence_dir_of())
            print(f"backup: {folder}")
            print((folder / "manifest.json").read_text())
        elif args.command == "restore":
            if not (args.folder / "manifest.json").exists():
                raise BackupError(f"{args.folder} is not a backup (no manifest.json)")
            targets = ", ".join(db.parsed.render_as_string(hide_password=True) for db in databases)
            if not args.yes:
                answer = input(
                    f"restore {args.folder} over {targets}? Stop the services first. [y/N] "
                )
                if answer.strip().lower() not in ("y", "yes"):
                    print("restore: nothing done")
                    return 1
            restore(args.folder, databases, clean=args.clean, evidence=evidence_dir_of())
            print(f"restore: {args.folder} restored into {targets}; start the services")
        else:
            for folder in sorted(args.dir.glob("backup-*")):
                manifest = json.loads((folder / "manifest.json").read_text())
                sizes = ", ".join(f"{s} {e['bytes']} B" for s, e in manifest["databases"].items())
                if "evidence" in manifest:
                    kept = manifest["evidence"]
                    sizes += f", evidence {kept['files']} files {kept['bytes']} B"
                print(f"{folder}  {manifest['taken_at']}  {sizes}")
    except BackupError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
