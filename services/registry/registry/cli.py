"""duban-registry command line: plans, API clients, signing keys, migrate, serve."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from duban_shared.cli import add_migrate, add_serve, agency_id
from sqlmodel.ext.asyncio.session import AsyncSession

from registry import auth_store, cli_plans, keys
from registry.auth_models import ApiClient
from registry.cli_common import MIGRATIONS, PROG, in_transaction
from registry.settings import RegistrySettings

T = TypeVar("T")


# ---------------------------------------------------------------- API clients and keys


def _in_transaction(work: Callable[[AsyncSession, datetime], Awaitable[T]]) -> T:
    """Run `work` in one transaction of the registry database; client errors exit clearly."""
    try:
        return in_transaction(work)
    except auth_store.ClientError as exc:
        raise SystemExit(f"{PROG}: [{exc.code}] {exc.message}") from None


def _shell_word(value: str) -> str:
    """Quote a value for a shell only when it needs it (Chinese names stay readable)."""
    return value if re.fullmatch(r"[\w@%+=:,./-]+", value) else shlex.quote(value)


def _print_secret(issued: auth_store.ClientSecret, agency_name: str | None) -> None:
    client = issued.client
    fields = {
        "client_id": client.client_id,
        "client_secret": issued.secret,
        "role": client.role,
        "agency_id": str(client.agency_id) if client.agency_id else "",
        "agency_name": agency_name or "",
    }
    for name, value in fields.items():
        print(f"{name}={_shell_word(value)}")
    print(
        f"registry: the secret of {client.client_id} is shown only now; store it safely",
        file=sys.stderr,
    )


def cmd_create_client(args: argparse.Namespace) -> int:
    """Create an API client and print its id and secret (shown once)."""
    wanted_id: uuid.UUID | None = agency_id(args.agency_id, PROG) if args.agency_id else None
    if args.role == "agency" and wanted_id is None and not args.agency_name:
        raise SystemExit(f"{PROG}: an agency client needs --agency-name or --agency-id")

    async def work(
        session: AsyncSession, now: datetime
    ) -> tuple[auth_store.ClientSecret, str | None]:
        agency = None
        if wanted_id is not None or args.agency_name:
            agency = await auth_store.resolve_agency(
                session, agency_id=wanted_id, agency_name=args.agency_name
            )
        issued = await auth_store.create_client(
            session, role=args.role, agency=agency, label=args.label, now=now
        )
        return issued, agency.name if agency is not None else None

    issued, name = _in_transaction(work)
    _print_secret(issued, name)
    return 0


def cmd_rotate_client(args: argparse.Namespace) -> int:
    """Give a client a new secret and print it (the old one stops working)."""

    async def work(
        session: AsyncSession, now: datetime
    ) -> tuple[auth_store.ClientSecret, str | None]:
        issued = await auth_store.rotate_secret(session, args.client_id, now)
        return issued, await auth_store.agency_name(session, issued.client)

    _print_secret(*_in_transaction(work))
    return 0


def cmd_revoke_client(args: argparse.Namespace) -> int:
    """Revoke a client: it gets no new tokens, and its tokens are refused everywhere."""

    async def work(session: AsyncSession, now: datetime) -> datetime | None:
        return (await auth_store.revoke_client(session, args.client_id, now)).revoked_at

    revoked_at = _in_transaction(work)
    when = revoked_at.isoformat() if revoked_at else "?"
    print(
        f"client {args.client_id} revoked at {when}; every service refuses its tokens once the "
        "running registry has relayed the revocation (seconds)"
    )
    return 0


def cmd_list_clients(_args: argparse.Namespace) -> int:
    """Print every API client, one per line (no secrets)."""

    async def work(session: AsyncSession, _now: datetime) -> list[tuple[ApiClient, str | None]]:
        return await auth_store.list_clients(session)

    rows = _in_transaction(work)
    print("client_id\trole\tagency\tlabel\tcreated_at\tlast_used_at\tstate")
    for client, name in rows:
        state = "revoked" if client.revoked_at else "active"
        used = client.last_used_at.isoformat() if client.last_used_at else "-"
        print(
            f"{client.client_id}\t{client.role}\t{name or '-'}\t{client.label or '-'}\t"
            f"{client.created_at.isoformat()}\t{used}\t{state}"
        )
    return 0


def cmd_rotate_key(_args: argparse.Namespace) -> int:
    """Make a new token signing key and retire the current one."""
    retention = timedelta(seconds=RegistrySettings().retired_key_retention_seconds)

    async def work(session: AsyncSession, now: datetime) -> str:
        return (await keys.rotate(session, now, retention)).kid

    kid = _in_transaction(work)
    print(
        f"signing key {kid} is active; retired keys stay in the JWKS for "
        f"{retention.total_seconds() / 3600:g} h (services pick the new key up within a minute)"
    )
    return 0


def _add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("create-client", help="create an API client; prints its secret once")
    p.add_argument("--role", required=True, choices=list(auth_store.ROLES))
    p.add_argument("--agency-name", help="exact agency name, e.g. 市林业局 (role agency)")
    p.add_argument("--agency-id", help="or the agency's id")
    p.add_argument("--label", default="", help="what the client is, e.g. the system's name")
    p.set_defaults(func=cmd_create_client)
    p = sub.add_parser("rotate-client", help="give a client a new secret; prints it once")
    p.add_argument("client_id")
    p.set_defaults(func=cmd_rotate_client)
    p = sub.add_parser("revoke-client", help="revoke a client")
    p.add_argument("client_id")
    p.set_defaults(func=cmd_revoke_client)
    sub.add_parser("list-clients", help="list API clients").set_defaults(func=cmd_list_clients)
    sub.add_parser(
        "rotate-signing-key", help="make a new token signing key, retire the current one"
    ).set_defaults(func=cmd_rotate_key)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-registry`."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cli_plans.add_commands(sub)
    _add_client_commands(sub)
    add_migrate(sub, "registry", MIGRATIONS, lambda: RegistrySettings().database_url)
    add_serve(sub, "registry.main:create_app", 8001)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
