"""duban-registry command line: plans, API clients, signing keys, migrate, serve."""

from __future__ import annotations

import argparse
import sys

from duban_shared.cli import add_migrate, add_serve

from registry.cli import accounts, clients, plans
from registry.cli.common import MIGRATIONS, PROG
from registry.settings import RegistrySettings


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-registry`."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plans.add_commands(sub)
    clients.add_commands(sub)
    accounts.add_commands(sub)
    add_migrate(sub, "registry", MIGRATIONS, lambda: RegistrySettings().database_url)
    add_serve(sub, "registry.main:create_app", 8001)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
