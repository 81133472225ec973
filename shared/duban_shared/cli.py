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
    sub: argparse._SubParsersAction[argparse.ArgumentParser], app_factory: str, port: int
) -> None:
    """Add `serve`: run the service's app factory under uvicorn, logging as duban_shared.logs
    configures it (DUBAN_LOG_FORMAT)."""

    def run(args: argparse.Namespace) -> int:
        import uvicorn

        from duban_shared.logs import configure_logging, uvicorn_options

        configure_logging("duban-" + app_factory.partition(".")[0])
        uvicorn.run(app_factory, factory=True, host=args.host, port=args.port, **uvicorn_options())
        return 0

    parser = sub.add_parser("serve", help="run the HTTP API and background work")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.set_defaults(func=run)
