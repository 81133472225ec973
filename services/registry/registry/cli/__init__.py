"""duban-registry command line: plans, API clients, signing keys, migrate, serve, prune."""

from __future__ import annotations

import argparse
import sys

from duban_shared.cli import PruneJob, add_migrate, add_prune, add_serve

from registry.cli import accounts, clients, plans
from registry.cli.common import MIGRATIONS, PROG
from registry.settings import RegistrySettings


def _prune_job() -> PruneJob:
    from duban_shared.clock import SystemClock
    from duban_shared.db import create_engine, session_factory
    from duban_shared.telemetry import create_tracer_provider

    from registry.store.retention import NEVER_PRUNED, pruner

    settings = RegistrySettings()
    engine = create_engine(settings.database_url, pool_size=1)
    provider = create_tracer_provider(PROG)
    job = pruner(
        settings, session_factory(engine), provider.get_tracer("duban.registry"), SystemClock()
    )

    async def close() -> None:
        await engine.dispose()
        provider.shutdown()

    return PruneJob(job, NEVER_PRUNED, None, close)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-registry`."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plans.add_commands(sub)
    clients.add_commands(sub)
    accounts.add_commands(sub)
    add_migrate(sub, "registry", MIGRATIONS, lambda: RegistrySettings().database_url)
    add_serve(sub, "registry.main:create_app", 8001)
    add_prune(sub, PROG, _prune_job)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
