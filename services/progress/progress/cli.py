"""duban-progress command line: migrate, serve."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from duban_shared.cli import add_migrate, add_serve

from progress.settings import ProgressSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-progress`."""
    parser = argparse.ArgumentParser(prog="duban-progress", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_migrate(sub, "progress", MIGRATIONS, lambda: ProgressSettings().database_url)
    add_serve(sub, "progress.main:create_app", 8002)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
