"""The restore drill, on PostgreSQL and on SQLite: back up while reports flow, keep reporting,
stop, restore into fresh databases, restart the services on them with the same consumer groups,
and check that nothing was lost or done twice.

After the restore the groups' committed offsets are ahead of the restored data. Each database
keeps its own consumed offsets (duban_shared.offsets), so the consumers seek back to them and
read again what the backup did not hold; the inbox skips what it did. Reports re-applied make
the same stall episodes and transitions (their ids derive from the report), so the notifier
recognises them and raises no alert twice; a message recorded as sent in the backup is not sent
again. Nor is one sent after the backup: the notifier told the deliveries topic when it sent it,
and the restored notifier reads that topic before it sends anything (notifier
use_cases/delivery_records.py).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from duban_shared import topics
from duban_shared.db import create_engine, session_factory
from notifier.store.models import Alert, NotificationLog
from notifier.store.models import ConsumerOffset as NotifierOffset
from notifier.store.models import OutboxMessage as NotifierOutbox
from progress.store import history
from progress.store.models import ConsumerOffset as ProgressOffset
from progress.store.models import OutboxMessage, StatusReport, WorkPointState, WorkPointView
from sqlalchemy.engine import make_url
from sqlmodel import col, func, select

from scripts import backup as backups
from tests.harness import _libpq, end_offsets, topic_specs, wait_for
from tests.stack import (
    FORESTRY,
    FORESTRY_MAIL,
    Client,
    Services,
    Stack,
    build_services,
    running_stack,
)

REPORTS_BEFORE, REPORTS_AFTER = 15, 15  # reports posted before and after the backup
T0 = time.monotonic()


def phase(text: str) -> None:
    """Say where the drill is (pytest -s shows it)."""
    print(f"drill {time.monotonic() - T0:6.1f}s {text}", file=sys.stderr, flush=True)


STATUSES = ("on_track", "at_risk", "blocked", "on_track", "not_started")


@pytest.fixture(params=["postgresql", "sqlite"])
def database_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Reporter:
    """Agency systems posting reports one after another until told to stop."""

    def __init__(self, stack: Stack, pairs: list[tuple[Client, str]]) -> None:
        self.stack = stack
        self.pairs = pairs
        self.accepted: list[uuid.UUID] = []
        self.stop = asyncio.Event()

    async def post(self, n: int) -> None:
        """Post one report (the n-th of the flow)."""
        client, code = self.pairs[n % len(self.pairs)]
        status = STATUSES[(n // len(self.pairs)) % len(STATUSES)]
        self.stack.clock.advance(timedelta(minutes=1))
        response = await self.stack.post_event(client, code, status, percent=min(10 + n, 90))
        assert response.status_code == 202, response.text
        self.accepted.append(uuid.UUID(response.json()["event_id"]))

    async def run(self) -> None:
        """Post until stopped."""
        n = 0
        while not self.stop.is_set():
            await self.post(n)
            n += 1


async def _pairs(stack: Stack) -> list[tuple[Client, str]]:
    """Six agencies, each on a work point it leads and 市林业局 has no part in (so their alerts
    reach no mailbox of the drill but the log)."""
    async with stack.progress.sessions() as session:
        views = (
            await session.exec(select(WorkPointView).order_by(col(WorkPointView.number)))
        ).all()
    pairs: list[tuple[Client, str]] = []
    seen = {FORESTRY}
    for view in views:
        names = {r["name"] for r in view.responsibilities}
        [lead, *_] = [r["name"] for r in view.responsibilities if r["role"] == "lead"]
        if FORESTRY in names or lead in seen:
            continue
        seen.add(lead)
        pairs.append((await stack.client_for(lead), view.code))
        if len(pairs) == 6:
            break
    return pairs


async def _applied(stack_progress: Any, ids: list[uuid.UUID]) -> int:
    async with stack_progress.sessions() as session:
        query = select(func.count()).where(col(StatusReport.event_id).in_(ids))
        return int((await session.exec(query)).one())


async def _caught_up(service: Any, model: Any, group: str, topic: str, bootstrap: str) -> bool:
    """The group's offsets stored in the service's database reached the topic's end."""
    partitions = {name: n for name, n, _ in topic_specs()}[topic.split(".", 1)[1]]
    ends = await end_offsets(bootstrap, topic, partitions)
    async with service.sessions() as session:
        rows = (await session.exec(select(model).where(model.group_id == group))).all()
    stored = {r.partition: r.next_offset for r in rows if r.topic == topic}
    return all(stored.get(p, 0) >= end for p, end in ends.items() if end > 0)


