"""Pieces every service's command line shares: migrate, serve, agency ids."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from pathlib import Path

from duban_shared.migrations import upgrade

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
