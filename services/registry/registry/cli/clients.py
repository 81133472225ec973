"""duban-registry client and key commands: create-client, rotate-client, revoke-client,
list-clients, rotate-signing-key."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from duban_shared.cli import agency_id

from registry.cli.common import PROG, run_use_case
from registry.domain.errors import Refusal
from registry.settings import RegistrySettings
from registry.store.clients import ROLES, ClientSecret
from registry.use_cases import clients
from registry.use_cases.context import Context
from registry.use_cases.keys import rotate_signing_key

T = TypeVar("T")


def run(work: Callable[[Context], Awaitable[T]]) -> T:
    """Run use cases on the registry database; a refusal exits with its code and message."""
    try:
        return run_use_case(work)
    except Refusal as exc:
        raise SystemExit(f"{PROG}: [{exc.code}] {exc.message}") from None


def _shell_word(value: str) -> str:
    """Quote a value for a shell only when it needs it (Chinese names stay readable)."""
    return value if re.fullmatch(r"[\w@%+=:,./-]+", value) else shlex.quote(value)


def _print_secret(issued: ClientSecret, agency_name: str | None) -> None:
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

    issued, name = run(
        lambda ctx: clients.create_client(
            ctx,
            role=args.role,
            label=args.label,
            agency_id=wanted_id,
            agency_name=args.agency_name,
        )
    )
    _print_secret(issued, name)
    return 0


def cmd_rotate_client(args: argparse.Namespace) -> int:
    """Give a client a new secret and print it (the old one stops working)."""

    _print_secret(*run(lambda ctx: clients.rotate_client(ctx, args.client_id)))
    return 0


def cmd_revoke_client(args: argparse.Namespace) -> int:
    """Revoke a client: it gets no new tokens, and its tokens are refused everywhere."""

    revoked, _ = run(lambda ctx: clients.revoke_client(ctx, args.client_id))
    revoked_at = revoked.revoked_at
    when = revoked_at.isoformat() if revoked_at else "?"
    print(
        f"client {args.client_id} revoked at {when}; every service refuses its tokens once the "
        "running registry has relayed the revocation (seconds)"
    )
    return 0


def cmd_list_clients(_args: argparse.Namespace) -> int:
    """Print every API client, one per line (no secrets)."""

    rows = run(clients.list_clients)
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

    kid = run(lambda ctx: rotate_signing_key(ctx, retention))
    print(
        f"signing key {kid} is active; retired keys stay in the JWKS for "
        f"{retention.total_seconds() / 3600:g} h (services pick the new key up within a minute)"
    )
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the client and signing key commands to the CLI."""
    p = sub.add_parser("create-client", help="create an API client; prints its secret once")
    p.add_argument("--role", required=True, choices=list(ROLES))
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
