"""Pieces every service's command line shares: migrate, serve, dead letters, prune, agency
ids."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from duban_shared.migrations import upgrade

if TYPE_CHECKING:
    from duban_shared.retention import Pruner

Command = Callable[[argparse.Namespace], int]


def agency_id(value: str, prog: str) -> uuid.UUID:
    """Parse an agency id given on the command line, or exit with what to do."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise SystemExit(
            f"{prog}: '{value}' is not an agency id; find it with "
            "GET /v1/agencies?name=... on the registry"
        ) from None


def add_migrate(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    migrations: Path,
    database_url: Callable[[], str],
) -> None:
    """Add `migrate`: bring the service's database to the latest schema."""

    def run(_args: argparse.Namespace) -> int:
        url = database_url()
        upgrade(migrations, url)
        print(f"{name}: database at head ({url})")
        return 0

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=run)


def add_serve(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    app_factory: str,
    port: int,
    *,
    command: str = "serve",
    help_text: str = "run the HTTP API and background work",
    check_workers: Callable[[int], None] | None = None,
) -> None:
    """Add `serve` (or another `command`): run an app factory under uvicorn, logging as
    duban_shared.logs configures it (DUBAN_LOG_FORMAT).

    With `check_workers` the command takes `--workers N` (uvicorn's worker processes, each
    building its own app); the check refuses a count the service cannot run that way.
    """

    def run(args: argparse.Namespace) -> int:
        import uvicorn

        from duban_shared.logs import uvicorn_options

        workers = getattr(args, "workers", 1)
        if check_workers is not None:
            check_workers(workers)
        uvicorn.run(
            app_factory,
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            **uvicorn_options("duban-" + app_factory.partition(".")[0]),
        )
        return 0

    parser = sub.add_parser(command, help=help_text)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    if check_workers is not None:
        parser.add_argument(
            "--workers", type=_positive, default=1, help="HTTP worker processes (1)"
        )
    parser.set_defaults(func=run)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of processes")
    return number


def add_dead_letters(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    prog: str,
    where: Callable[[], tuple[str, str]],
) -> None:
    """Add `dead-letters list|show|replay` for the service's dead-letter topic; `where` gives
    (bootstrap servers, actual topic) from the service's settings."""
    parser = sub.add_parser(
        "dead-letters",
        help="list, show and replay records the consumers could not apply",
        description="Records the service's consumers parked instead of applying, with their "
        "reasons. Replay re-submits them to the topic they came from once the cause is fixed "
        "(applying one twice is harmless).",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="one line per dead letter: id, parked at, code")
    listing.add_argument("--code", help="only those parked with this error code")
    show = actions.add_parser("show", help="everything about dead letters, as JSON")
    show.add_argument("ids", nargs="+", metavar="ID", help="PARTITION:OFFSET, as `list` prints")
    again = actions.add_parser("replay", help="re-submit dead letters to their source topics")
    again.add_argument("ids", nargs="*", metavar="ID", help="PARTITION:OFFSET, as `list` prints")
    again.add_argument("--code", help="every dead letter parked with this error code")

    def run(args: argparse.Namespace) -> int:
        return asyncio.run(_dead_letters(args, prog, *where()))

    parser.set_defaults(func=run)


async def _dead_letters(args: argparse.Namespace, prog: str, bootstrap: str, topic: str) -> int:
    from duban_shared import deadletters

    letters = await deadletters.read_dead_letters(bootstrap, topic)
    if args.action == "list":
        chosen = [d for d in letters if args.code in (None, d.code)]
        for d in chosen:
            facts = d.describe()
            print(f"{d.id}\t{facts['parked_at']}\t{d.code}\t{d.source}\t{facts['message']}")
        print(f"{len(chosen)} dead letter(s) on {topic}", file=sys.stderr)
        return 0
    by_id = {d.id: d for d in letters}
    unknown = [i for i in args.ids if i not in by_id]
    if unknown:
        raise SystemExit(
            f"{prog}: no dead letter {', '.join(unknown)} on {topic}; "
            f"`{prog} dead-letters list` prints the ids"
        )
    chosen = [by_id[i] for i in args.ids]
    if args.action == "show":
        print(json.dumps([d.describe() for d in chosen], ensure_ascii=False, indent=2))
        return 0
    if args.code:
        chosen += [d for d in letters if d.code == args.code and d not in chosen]
    if not chosen:
        raise SystemExit(f"{prog}: name dead letters to replay (ids, or --code CODE)")
    for letter, placed in zip(chosen, await deadletters.replay(bootstrap, chosen), strict=True):
        print(f"{letter.id}\treplayed to {placed}")
    return 0


@dataclass
class PruneJob:
    """What `prune` needs from a service: its pruner (without metrics), the tables it never
    prunes (table -> why), the check of the Kafka rule against the broker (None: the service
    has no inbox), and what to close afterwards."""

    pruner: Pruner
    never_pruned: Mapping[str, str]
    check: Callable[[], Awaitable[object]] | None
    close: Callable[[], Awaitable[None]]


def add_prune(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    prog: str,
    job: Callable[[], PruneJob],
) -> None:
    """Add `prune [--dry-run]`: apply the retention settings now, printing per table what went
    (or, dry, what would go) and the tables never pruned. A service with an inbox checks the
    Kafka rule first (the consumed topics' retention.ms on the broker) and refuses to prune an
    inbox that breaks it (exit 2)."""
    parser = sub.add_parser(
        "prune",
        help="delete rows past their retention (DUBAN_<SERVICE>_RETENTION_*); --dry-run counts",
        description="Delete what is past its retention from the tables that only grow, in "
        "batches of DUBAN_<SERVICE>_RETENTION_BATCH_SIZE rows, one short transaction each. "
        "The service's background does the same every DUBAN_<SERVICE>_RETENTION_INTERVAL_"
        "SECONDS.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would go, delete nothing"
    )

    def run(args: argparse.Namespace) -> int:
        try:
            made = job()
        except ValueError as exc:  # settings refused (pydantic's ValidationError is one)
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
        return asyncio.run(_prune(made, prog, dry_run=args.dry_run))

    parser.set_defaults(func=run)


async def _prune(job: PruneJob, prog: str, *, dry_run: bool) -> int:
    from duban_shared.retention import RetentionError

    try:
        if job.check is not None:
            try:
                await job.check()
            except RetentionError as exc:
                print(f"{prog}: {exc.message}", file=sys.stderr)
                return 2
            except Exception as exc:
                print(
                    f"{prog}: cannot check the topics' retention on the broker, so the inbox "
                    f"is not pruned: {exc}",
                    file=sys.stderr,
                )
                return 2
        for outcome in await job.pruner.prune(dry_run=dry_run):
            print(outcome.describe(dry_run=dry_run))
        for table, why in job.never_pruned.items():
            print(f"{table}\tnever pruned\t{why}")
        return 0
    finally:
        await job.close()
