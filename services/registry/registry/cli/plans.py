"""duban-registry plan commands: parse-plan, import-plan (diff, then --confirm), load-aliases,
republish."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from registry.adapters.plan_files import read_plan_file
from registry.cli.common import PROG, run_use_case
from registry.domain.errors import Refusal
from registry.domain.plan_import import ConfirmationRequired, ImportReport
from registry.domain.plan_parser import ParsedPlan, PlanParseError, parse_plan
from registry.domain.plan_review import (
    Correction,
    apply_corrections,
    parse_report,
    read_corrections,
    review_key,
)
from registry.domain.versions import PlanDiff
from registry.use_cases.agencies import load_alias_table
from registry.use_cases.plans import import_plan_text, republish

EXIT_NEEDS_CONFIRMATION = 3


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"{PROG}: no such file: {path}") from None
    except UnicodeDecodeError:
        raise SystemExit(f"{PROG}: {path} is not UTF-8 text; convert it first") from None


def _parse_or_exit(path: str) -> tuple[str, ParsedPlan]:
    """Read a plan file (.txt, .docx, .pdf, .html) and parse its text, or exit saying why not."""
    try:
        text = read_plan_file(path)
    except FileNotFoundError:
        raise SystemExit(f"{PROG}: no such file: {path}") from None
    except Refusal as exc:
        raise SystemExit(f"{PROG}: {path}: [{exc.code}] {exc.message}") from None
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

    def part(label: str, codes: list[str]) -> str:
        named = f" ({', '.join(codes)})" if 0 < len(codes) <= 10 else ""
        return f"{label} {len(codes)}{named}"

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
    for code, detail in diff.details.items():
        for what, change in detail.items():
            before = json.dumps(change["before"], ensure_ascii=False)
            after = json.dumps(change["after"], ensure_ascii=False)
            print(f"  work point {code} {what}:\n    - {before}\n    + {after}")
    for name in diff.agencies_added:
        print(f"  new agency: {name}")


def render_report(report: dict[str, Any]) -> str:
    """The parse report as lines for a terminal: every work point on its line, then what the
    office must look at (unmarked items, notes)."""
    plan, count = report["plan"], report["summary"]
    out = [
        f"plan {plan['title']} ({plan['year']}), issued {plan['issued_on']} by "
        f"{plan['issuer'] or 'no issuer named'}",
        f"numbering {report['numbering']}: {count['sections']} sections, "
        f"{count['work_points']} work points, {count['unmarked']} unmarked, "
        f"{count['targets']} targets, {count['with_due_date']} with a due date, "
        f"{count['agencies']} agencies",
    ]
    for point in report["work_points"]:
        co = f"; co {'、'.join(point['co'])}" if point["co"] else ""
        flags = [
            flag
            for flag, on in (
                ("lead inferred", point["lead_inferred"]),
                ("several markers", point["several_markers"]),
                ("and other units", point["with_other_units"]),
            )
            if on
        ]
        targets = "、".join(
            f"{t['metric']} {t['comparator']} {t['value']}{t['unit']}" for t in point["targets"]
        )
        out.append(
            f"  {point['code']:>7}  line {point['line']:<4} {point['title'][:30]}\n"
            f"           lead {'、'.join(point['lead'])}{co}"
            + (f" [{', '.join(flags)}]" if flags else "")
            + (f"\n           due {point['due_on']}" if point["due_on"] else "")
            + (f"\n           targets {targets}" if targets else "")
        )
    for item in report["unmarked"]:
        out.append(f"  unmarked {item['code']} line {item['line']}: {item['text'][:40]}")
    for note in report["notes"]:
        out.append(f"  note [{note['code']}] {note['message']}")
    return "\n".join(out)


def _corrections_or_exit(path: str | None) -> dict[str, Correction]:
    if path is None:
        return {}
    try:
        return read_corrections(Path(path).read_bytes())
    except FileNotFoundError:
        raise SystemExit(f"{PROG}: no such file: {path}") from None
    except Refusal as exc:
        raise SystemExit(f"{PROG}: {path}: [{exc.code}] {exc.message}") from None


def cmd_import(args: argparse.Namespace) -> int:
    """Store a plan; a changed text of an existing plan needs --confirm after its diff.

    --dry-run prints the parse report and changes nothing.
    """
    text, parsed = _parse_or_exit(args.path)
    if args.dry_run:
        found = parse_report(parsed)
        if args.json:
            json.dump(found, sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
        else:
            print(render_report(found))
        return 0
    corrections = _corrections_or_exit(args.corrections)
    review = review_key(corrections, skip_unmarked=args.skip_unmarked)
    try:
        parsed = apply_corrections(parsed, corrections, skip_unmarked=args.skip_unmarked)
    except Refusal as exc:
        raise SystemExit(f"{PROG}: {args.path}: [{exc.code}] {exc.message}") from None
    slug = args.slug or Path(args.path).stem
    try:
        report = run_use_case(
            lambda ctx: import_plan_text(
                ctx, parsed, text, slug=slug, confirm=args.confirm, review=review
            )
        )
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

    added, refused = run_use_case(lambda ctx: load_alias_table(ctx, aliases))
    print(f"aliases: {added} added, {len(aliases) - added - len(refused)} already there")
    for problem in refused:
        print(f"  refused: {problem}", file=sys.stderr)
    return 1 if refused else 0


def cmd_republish(args: argparse.Namespace) -> int:
    """Publish every agency and work point snapshot again (all plans, or one).

    Consumers keep read models of these compacted topics and ignore what they already have; a
    new version of a service that reads more fields of a snapshot learns them this way.
    """

    try:
        work_points, agency_count = run_use_case(lambda ctx: republish(ctx, args.plan))
    except Refusal as exc:
        if exc.code != "unknown_plan":
            raise
        raise SystemExit(f"{PROG}: no plan {args.plan!r}; import it first") from None
    print(f"republished {work_points} work point(s) and {agency_count} agencies")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the plan commands to the CLI."""
    p = sub.add_parser(
        "parse-plan", help="print a plan file (.txt, .docx, .pdf, .html) parsed as JSON"
    )
    p.add_argument("path")
    p.set_defaults(func=cmd_parse)
    p = sub.add_parser(
        "import-plan",
        help="store a plan file (.txt, .docx, .pdf, .html); a changed text shows its diff and "
        "needs --confirm",
    )
    p.add_argument("path")
    p.add_argument("--slug", help="plan id (default: the file name without extension)")
    p.add_argument("--confirm", action="store_true", help="apply a changed text")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the parse report (every work point on its line, unmarked items) and stop",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: the report as JSON")
    p.add_argument(
        "--corrections",
        metavar="FILE",
        help='JSON of corrections by item id: {"3.2": {"lead": [...], "co": [...]}}',
    )
    p.add_argument(
        "--skip-unmarked",
        action="store_true",
        help="leave out items that name no responsible agency (else the import is refused)",
    )
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("load-aliases", help="add agency aliases from a TOML file")
    p.add_argument("path")
    p.set_defaults(func=cmd_load_aliases)
    p = sub.add_parser(
        "republish", help="publish every work point and agency snapshot again (idempotent)"
    )
    p.add_argument("--plan", help="only this plan's work points")
    p.set_defaults(func=cmd_republish)
