"""duban-notifier command line: migrate, set-email, serve."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

from duban_shared.clock import SystemClock
from duban_shared.db import create_engine, session_factory
from duban_shared.migrations import upgrade

from notifier.settings import NotifierSettings
from notifier.store import replace_email_contacts

MIGRATIONS = Path(__file__).parent / "migrations"


def cmd_migrate(_args: argparse.Namespace) -> int:
    """Bring the notifier database to the latest schema."""
    settings = NotifierSettings()
    upgrade(MIGRATIONS, settings.database_url)
    print(f"notifier: database at head ({settings.database_url})")
    return 0


async def _set_email(database_url: str, agency_id: uuid.UUID, addresses: list[str]) -> None:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            await replace_email_contacts(session, agency_id, addresses, SystemClock().now())
    finally:
        await engine.dispose()


def cmd_set_email(args: argparse.Namespace) -> int:
    """Replace an agency's email contacts."""
    try:
        agency_id = uuid.UUID(args.agency_id)
    except ValueError:
        raise SystemExit(
            f"duban-notifier: '{args.agency_id}' is not an agency id; find it with "
            "GET /v1/agencies?name=... on the registry"
        ) from None
    bad = [a for a in args.email if "@" not in a]
    if bad:
        raise SystemExit(f"duban-notifier: not email addresses: {', '.join(bad)}")
    asyncio.run(_set_email(NotifierSettings().database_url, agency_id, args.email))
    print(f"notifier: {len(args.email)} email contact(s) set for agency {agency_id}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP API and the stall consumer."""
    import uvicorn

    uvicorn.run("notifier.main:create_app", factory=True, host=args.host, port=args.port)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-notifier`."""
    parser = argparse.ArgumentParser(prog="duban-notifier", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("set-email", help="replace an agency's email contacts")
    p.add_argument("--agency-id", required=True)
    p.add_argument("--email", required=True, action="append", help="repeat for several")
    p.set_defaults(func=cmd_set_email)
    p = sub.add_parser("serve", help="run the HTTP API and the consumer")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8003)
    p.set_defaults(func=cmd_serve)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
