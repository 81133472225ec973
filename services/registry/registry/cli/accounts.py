"""duban-registry account commands: create-account (the first office account, and the local
stack's), list-accounts."""

from __future__ import annotations

import argparse
import sys
import uuid

from duban_shared.cli import agency_id

from registry.cli.clients import run
from registry.cli.common import PROG
from registry.store.clients import ROLES
from registry.use_cases import accounts


def cmd_create_account(args: argparse.Namespace) -> int:
    """Create a personal account. With --password-stdin the password read from standard input
    is the account's; otherwise a one-time password is printed, to be changed at first login."""
    wanted_id: uuid.UUID | None = agency_id(args.agency_id, PROG) if args.agency_id else None
    if args.role == "agency" and wanted_id is None and not args.agency_name:
        raise SystemExit(f"{PROG}: an agency account needs --agency-name or --agency-id")
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise SystemExit(f"{PROG}: --password-stdin read an empty line")
    made = run(
        lambda ctx: accounts.create_account(
            ctx,
            username=args.username,
            display_name=args.name or args.username,
            role=args.role,
            agency_id=wanted_id,
            agency_name=args.agency_name,
            password=password,
        )
    )
    account = made.account
    print(f"username={account.username}")
    print(f"role={account.role}")
    if made.agency_name:
        print(f"agency_name={made.agency_name}")
    if made.one_time_password is not None:
        print(f"one_time_password={made.one_time_password}")
        print(
            f"registry: the one-time password of {account.username} is shown only now; "
            "it must be changed at the first login",
            file=sys.stderr,
        )
    return 0


def cmd_list_accounts(_args: argparse.Namespace) -> int:
    """Print every personal account, one per line (no passwords)."""
    rows = run(accounts.list_accounts)
    print("username\tdisplay_name\trole\tagency\ttotp\tlast_login_at\tstate")
    for account, name in rows:
        state = "disabled" if account.disabled_at else "active"
        last = account.last_login_at.isoformat() if account.last_login_at else "-"
        totp = "yes" if account.totp_secret else "no"
        print(
            f"{account.username}\t{account.display_name}\t{account.role}\t{name or '-'}\t"
            f"{totp}\t{last}\t{state}"
        )
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the account commands to the CLI."""
    p = sub.add_parser(
        "create-account",
        help="create a personal account; prints a one-time password (or --password-stdin)",
    )
    p.add_argument("--username", required=True, help="3-32 of a-z 0-9 . _ -, e.g. lin.forest")
    p.add_argument("--name", default="", help="the person's name, e.g. 林小森")
    p.add_argument("--role", required=True, choices=list(ROLES))
    p.add_argument("--agency-name", help="exact agency name, e.g. 市林业局 (role agency)")
    p.add_argument("--agency-id", help="or the agency's id")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (kept: no change at first login)",
    )
    p.set_defaults(func=cmd_create_account)
    sub.add_parser("list-accounts", help="list personal accounts").set_defaults(
        func=cmd_list_accounts
    )
