"""duban-progress command line: migrate, create-api-key, sweep, serve."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import uuid
from pathlib import Path

from duban_shared.cli import add_migrate, add_serve, agency_id
from duban_shared.clock import SystemClock
from duban_shared.db import create_engine, session_factory

from progress.models import ApiKey
from progress.settings import ProgressSettings
from progress.store import hash_key

MIGRATIONS = Path(__file__).parent / "migrations"


async def create_api_key(database_url: str, agency_id: uuid.UUID, label: str) -> str:
    """Store a new API key for an agency and return it (shown once, stored as a hash)."""
    raw = "dbk_" + secrets.token_urlsafe(24)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            session.add(
                ApiKey(
                    agency_id=agency_id,
                    key_sha256=hash_key(raw),
                    label=label,
                    created_at=SystemClock().now(),
                )
            )
    finally:
        await engine.dispose()
    return raw


def cmd_create_key(args: argparse.Namespace) -> int:
    """Print a new API key for an agency."""
    agency = agency_id(args.agency_id, "duban-progress")
    settings = ProgressSettings()
    print(asyncio.run(create_api_key(settings.database_url, agency, args.label)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-progress`."""
    parser = argparse.ArgumentParser(prog="duban-progress", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_migrate(sub, "progress", MIGRATIONS, lambda: ProgressSettings().database_url)
    p = sub.add_parser("create-api-key", help="issue an API key to an agency system")
    p.add_argument("--agency-id", required=True, help="the agency's id in the registry")
    p.add_argument("--label", default="agency system")
    p.set_defaults(func=cmd_create_key)
    add_serve(sub, "progress.main:create_app", 8002)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
