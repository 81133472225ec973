"""The checks, read from the databases, the broker and the mail sink themselves (never from the
services' answers): each waits for its condition up to a deadline, then reports what it saw."""

from __future__ import annotations

import asyncio
import email
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any

import psycopg
from duban_shared import topics
from duban_shared.deadletters import DeadLetter, read_dead_letters
from progress.store.history import verify
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from scripts.chaos.faults import Poison
from scripts.chaos.load import Sent
from scripts.chaos.stack import Stack


@dataclass
class Check:
    """One check: its name, whether it held, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass
class Results:
    """Every check, and the figures of the run."""

    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record one check."""
        self.checks.append(Check(name, ok, detail))

    @property
    def ok(self) -> bool:
        """Tell whether every check held."""
        return all(c.ok for c in self.checks)


async def until(
    condition: Callable[[], Awaitable[bool]], within: float, every: float = 2.0
) -> bool:
    """Poll a condition until it holds or `within` seconds passed; tell whether it held."""
    deadline = time.monotonic() + within
    while True:
        try:
            if await condition():
                return True
        except (psycopg.Error, OSError):
            pass  # the database may still be coming back: ask again
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)


async def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of one query on a database."""
    async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=5) as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


def _event_id(letter: DeadLetter) -> str | None:
    try:
        value = json.loads(letter.value or b"")
    except ValueError:
        return None
    found = value.get("event_id") if isinstance(value, dict) else None
    return str(found) if found else None


def _due_on(letter: DeadLetter) -> str | None:
    try:
        value = json.loads(letter.value or b"")
    except ValueError:
        return None
    return value.get("due_on") if isinstance(value, dict) else None


async def dead_letters(stack: Stack) -> list[DeadLetter]:
    """Progress's dead letters, read from the broker."""
    return await read_dead_letters(stack.bootstrap, topics.PROGRESS_DLQ)


async def replay_wrong_clock_letters(
    stack: Stack, accepted: set[str], env: dict[str, str]
) -> tuple[int, list[str]]:
    """What an operator does once the wrong clock is fixed: replay the accepted reports the
    2027 worker parked (calendar_year_missing for 2027) with `duban-progress dead-letters
    replay`. Returns how many, and the output."""
    from scripts.chaos.stack import VENV_BIN, run

    letters = await dead_letters(stack)
    ids = [
        d.id
        for d in letters
        if d.header("duban.source.topic") == topics.STATUS
        and _event_id(d) in accepted
        and d.code == "calendar_year_missing"
        and "2027" in d.header("duban.error.message")
    ]
    if not ids:
        return 0, []
    _, out = await run(
        [str(VENV_BIN / "duban-progress"), "dead-letters", "replay", *ids], env, timeout=120
    )
    return len(ids), out.splitlines()


