"""duban-progress command line: migrate, create-api-key, sweep, serve."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import uuid
from pathlib import Path

from duban_shared.clock import SystemClock
from duban_shared.db import create_engine, session_factory
from duban_shared.migrations import upgrade

from progress.models import ApiKey
from progress.settings import ProgressSettings
from progress.store import hash_key

MIGRATIONS = Path(__file__).parent / "migrations"


def cmd_migrate(_args: argparse.Namespace) -> int:
    """Bring the progress database to the latest schema."""
    settings = ProgressSettings()
    upgrade(MIGRATIONS, settings.database_url)
    print(f"progress: database at head ({settings.database_url})")
    return 0


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
    try:
        agency_id = uuid.UUID(args.agency_id)
    except ValueError:
        raise SystemExit(
            f"duban-progress: '{args.agency_id}' is not an agency id; find it with "
            "GET /v1/agencies?name=... on the registry"
        ) from None
    settings = ProgressSettings()
    print(asyncio.run(create_api_key(settings.database_url, agency_id, args.label)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP API, consumers, relay and sweeper."""
    import uvicorn

    uvicorn.run("progress.main:create_app", factory=True, host=args.host, port=args.port)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-progress`."""
    parser = argparse.ArgumentParser(prog="duban-progress", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("create-api-key", help="issue an API key to an agency system")
    p.add_argument("--agency-id", required=True, help="the agency's id in the registry")
    p.add_argument("--label", default="agency system")
    p.set_defaults(func=cmd_create_key)
    p = sub.add_parser("serve", help="run the HTTP API and background work")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8002)
    p.set_defaults(func=cmd_serve)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
