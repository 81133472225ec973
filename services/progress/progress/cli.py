"""duban-progress command line: migrate, serve, worker, dead-letters."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from duban_shared import topics
from duban_shared.cli import add_dead_letters, add_migrate, add_serve

from progress.settings import ProgressSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def _check_workers(workers: int) -> None:
    """Several API processes leave the background work to one `duban-progress worker`."""
    if workers > 1 and ProgressSettings().background:
        raise SystemExit(
            f"duban-progress: serve --workers {workers} runs the HTTP API only: set "
            "DUBAN_PROGRESS_BACKGROUND=false and run `duban-progress worker` beside it "
            "(the consumers, outbox relay and sweeper)"
        )


def _dead_letter_topic() -> tuple[str, str]:
    settings = ProgressSettings()
    return settings.kafka_bootstrap_servers, settings.topic_prefix + topics.PROGRESS_DLQ


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-progress`."""
    parser = argparse.ArgumentParser(prog="duban-progress", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_migrate(sub, "progress", MIGRATIONS, lambda: ProgressSettings().database_url)
    add_serve(sub, "progress.main:create_app", 8002, check_workers=_check_workers)
    add_serve(
        sub,
        "progress.main:create_worker_app",
        8012,
        command="worker",
        help_text="run the consumers, outbox relay and sweeper (HTTP: /healthz and /metrics only)",
    )
    add_dead_letters(sub, "duban-progress", _dead_letter_topic)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
