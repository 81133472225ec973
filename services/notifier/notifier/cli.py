"""duban-notifier command line: migrate, set-email, republish-alerts, serve, sms-sink,
dead-letters, prune."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

from duban_shared import topics
from duban_shared.audit import Actor
from duban_shared.cli import (
    PruneJob,
    add_dead_letters,
    add_migrate,
    add_prune,
    add_serve,
    agency_id,
)
from duban_shared.clock import SystemClock
from duban_shared.db import create_engine, session_factory

from notifier.domain.contacts import ContactIn
from notifier.settings import NotifierSettings
from notifier.use_cases.alert_events import republish
from notifier.use_cases.contacts import Contacts

MIGRATIONS = Path(__file__).parent / "migrations"


async def _set_email(database_url: str, agency_id: uuid.UUID, addresses: list[str]) -> None:
    engine = create_engine(database_url)
    contacts = Contacts(session_factory(engine), SystemClock(), wecom_robots=())
    try:
        emails = [ContactIn("email", a) for a in addresses]
        operator = Actor("cli:duban-notifier", "operator")
        await contacts.set_as_given(operator, agency_id, emails, channel="email")
    finally:
        await engine.dispose()


def cmd_set_email(args: argparse.Namespace) -> int:
    """Replace an agency's email contacts."""
    agency = agency_id(args.agency_id, "duban-notifier")
    bad = [a for a in args.email if "@" not in a]
    if bad:
        raise SystemExit(f"duban-notifier: not email addresses: {', '.join(bad)}")
    asyncio.run(_set_email(NotifierSettings().database_url, agency, args.email))
    print(f"notifier: {len(args.email)} email contact(s) set for agency {agency}")
    return 0


async def _republish_alerts(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        return await republish(session_factory(engine), SystemClock().now())
    finally:
        await engine.dispose()


def cmd_republish_alerts(args: argparse.Namespace) -> int:
    """Queue every stall alert's present state on duban.alerts.v1 (the running notifier's
    outbox relay sends them)."""
    queued = asyncio.run(_republish_alerts(NotifierSettings().database_url))
    print(f"notifier: {queued} alert transition(s) queued on {topics.ALERTS}")
    return 0


def cmd_sms_sink(args: argparse.Namespace) -> int:
    """Run a local SMS gateway that keeps every message (for demos and `make up`)."""
    from notifier.adapters.sms_sink import serve

    serve(Path(args.dir), args.token, args.host, args.port)
    return 0


def _dead_letter_topic() -> tuple[str, str]:
    settings = NotifierSettings()
    return settings.kafka_bootstrap_servers, settings.topic_prefix + topics.NOTIFIER_DLQ


def _prune_job() -> PruneJob:
    from duban_shared.retention import check_broker_retention
    from duban_shared.telemetry import create_tracer_provider

    from notifier.service import SERVICE
    from notifier.store.retention import NEVER_PRUNED, pruner

    settings = NotifierSettings()
    engine = create_engine(settings.database_url, pool_size=1)
    provider = create_tracer_provider(SERVICE)
    job = pruner(
        settings,
        session_factory(engine),
        provider.get_tracer("duban.notifier"),
        settings.domain_clock(SystemClock()),
        wall_clock=SystemClock(),
    )

    async def check() -> object:
        return await check_broker_retention(
            settings.kafka_bootstrap_servers,
            [settings.topic_prefix + t for t in settings.consumed_inbox_topics],
            settings.retention_inbox_days,
            setting="DUBAN_NOTIFIER_RETENTION_INBOX_DAYS",
        )

    async def close() -> None:
        await engine.dispose()
        provider.shutdown()

    return PruneJob(job, NEVER_PRUNED, check, close)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `duban-notifier`."""
    parser = argparse.ArgumentParser(prog="duban-notifier", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_migrate(sub, "notifier", MIGRATIONS, lambda: NotifierSettings().database_url)
    p = sub.add_parser("set-email", help="replace an agency's email contacts")
    p.add_argument("--agency-id", required=True)
    p.add_argument("--email", required=True, action="append", help="repeat for several")
    p.set_defaults(func=cmd_set_email)
    p = sub.add_parser(
        "republish-alerts",
        help="queue every alert's present state on duban.alerts.v1 (progress's acknowledgement "
        "times for alerts from before the outbox)",
    )
    p.set_defaults(func=cmd_republish_alerts)
    add_serve(sub, "notifier.main:create_app", 8003)
    p = sub.add_parser("sms-sink", help="run a local SMS gateway (http_sms) that keeps messages")
    p.add_argument("--dir", required=True, help="folder the messages are kept in (JSON files)")
    p.add_argument("--token", required=True, help="bearer token the channel must send")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1026)
    p.set_defaults(func=cmd_sms_sink)
    add_dead_letters(sub, "duban-notifier", _dead_letter_topic)
    add_prune(sub, "duban-notifier", _prune_job)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
