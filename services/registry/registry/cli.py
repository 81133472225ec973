"""duban-registry command line: parse-plan, import-plan, migrate, serve."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from duban_shared.cli import add_migrate, add_serve
from duban_shared.clock import SystemClock
from duban_shared.db import create_engine, session_factory
from duban_shared.migrations import upgrade

from registry.plan_parser import PlanParseError, parse_plan
from registry.settings import RegistrySettings
from registry.store import Defaults, ImportReport, import_plan, sha256_text

MIGRATIONS = Path(__file__).parent / "migrations"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"duban-registry: no such file: {path}") from None
    except UnicodeDecodeError:
        raise SystemExit(f"duban-registry: {path} is not UTF-8 text; convert it first") from None


def _parse_or_exit(path: str) -> tuple[str, object]:
    text = _read(path)
    try:
        return text, parse_plan(text)
    except PlanParseError as exc:
        raise SystemExit(f"duban-registry: {path}: [{exc.code}] {exc.message}") from None


def cmd_parse(args: argparse.Namespace) -> int:
    """Print the parsed plan as JSON."""
    _, parsed = _parse_or_exit(args.path)
    json.dump(parsed.model_dump(mode="json"), sys.stdout, ensure_ascii=False, indent=2)  # type: ignore[attr-defined]
    sys.stdout.write("\n")
    return 0


async def _import(path: str, slug: str) -> ImportReport:
    settings = RegistrySettings()
    text, parsed = _parse_or_exit(path)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await import_plan(
                session,
                parsed,  # type: ignore[arg-type]
                slug=slug,
                source_sha256=sha256_text(text),
                now=SystemClock().now(),
                defaults=Defaults(
                    settings.default_report_every_working_days,
                    settings.default_grace_working_days,
                ),
            )
    finally:
        await engine.dispose()


def describe(report: ImportReport) -> str:
    """Say in one line what an import changed."""

    def numbers(items: list[int]) -> str:
        return f" ({', '.join(map(str, items))})" if 0 < len(items) <= 10 else ""

    return (
        f"plan {report.plan_slug}: {'created' if report.plan_created else 'existing'}; "
        f"agencies added {len(report.agencies_added)}; work points added "
        f"{len(report.work_points_added)}{numbers(report.work_points_added)}, updated "
        f"{len(report.work_points_updated)}{numbers(report.work_points_updated)}, removed "
        f"{len(report.work_points_removed)}{numbers(report.work_points_removed)}, unchanged "
        f"{report.work_points_unchanged}"
    )


def cmd_import(args: argparse.Namespace) -> int:
    """Store a plan (applying migrations first); print what changed."""
    settings = RegistrySettings()
    upgrade(MIGRATIONS, settings.database_url)
    print(f"registry: database at head ({settings.database_url})", file=sys.stderr)
    slug = args.slug or Path(args.path).stem
    report = asyncio.run(_import(args.path, slug))
    print(describe(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-registry`."""
    parser = argparse.ArgumentParser(prog="duban-registry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parse-plan", help="print a plan text parsed as JSON")
    p.add_argument("path")
    p.set_defaults(func=cmd_parse)
    p = sub.add_parser("import-plan", help="store a plan; re-importing changes nothing")
    p.add_argument("path")
    p.add_argument("--slug", help="plan id (default: the file name without extension)")
    p.set_defaults(func=cmd_import)
    add_migrate(sub, "registry", MIGRATIONS, lambda: RegistrySettings().database_url)
    add_serve(sub, "registry.main:create_app", 8001)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