async def _snapshot(progress: Any, notifier: Any) -> dict[str, Any]:
    """What must come out the same after the restore: the work points' states (colour,
    episode, last report), the reports, the alerts by episode, the messages sent."""
    async with progress.sessions() as session:
        states = {
            s.work_point_id: (s.level, s.stall_episode_id, s.report_seq)
            for s in (await session.exec(select(WorkPointState))).all()
        }
        reports = int((await session.exec(select(func.count()).select_from(StatusReport))).one())
        verification = await history.verify(session)
    async with notifier.sessions() as session:
        alerts = [(a.episode_id, a.state) for a in (await session.exec(select(Alert))).all()]
        sent = [
            (n.alert_id, n.step, n.channel, n.recipient)
            for n in (
                await session.exec(select(NotificationLog).where(NotificationLog.status == "sent"))
            ).all()
        ]
    return {
        "states": states,
        "reports": reports,
        "chains_ok": verification.ok,
        "rows_checked": verification.rows_checked,
        "alerts": sorted(alerts, key=str),
        "sent": sorted(sent, key=str),
    }


async def test_restore_drill(
    database_kind: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    request: pytest.FixtureRequest,
    pg_admin_url: str,
    tmp_path: Path,
    smtp: Any,
    spans: Any,
) -> None:
    fresh: Callable[[str], str]
    created: list[str] = []
    if database_kind == "postgresql":
        make = request.getfixturevalue("make_database")

        def fresh(service: str) -> str:  # an empty database to restore into
            name = f"t_{uuid.uuid4().hex[:12]}_{service}_restored"
            with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
            return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    else:
        make = request.getfixturevalue("sqlite_url")

        def fresh(service: str) -> str:
            return f"sqlite+aiosqlite:///{tmp_path / 'restored' / service}.db"

    try:
        await _drill(kafka_bootstrap, topic_prefix, make, fresh, tmp_path, smtp, spans)
    finally:
        if created:
            with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
                for name in created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _drill(
    kafka_bootstrap: str,
    topic_prefix: str,
    make: Callable[[str], str],
    fresh: Callable[[str], str],
    tmp_path: Path,
    smtp: Any,
    spans: Any,
) -> None:
    global T0
    T0 = time.monotonic()
    urls: dict[str, str] = {}

    def database(service: str) -> str:
        urls[service] = make(service)
        return urls[service]

    status_topic = topic_prefix + topics.STATUS
    stalls_topic = topic_prefix + topics.STALLS
    status_group = f"{topic_prefix}duban-progress.status"
    stalls_group = f"{topic_prefix}duban-notifier.stalls"
    async with running_stack(kafka_bootstrap, topic_prefix, database, smtp, spans) as stack:
        phase("stack up")
        # An alert mailed before the backup: the backup knows it was sent.
        blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=40)
        await stack.until_applied(blocked)

        async def mailed() -> bool:
            async with stack.notifier.sessions() as session:
                query = select(func.count()).where(NotificationLog.status == "sent")
                return int((await session.exec(query)).one()) == 1

        await wait_for(mailed, what="the first alert's email, recorded as sent")

        phase("first alert mailed")
        reporter = Reporter(stack, await _pairs(stack))
        flow = asyncio.create_task(reporter.run())
        await wait_for(
            lambda: _flowed(reporter, stack, REPORTS_BEFORE), within=60, what="reports to flow"
        )
        phase("flowing")
        # Back up mid-flow: the reporter and the consumers go on meanwhile.
        databases = [backups.Database(s, urls[s]) for s in backups.SERVICES]
        folder = await asyncio.to_thread(
            backups.backup,
            tmp_path / "backups",
            databases,
            kafka=(kafka_bootstrap, topic_prefix),
        )
        phase("backup taken")
        at_backup = len(reporter.accepted)
        # 市林业局 reports 35 back on track after the backup: its recovery message is sent now;
        # the restored notifier never knew, and learns it from the deliveries topic.
        recovered = await stack.post_event(stack.forestry, 35, "on_track", percent=60)
        reporter.accepted.append(uuid.UUID(recovered.json()["event_id"]))
        stalls_at_backup = await _total(kafka_bootstrap, stalls_topic)
        wanted = at_backup + REPORTS_AFTER
        await wait_for(
            lambda: _posted(reporter, wanted, kafka_bootstrap, stalls_topic, stalls_at_backup),
            within=60,
            what="more reports, and transitions after the backup",
        )
        phase("posted after backup")
        reporter.stop.set()
        await flow
        accepted = list(reporter.accepted)
        await wait_for(
            lambda: _all_applied(stack.progress, accepted), within=60, what="every report applied"
        )
        await wait_for(
            lambda: _settled(stack.progress, stack.notifier, kafka_bootstrap, topic_prefix),
            within=60,
            what="the transitions relayed and handled by the notifier",
        )
        phase("settled")
        await wait_for(lambda: _mails(smtp, 2), what="the recovery email, after the backup")
        await wait_for(
            lambda: _relayed(stack.notifier), what="the notifier's outbox relayed (sends told)"
        )
        before = await _snapshot(stack.progress, stack.notifier)
        mails_before = len(smtp.messages)
        committed = await backups.committed_offsets(kafka_bootstrap, topic_prefix)
    # The system is stopped. Restore into fresh databases and start on them.
    manifest = (folder / "manifest.json").read_text()
    assert status_group in manifest
    phase("stopped")
    restored = {s: fresh(s) for s in backups.SERVICES}
    targets = [backups.Database(s, restored[s]) for s in backups.SERVICES]
    await asyncio.to_thread(backups.restore, folder, targets)
    in_backup = await _count_restored(restored["progress"], accepted)
    phase("restored")
    async with _restarted(kafka_bootstrap, topic_prefix, restored, smtp, spans, stack) as again:
        progress, notifier = again.progress, again.notifier
        # The restored databases are behind the groups: the consumers seek back.
        await wait_for(
            lambda: _all_applied(progress, accepted), within=60, what="re-read reports applied"
        )
        await wait_for(
            lambda: _settled(progress, notifier, kafka_bootstrap, topic_prefix),
            within=60,
            what="the restored system to settle",
        )
        phase("settled again")
        # The recovery email's delivery, planned again from the re-read transition, is marked
        # sent from the deliveries topic (nothing is sent before that topic was read).
        await wait_for(
            lambda: _same_sent(notifier, before["sent"]), what="the deliveries known as sent"
        )
        after = await _snapshot(progress, notifier)
        recorded = notifier.delivery_replay.kept
        rewound = progress.offset_keepers[status_group].rewound
        notifier_rewound = notifier.offset_keepers[stalls_group].rewound
        assert await _caught_up(
            progress, ProgressOffset, status_group, status_topic, kafka_bootstrap
        )
        assert await _caught_up(
            notifier, NotifierOffset, stalls_group, stalls_topic, kafka_bootstrap
        )
    lost_by_restore = len(accepted) - in_backup
    # The restore lost reports, the consumers read them again from the topic.
    assert lost_by_restore > 0 and sum(rewound.values()) >= lost_by_restore, (
        rewound,
        lost_by_restore,
    )
    assert notifier_rewound, "the notifier's restored database was behind its group too"
    assert committed[status_group], committed
    # Every report posted is applied once, every chain verifies, the states are the same.
    assert after["reports"] == before["reports"] == len(accepted) + 1
    assert after["chains_ok"] and before["chains_ok"]
    assert after["states"] == before["states"]
    # One alert per stall episode, the same as before; no message sent twice.
    assert after["alerts"] == before["alerts"]
    assert len({episode for episode, _ in after["alerts"]}) == len(after["alerts"])
    assert after["sent"] == before["sent"]
    # The stall email, recorded as sent in the backup, is not sent again; nor is the recovery
    # email, sent after the backup: the deliveries topic told the restored notifier.
    assert mails_before == 2
    assert len(smtp.messages) == 2
    ids = [str(m["Message-ID"]) for m in smtp.mailbox(FORESTRY_MAIL)]
    assert len(ids) == 2 and len(set(ids)) == 2, ids
    assert recorded >= 1, "the restored notifier read the send made after the backup"
    if not restored["progress"].startswith("sqlite"):
        print(f"drill: row widths {await asyncio.to_thread(_row_widths, restored)}")
    print(
        f"drill: {len(accepted)} reports ({at_backup} before the backup), "
        f"{lost_by_restore} not in the backup and re-read; status partitions rewound {rewound}; "
        f"{len(after['alerts'])} alerts; {recorded} deliveries read from the deliveries topic;"
        f" {len(smtp.messages)} emails, none twice; backup {folder.name}"
    )