async def run_checks(
    stack: Stack,
    sent: list[Sent],
    poisons: list[Poison],
    *,
    within: float,
) -> Results:
    """Every check of the suite; `within` bounds each wait."""
    results = Results()
    progress = stack.pg_dsn("progress")
    notifier = stack.pg_dsn("notifier")
    accepted = [s for s in sent if s.final_status == 202]
    accepted_ids = [s.event_id for s in accepted]
    poison_ids = {uuid.UUID(p.event_id) for p in poisons if p.event_id}

    # 1. Every report answered 202 is applied, once.
    found: set[uuid.UUID] = set()

    async def all_applied() -> bool:
        rows = await query(
            progress,
            "SELECT event_id FROM status_report WHERE event_id = ANY(%s)",
            accepted_ids,
        )
        found.clear()
        found.update(r[0] for r in rows)
        return len(found) == len(accepted_ids)

    await until(all_applied, within)
    lost = [s for s in accepted if s.event_id not in found]
    results.figures["reports applied"] = len(found)
    results.figures["reports lost"] = len(lost)
    detail = f"{len(found)} of {len(accepted)} accepted reports are in status_report"
    if lost:
        parked = {_event_id(d): d for d in await dead_letters(stack)}
        why = Counter(
            parked[str(s.event_id)].code if str(s.event_id) in parked else "not parked"
            for s in lost
        )
        detail += f"; missing {len(lost)}: {dict(why)}, e.g. {lost[0].event_id}"
    results.add("0 lost", not lost, detail)

    given_up = [s for s in sent if s.final_status != 202]
    if given_up:
        rows = await query(
            progress,
            "SELECT count(*) FROM status_report WHERE event_id = ANY(%s)",
            [s.event_id for s in given_up],
        )
        results.figures["reports not accepted, applied anyway"] = rows[0][0]

    # 2. Nothing counted twice: one row per event, chain positions and state counters agree.
    twice = await query(
        progress,
        "SELECT event_id, count(*) FROM status_report GROUP BY event_id HAVING count(*) > 1",
    )
    inbox_twice = await query(
        progress, "SELECT event_id, count(*) FROM inbox GROUP BY event_id HAVING count(*) > 1"
    )
    counters = await query(
        progress,
        "SELECT s.work_point_id, s.report_seq, r.n, r.top FROM work_point_state s JOIN "
        "(SELECT work_point_id, count(*) AS n, max(chain_seq) AS top FROM status_report "
        "GROUP BY work_point_id) r ON r.work_point_id = s.work_point_id "
        "WHERE s.report_seq <> r.n OR r.top <> r.n",
    )
    reports_total = (await query(progress, "SELECT count(*) FROM status_report"))[0][0]
    results.figures["reports in history (all)"] = reports_total
    results.figures["reports duplicated"] = len(twice) + len(inbox_twice)
    results.add(
        "0 counted twice",
        not twice and not inbox_twice and not counters,
        f"{len(twice)} events stored twice, {len(inbox_twice)} twice in the inbox, "
        f"{len(counters)} work points whose report count, last chain_seq and report_seq "
        f"disagree{': ' + str(counters[:3]) if counters else ''}",
    )

    # 3. Every work point's hash chain verifies (recomputed here from the rows).
    engine = create_async_engine(stack.db_url("progress"))
    try:
        async with AsyncSession(engine) as session:
            verification = await verify(session)
    finally:
        await engine.dispose()
    broken = verification.first_broken
    results.add(
        "every chain verifies",
        verification.ok,
        f"{verification.rows_checked} rows checked"
        + (f"; first broken: {broken}" if broken else ""),
    )

    # 4. Nothing stuck: the outbox relayed, every episode opened has its alert, every episode
    #    recovered has its alert resolved, no delivery left pending or sending.
    stuck: dict[str, Any] = {}

    async def nothing_stuck() -> bool:
        unpublished = await query(
            progress, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        opened = await query(
            progress, "SELECT DISTINCT episode_id FROM stall_transition WHERE kind = 'opened'"
        )
        recovered = await query(
            progress,
            "SELECT DISTINCT episode_id FROM stall_transition WHERE kind = 'recovered'",
        )
        alerts = dict(await query(notifier, "SELECT episode_id, state FROM alert"))
        # A delivery is stuck when it is still pending or sending a minute after it was due
        # again (next_attempt_at: its backoff, or the lease of a send whose outcome was not
        # recorded); one waiting for its moment is not stuck yet, and is waited for.
        pending = await query(
            notifier,
            "SELECT status, next_attempt_at < now() - interval '60 seconds' AS overdue, "
            "count(*), max(next_attempt_at) - now() FROM notification_log "
            "WHERE status IN ('pending', 'sending') GROUP BY 1, 2",
        )
        stuck.update(
            unpublished=unpublished[0][0],
            episodes_without_alert=sum(1 for (e,) in opened if e not in alerts),
            recovered_not_resolved=sum(
                1 for (e,) in recovered if e in alerts and alerts[e] != "resolved"
            ),
            deliveries_overdue={s: n for s, overdue, n, _ in pending if overdue},
            deliveries_waiting={
                s: f"{n}, due within {wait.total_seconds():.0f}s"
                for s, overdue, n, wait in pending
                if not overdue
            },
            alerts=len(alerts),
            episodes=len(opened),
        )
        return (
            stuck["unpublished"] == 0
            and stuck["episodes_without_alert"] == 0
            and stuck["recovered_not_resolved"] == 0
            and not pending
        )

    # Every delivery is waited for until it is sent (or failed for good), however far its due
    # moment lies (at most a send lease, five minutes, after the faults).
    held = await until(nothing_stuck, within)
    for _ in range(12):
        if held or not stuck.get("deliveries_waiting") or stuck.get("deliveries_overdue"):
            break
        held = await until(nothing_stuck, 30)
    results.figures["stall episodes opened"] = stuck.get("episodes", "?")
    results.figures["alerts"] = stuck.get("alerts", "?")
    results.add("0 stuck alerts", held, f"{stuck}")

    # 5. Mails: every sent delivery's message is in the sink once, and the sink holds nothing
    #    that no sent delivery accounts for (a message sent twice).
    sink = _sink_message_ids(stack.mail_dir)
    rows = await query(
        notifier,
        "SELECT DISTINCT provider_id FROM notification_log "
        "WHERE channel = 'email' AND status = 'sent' AND provider_id IS NOT NULL",
    )
    recorded = {r[0] for r in rows}
    counts = Counter(sink)
    # A message sent again under its own Message-ID (a notifier killed after the server took it
    # and before it recorded it as sent; the send's lease ran out) is the same message to the
    # recipient's mail system, which shows it once: counted, not a duplicate. A duplicate is a
    # second message, with another Message-ID, that no sent delivery accounts for.
    resent = sum(n - 1 for n in counts.values() if n > 1)
    unaccounted = [m for m in counts if m not in recorded]
    missing = [m for m in recorded if m not in counts]
    results.figures["mails in the sink"] = len(sink)
    results.figures["mails sent again (same Message-ID)"] = resent
    results.figures["mails duplicated"] = len(unaccounted)
    results.add(
        "0 duplicate mails",
        not unaccounted,
        f"{len(sink)} messages in the sink, {len(recorded)} sent deliveries recorded; "
        f"{len(unaccounted)} messages no sent delivery accounts for, {resent} sent again "
        "under the same Message-ID",
    )
    results.add(
        "every mail sent is in the sink",
        not missing,
        f"{len(missing)} sent deliveries whose message is not in the sink",
    )

    # 6. The poison records: refused at the edge (422), or parked with their reasons; never
    #    applied.
    letters = await dead_letters(stack)
    results.figures["dead letters (progress)"] = len(letters)
    results.figures["dead letters by code"] = dict(Counter(d.code for d in letters))
    applied_poison = await query(
        progress,
        "SELECT count(*) FROM status_report WHERE event_id = ANY(%s)",
        list(poison_ids),
    )
    due_2030 = await query(progress, "SELECT id FROM work_point_view WHERE due_on >= '2027-01-01'")
    outcomes = []
    poison_ok = applied_poison[0][0] == 0 and not due_2030
    snapshot_letters = [
        d
        for d in letters
        if d.header("duban.source.topic") == topics.WORK_POINTS and _due_on(d) == "2030-12-31"
    ]
    for p in poisons:
        if p.answer is not None and p.answer == 422:
            outcomes.append(f"{p.name} via {p.route}: refused 422 {p.answer_code}")
            continue
        if p.event_id:
            match = [d for d in letters if _event_id(d) == p.event_id]
        else:
            match = snapshot_letters
        reasons = sorted({f"{d.code}" for d in match if d.code and d.header("duban.error.message")})
        if p.answer is not None and p.answer >= 300:
            poison_ok = False
            outcomes.append(f"{p.name} via {p.route}: answered {p.answer} {p.answer_code}")
        elif reasons:
            via = f" (answered {p.answer})" if p.answer is not None else ""
            outcomes.append(f"{p.name} via {p.route}{via}: parked, {', '.join(reasons)}")
        else:
            poison_ok = False
            outcomes.append(f"{p.name} via {p.route}: NOT parked")
    results.add(
        "poison records refused or parked with reasons",
        poison_ok,
        "; ".join(outcomes)
        + f"; poison reports applied: {applied_poison[0][0]}; views due after 2026: "
        f"{[r[0] for r in due_2030]}",
    )

    # 7. Every agency's reports applied (none held up by another's poison).
    by_agency: dict[str, list[bool]] = {}
    for s in accepted:
        by_agency.setdefault(s.agency.name, []).append(s.event_id in found)
    short = [name for name, done in by_agency.items() if not all(done)]
    results.add(
        "every agency's reports applied",
        not short,
        f"{len(by_agency) - len(short)} of {len(by_agency)} agencies have all their accepted "
        f"reports applied{'; not: ' + ', '.join(short) if short else ''}",
    )
    return results


def _sink_message_ids(maildir: Path) -> list[str]:
    """The Message-ID of every message the SMTP sink kept."""
    ids = []
    for sub in ("new", "cur"):
        folder = maildir / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            with path.open("rb") as handle:
                message = email.message_from_binary_file(handle, policy=policy.default)
            ids.append(str(message.get("Message-ID", f"<none:{path.name}>")))
    return ids
