"""duban-registry plan commands: parse-plan, import-plan (diff, then --confirm), load-aliases,
republish."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry import agencies
from registry.cli_common import PROG, in_transaction
from registry.models import Agency, Plan, WorkPoint
from registry.plan_parser import ParsedPlan, PlanParseError, parse_plan
from registry.settings import RegistrySettings
from registry.snapshots import publish_work_points
from registry.store import ConfirmationRequired, Defaults, ImportReport, import_plan, sha256_text
from registry.versions import PlanDiff

EXIT_NEEDS_CONFIRMATION = 3
T = TypeVar("T")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"{PROG}: no such file: {path}") from None
    except UnicodeDecodeError:
        raise SystemExit(f"{PROG}: {path} is not UTF-8 text; convert it first") from None


def _parse_or_exit(path: str) -> tuple[str, ParsedPlan]:
    text = _read(path)
    try:
        return text, parse_plan(text)
    except PlanParseError as exc:
        raise SystemExit(f"{PROG}: {path}: [{exc.code}] {exc.message}") from None


def cmd_parse(args: argparse.Namespace) -> int:
    """Print the parsed plan as JSON."""
    _, parsed = _parse_or_exit(args.path)
    json.dump(parsed.model_dump(mode="json"), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


def describe(report: ImportReport) -> str:
    """Say in one line what an import changed."""
    if not report.changed:
        return (
            f"plan {report.plan_slug}: version {report.version} unchanged "
            f"({report.work_points_unchanged} work points)"
        )
    return (
        f"plan {report.plan_slug}: {'created' if report.plan_created else 'updated'}, "
        f"version {report.version}; {summary(report.diff)}"
    )


def summary(diff: PlanDiff) -> str:
    """Count what a diff changes, naming up to ten work points per kind."""

    def part(label: str, numbers: list[int]) -> str:
        named = f" ({', '.join(map(str, numbers))})" if 0 < len(numbers) <= 10 else ""
        return f"{label} {len(numbers)}{named}"

    return ", ".join(
        [
            part("added", diff.added),
            part("removed", diff.removed),
            part("reworded", diff.reworded),
            part("moved", diff.moved),
            part("responsibilities changed", diff.responsibilities_changed),
            part("targets changed", diff.targets_changed),
            f"new agencies {len(diff.agencies_added)}",
        ]
    )


def _print_details(diff: PlanDiff) -> None:
    for number, detail in sorted(diff.details.items()):
        for what, change in detail.items():
            before = json.dumps(change["before"], ensure_ascii=False)
            after = json.dumps(change["after"], ensure_ascii=False)
            print(f"  work point {number} {what}:\n    - {before}\n    + {after}")
    for name in diff.agencies_added:
        print(f"  new agency: {name}")


def cmd_import(args: argparse.Namespace) -> int:
    """Store a plan; a changed text of an existing plan needs --confirm after its diff."""
    text, parsed = _parse_or_exit(args.path)
    slug = args.slug or Path(args.path).stem
    settings = RegistrySettings()

    async def work(session: AsyncSession, now: datetime) -> ImportReport:
        return await import_plan(
            session,
            parsed,
            slug=slug,
            source_sha256=sha256_text(text),
            source_text=text,
            now=now,
            defaults=Defaults.of(settings),
            confirm=args.confirm,
        )

    try:
        report = in_transaction(work)
    except ConfirmationRequired as exc:
        print(f"plan {slug}: this text would change: {summary(exc.diff)}")
        _print_details(exc.diff)
        print(f"Nothing was changed. To apply it: {PROG} import-plan {args.path} --confirm")
        return EXIT_NEEDS_CONFIRMATION
    print(describe(report))
    return 0


def cmd_load_aliases(args: argparse.Namespace) -> int:
    """Add agency aliases from a TOML file ([aliases] alias = "agency name")."""
    try:
        data: dict[str, Any] = tomllib.loads(_read(args.path))
    except tomllib.TOMLDecodeError as exc:
        raise SystemExit(f"{PROG}: {args.path}: not valid TOML: {exc}") from None
    aliases = data.get("aliases")
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise SystemExit(f'{PROG}: {args.path}: expected a table [aliases] of alias = "name"')

    async def work(session: AsyncSession, now: datetime) -> tuple[int, list[str]]:
        return await agencies.load_aliases(session, aliases, now)

    added, refused = in_transaction(work)
    print(f"aliases: {added} added, {len(aliases) - added - len(refused)} already there")
    for problem in refused:
        print(f"  refused: {problem}", file=sys.stderr)
    return 1 if refused else 0


def cmd_republish(args: argparse.Namespace) -> int:
    """Publish every agency and work point snapshot again (all plans, or one).

    Consumers keep read models of these compacted topics and ignore what they already have; a
    new version of a service that reads more fields of a snapshot learns them this way.
    """

    async def work(session: AsyncSession, now: datetime) -> tuple[int, int]:
        query = select(WorkPoint.id)
        if args.plan:
            plan = (await session.exec(select(Plan).where(Plan.slug == args.plan))).first()
            if plan is None:
                raise SystemExit(f"{PROG}: no plan {args.plan!r}; import it first")
            query = query.where(WorkPoint.plan_id == plan.id)
        ids = list((await session.exec(query)).all())
        await publish_work_points(session, ids, now)
        published = 0
        for agency in (await session.exec(select(Agency))).all():
            await agencies.publish(session, agency, now)
            published += 1
        return len(ids), published

    work_points, agency_count = in_transaction(work)
    print(f"republished {work_points} work point(s) and {agency_count} agencies")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the plan commands to the CLI."""
    p = sub.add_parser("parse-plan", help="print a plan text parsed as JSON")
    p.add_argument("path")
    p.set_defaults(func=cmd_parse)
    p = sub.add_parser(
        "import-plan", help="store a plan; a changed text shows its diff and needs --confirm"
    )
    p.add_argument("path")
    p.add_argument("--slug", help="plan id (default: the file name without extension)")
    p.add_argument("--confirm", action="store_true", help="apply a changed text")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("load-aliases", help="add agency aliases from a TOML file")
    p.add_argument("path")
    p.set_defaults(func=cmd_load_aliases)
    p = sub.add_parser(
        "republish", help="publish every work point and agency snapshot again (idempotent)"
    )
    p.add_argument("--plan", help="only this plan's work points")
    p.set_defaults(func=cmd_republish)