async def _mails(smtp: Any, n: int) -> bool:
    return len(smtp.messages) >= n


async def _relayed(notifier: Any) -> bool:
    """Every row of the notifier's outbox (alert transitions, sends told) is published."""
    async with notifier.sessions() as session:
        query = select(func.count()).where(col(NotifierOutbox.published_at).is_(None))
        return int((await session.exec(query)).one()) == 0


async def _same_sent(notifier: Any, sent: list[Any]) -> bool:
    """The notifier's log has exactly these deliveries sent."""
    return (await _snapshot_sent(notifier)) == sent


async def _snapshot_sent(notifier: Any) -> list[Any]:
    async with notifier.sessions() as session:
        rows = (
            await session.exec(select(NotificationLog).where(NotificationLog.status == "sent"))
        ).all()
    return sorted(((n.alert_id, n.step, n.channel, n.recipient) for n in rows), key=str)


async def _flowed(reporter: Reporter, stack: Stack, n: int) -> bool:
    return (
        len(reporter.accepted) >= n and await _applied(stack.progress, reporter.accepted) >= n // 2
    )


async def _posted(
    reporter: Reporter, n: int, bootstrap: str, stalls_topic: str, stalls_at_backup: int
) -> bool:
    """n reports posted, and some of them moved a work point after the backup (the statuses
    cycle, so one does): the notifier's restored database is behind its group too."""
    if len(reporter.accepted) < n:
        return False
    return await _total(bootstrap, stalls_topic) > stalls_at_backup


