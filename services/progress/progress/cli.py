"""duban-progress command line: migrate, serve, worker, dead-letters, prune,
archive-plan-year."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from duban_shared import topics
from duban_shared.cli import PruneJob, add_dead_letters, add_migrate, add_prune, add_serve

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


def _prune_job() -> PruneJob:
    from duban_shared.clock import SystemClock
    from duban_shared.db import create_engine, session_factory
    from duban_shared.retention import check_broker_retention
    from duban_shared.telemetry import create_tracer_provider

    from progress.service import SERVICE
    from progress.store.retention import NEVER_PRUNED, pruner

    settings = ProgressSettings()
    engine = create_engine(settings.database_url, pool_size=1)
    provider = create_tracer_provider(SERVICE)
    wall = SystemClock()
    job = pruner(
        settings,
        session_factory(engine),
        provider.get_tracer("duban.progress"),
        settings.domain_clock(wall),
        wall,
    )

    async def check() -> object:
        return await check_broker_retention(
            settings.kafka_bootstrap_servers,
            [settings.topic_prefix + t for t in settings.consumed_inbox_topics],
            settings.retention_inbox_days,
            setting="DUBAN_PROGRESS_RETENTION_INBOX_DAYS",
        )

    async def close() -> None:
        await engine.dispose()
        provider.shutdown()

    return PruneJob(job, NEVER_PRUNED, check, close)


def _archive(args: argparse.Namespace) -> int:
    import asyncio

    from duban_shared.clock import SystemClock
    from duban_shared.db import create_engine, session_factory
    from duban_shared.telemetry import create_tracer_provider

    from progress.service import SERVICE
    from progress.use_cases.archive import ArchivePlanYear, ArchiveRefused

    settings = ProgressSettings()

    async def run() -> int:
        engine = create_engine(settings.database_url, pool_size=1)
        provider = create_tracer_provider(SERVICE)
        archive = ArchivePlanYear(
            session_factory(engine),
            settings.domain_clock(SystemClock()),
            provider.get_tracer("duban.progress"),
        )
        try:
            done = await archive(args.year, dry_run=args.dry_run)
        except ArchiveRefused as refused:
            print(f"duban-progress: {refused.message}", file=sys.stderr)
            return 2
        finally:
            await engine.dispose()
            provider.shutdown()
        verb = "would archive" if args.dry_run else "archived"
        print(
            f"{done.year}: {verb} {done.reports} report(s) of {done.work_points} work point(s)"
            + ("" if args.dry_run else f" in {done.batches} batch(es)")
        )
        return 0

    return asyncio.run(run())


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
    add_prune(sub, "duban-progress", _prune_job)
    archive = sub.add_parser(
        "archive-plan-year",
        help="move a finished plan year's reports to the archive (chains still verify)",
        description="Move the reports of the work points whose plan starts in YEAR from the "
        "report history to status_report_archive, unchanged, whole chains per transaction. "
        "Nothing is deleted; verification, timelines and scorecards read both tables.",
    )
    archive.add_argument("year", type=int, metavar="YEAR", help="a plan year before this one")
    archive.add_argument("--dry-run", action="store_true", help="count, move nothing")
    archive.set_defaults(func=_archive)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