async def _total(bootstrap: str, topic: str) -> int:
    """Records in a topic (the sum of its partitions' end offsets)."""
    partitions = {name: n for name, n, _ in topic_specs()}[topic.split(".", 1)[1]]
    return sum((await end_offsets(bootstrap, topic, partitions)).values())


async def _all_applied(progress: Any, ids: list[uuid.UUID]) -> bool:
    return await _applied(progress, ids) == len(ids)


async def _settled(progress: Any, notifier: Any, bootstrap: str, prefix: str) -> bool:
    """Progress relayed every transition and the notifier consumed the stalls topic."""
    async with progress.sessions() as session:
        query = select(func.count()).where(col(OutboxMessage.published_at).is_(None))
        if int((await session.exec(query)).one()):
            return False
    return await _caught_up(
        notifier,
        NotifierOffset,
        f"{prefix}duban-notifier.stalls",
        prefix + topics.STALLS,
        bootstrap,
    ) and await _caught_up(
        progress,
        ProgressOffset,
        f"{prefix}duban-progress.status",
        prefix + topics.STATUS,
        bootstrap,
    )


async def _count_restored(url: str, ids: list[uuid.UUID]) -> int:
    """How many of these reports a restored progress database holds (before any service ran)."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            query = select(func.count()).where(col(StatusReport.event_id).in_(ids))
            return int((await session.exec(query)).one())
    finally:
        await engine.dispose()


@asynccontextmanager
async def _restarted(
    bootstrap: str, prefix: str, urls: dict[str, str], smtp: Any, spans: Any, old: Stack
) -> AsyncIterator[Services]:
    """The three services again, on the restored databases, same topics and groups, same clock."""
    built = build_services(bootstrap, prefix, urls.__getitem__, smtp, spans.provider, old.clock)
    started = []
    try:
        for service in built.all:
            await service.start()
            started.append(service)
            await service.background.started()
        yield built
    finally:
        for service in reversed(started):
            await service.close()
        await built.jwks_http.aclose()


def _row_widths(urls: dict[str, str]) -> dict[str, int]:
    """Average stored width of a row (pg_column_size of the tuple; indexes not counted) of the
    tables that grow with reports and alerts, for docs/capacity.md."""
    tables = {
        "progress": ("status_report", "ingested_event", "inbox", "stall_transition", "outbox"),
        "notifier": ("alert", "notification_log", "inbox"),
    }
    widths = {}
    for service, names in tables.items():
        with psycopg.connect(_libpq(urls[service])) as conn:
            for name in names:
                row = conn.execute(f"SELECT avg(pg_column_size(t.*)) FROM {name} t").fetchone()
                if row and row[0] is not None:
                    widths[f"{service}.{name}"] = round(float(row[0]))
    return widths
