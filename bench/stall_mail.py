"""Benchmark: from a blocked report's 202 to the SMTP server accepting the lead agency's mail,
with all three services as separate processes and ingestion running at 500 reports/s.

The system runs for real on loopback, each service with its own PostgreSQL database and the
run's own topics (as bench/ingestion.py runs it): `duban-registry serve` with the plan imported,
`duban-progress serve` (API only) beside `duban-progress worker`, and `duban-notifier serve`
sending email to an SMTP server (aiosmtpd) in this process. The services' domain clock is a
simulated one (DUBAN_SIM_CLOCK_*, rate 1) set to Monday 15 January 2024 10:00 in Zhaoqing, so the
plan of 2024 is under way and its work points are green until reported on; the notifier knows
each agency's email address (as `duban-notifier set-email` sets it) and the per-recipient rate
limit is lifted for the run.

A few work points (each with a lead agency of its own) are kept for blocked reports; the other
work points get on-track reports from the agencies' API clients at a steady open-loop rate (500/s).
Every --interval seconds one kept work point's lead reports `blocked`: the figure is the time
from that POST's 202 to the SMTP server accepting the first message to the lead's address after
it that is not only a recovery (a red, urgent alert is sent at once; it may come as a digest with
the recovery of the work point's previous episode). Once it arrived, the lead reports `on_track`,
so the work point recovers and can be blocked again later (the recovery's mail is not counted).

Prints stall_mail_p50_ms, stall_mail_p99_ms, the count, and the peak RSS of every process.

Run: .venv/bin/python bench/stall_mail.py [--rate 500] [--samples 60] [--interval 0.5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    CpuMeter,
    Database,
    bench_databases,
    bench_topics,
    free_port,
    note,
    percentile,
    print_environment,
    report_peak_rss,
    result,
    run,
    run_id,
    setup,
    verdict,
)
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from duban_shared.audit import Actor
from duban_shared.clock import SystemClock
from duban_shared.db import create_engine, session_factory
from duban_shared.workdays import SHANGHAI
from ingestion import (
    BIN,
    PLAN_FILE,
    PLAN_WORK_POINTS,
    AgencyClient,
    Http1Client,
    Server,
    create_clients,
    log_problems,
    service_env,
    start_server,
    stop_server,
    wait_for_work_points,
)
from notifier.domain.contacts import ContactIn
from notifier.use_cases.contacts import Contacts

SIM_START = datetime(2024, 1, 15, 10, 0, tzinfo=SHANGHAI)
TARGET_P99_MS = 1000.0
MAIL_TIMEOUT_SECONDS = 30.0
RECOVERED_ONLY = "已恢复正常"
"""In the subject of a message about one recovered alert (notifier/templates/alert.subject.j2)."""


def address_of(agency_id: uuid.UUID) -> str:
    """The bench's email address of an agency."""
    return f"agency-{agency_id}@bench.example"


# ---------------------------------------------------------------- the SMTP server


@dataclass
class Mailbox:
    """What the SMTP server accepted: per recipient, (perf_counter when accepted, subject)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    count: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Stamp the message as accepted (the 250 follows at once)."""
        accepted = time.perf_counter()
        raw = envelope.original_content or b""
        subject = str(make_header(decode_header(message_from_bytes(raw).get("Subject", ""))))
        with self.lock:
            self.count += 1
            for rcpt in envelope.rcpt_tos:
                self.accepted.setdefault(rcpt.lower(), []).append((accepted, subject))
        return "250 OK"

    def first_after(self, address: str, since: float) -> float | None:
        """When the first message to `address` accepted after `since` that is not only a
        recovery was accepted (None: not yet). The blocked alert's message may be a digest: it
        takes along the recovery of the work point's previous episode, which waits for the
        grouping window otherwise."""
        with self.lock:
            for accepted, subject in self.accepted.get(address.lower(), []):
                if accepted >= since and RECOVERED_ONLY not in subject:
                    return accepted
        return None


# ---------------------------------------------------------------- the system


def sim_now(epoch: float) -> datetime:
    """The services' domain time now (the simulated clock runs at rate 1 from `epoch`)."""
    return SIM_START + timedelta(seconds=time.time() - epoch)


@contextlib.asynccontextmanager
async def running_system(
    prefix: str, dbs: dict[str, Database], logs: Path, smtp_port: int, epoch: float
) -> AsyncIterator[dict[str, Server]]:
    """Registry, progress (API and worker) and the notifier as processes, the plan imported."""
    servers: dict[str, Server] = {}
    clock_env = {
        "DUBAN_SIM_CLOCK_START": SIM_START.isoformat(),
        "DUBAN_SIM_CLOCK_EPOCH": f"{epoch:.6f}",
        "DUBAN_CALENDAR_DIR": str(ROOT / "data" / "calendar"),
    }
    try:
        registry_env = service_env(
            prefix, DUBAN_REGISTRY_DATABASE_URL=dbs["registry"].url, **clock_env
        )
        servers["registry"] = registry = await start_server(
            "registry", [str(BIN / "duban-registry"), "serve"], registry_env, logs
        )
        imported = await asyncio.create_subprocess_exec(
            str(BIN / "duban-registry"),
            "import-plan",
            str(PLAN_FILE),
            env=registry_env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await imported.communicate()
        if imported.returncode != 0:
            raise SystemExit(f"bench: import-plan failed:\n{out.decode(errors='replace')}")
        jwks = f"{registry.base_url}/.well-known/jwks.json"
        progress_env = service_env(
            prefix,
            DUBAN_PROGRESS_DATABASE_URL=dbs["progress"].url,
            DUBAN_AUTH_JWKS_URL=jwks,
            DUBAN_PROGRESS_RATE_PER_SECOND="100000",
            DUBAN_PROGRESS_RATE_BURST="100000",
            **clock_env,
        )
        servers["progress-worker"] = await start_server(
            "progress-worker", [str(BIN / "duban-progress"), "worker"], progress_env, logs
        )
        servers["progress-api"] = await start_server(
            "progress-api",
            [str(BIN / "duban-progress"), "serve", "--workers", "1"],
            {**progress_env, "DUBAN_PROGRESS_BACKGROUND": "false"},
            logs,
        )
        notifier_env = service_env(
            prefix,
            DUBAN_NOTIFIER_DATABASE_URL=dbs["notifier"].url,
            DUBAN_AUTH_JWKS_URL=jwks,
            DUBAN_NOTIFIER_SMTP_HOST="127.0.0.1",
            DUBAN_NOTIFIER_SMTP_PORT=str(smtp_port),
            DUBAN_NOTIFIER_PER_RECIPIENT_PER_HOUR="1000000",
            DUBAN_NOTIFIER_PER_RECIPIENT_BURST="100000",
            DUBAN_NOTIFIER_ESCALATION_DIR=str(ROOT / "data" / "escalation"),
            **clock_env,
        )
        servers["notifier"] = await start_server(
            "notifier", [str(BIN / "duban-notifier"), "serve"], notifier_env, logs
        )
        await wait_for_work_points(dbs["progress"].dsn, PLAN_WORK_POINTS, servers["progress-api"])
        yield servers
    finally:
        for server in reversed(list(servers.values())):
            await stop_server(server)


async def set_emails(notifier_db: Database, agencies: list[uuid.UUID]) -> None:
    """Every agency's email address in the notifier (as `duban-notifier set-email` does)."""
    engine = create_engine(notifier_db.url)
    try:
        contacts = Contacts(session_factory(engine), SystemClock(), wecom_robots=())
        operator = Actor("bench", "operator")
        for agency_id in agencies:
            emails = [ContactIn("email", address_of(agency_id))]
            await contacts.set_as_given(operator, agency_id, emails, channel="email")
    finally:
        await engine.dispose()


async def leads_of(dsn: str) -> dict[str, uuid.UUID]:
    """Each work point's (first) lead agency, from progress's read model."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT id, responsibilities FROM work_point_view ORDER BY id")
        rows = await cur.fetchall()
    leads = {}
    for wp_id, responsibilities in rows:
        refs = (
            json.loads(responsibilities) if isinstance(responsibilities, str) else responsibilities
        )
        lead = next((r for r in refs if r["role"] == "lead"), None)
        if lead is not None:
            leads[wp_id] = uuid.UUID(lead["agency_id"])
    return leads


# ---------------------------------------------------------------- load and samples


@dataclass
class Poster:
    """Posts reports as agency systems do, counting the answers."""

    http: Http1Client
    epoch: float
    answers: dict[str, int] = field(default_factory=dict)

    async def post(self, client: AgencyClient, work_point: str, status: str, percent: int) -> int:
        """POST one report; return the HTTP status (-1 for a broken connection)."""
        body = json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "work_point_id": work_point,
                "status": status,
                "percent": percent,
                "occurred_at": (sim_now(self.epoch) - timedelta(seconds=1)).isoformat(),
            }
        ).encode()
        headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"}
        try:
            code, _ = await self.http.post("/v1/events", body, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            code = -1
        key = f"{status} {code}"
        self.answers[key] = self.answers.get(key, 0) + 1
        return code


async def background_load(
    poster: Poster, load: list[tuple[AgencyClient, str]], rate: float, stop: asyncio.Event
) -> int:
    """On-track reports at `rate` per second (open loop) until stopped; return how many."""
    rng = random.Random(7)
    tasks: set[asyncio.Task[int]] = set()
    t0, sent = time.perf_counter(), 0
    while not stop.is_set():
        delay = t0 + sent / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client, work_point = load[sent % len(load)]
        task = asyncio.create_task(poster.post(client, work_point, "on_track", rng.randint(10, 99)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    if tasks:
        await asyncio.wait(tasks)
    return sent


async def blocked_samples(
    poster: Poster,
    mailbox: Mailbox,
    kept: list[tuple[AgencyClient, str]],
    samples: int,
    interval: float,
) -> tuple[list[float], int]:
    """Every `interval` s, block the next kept work point; return the 202 -> mail latencies
    (seconds) and how many mails never came within MAIL_TIMEOUT_SECONDS."""
    latencies: list[float] = []
    missing = 0

    async def one(client: AgencyClient, work_point: str) -> None:
        nonlocal missing
        code = await poster.post(client, work_point, "blocked", 30)
        answered = time.perf_counter()
        if code != 202:
            missing += 1
            return
        deadline = answered + MAIL_TIMEOUT_SECONDS
        address = address_of(client.agency_id)
        while (accepted := mailbox.first_after(address, answered)) is None:
            if time.perf_counter() > deadline:
                missing += 1
                break
            await asyncio.sleep(0.005)
        if accepted is not None:
            latencies.append(accepted - answered)
        await poster.post(client, work_point, "on_track", 35)  # recovers; ready again

    busy: dict[str, asyncio.Task[None]] = {}
    started = time.perf_counter()
    for i in range(samples):
        delay = started + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client, work_point = kept[i % len(kept)]
        previous = busy.get(work_point)
        if previous is not None:
            await previous  # its mail came (or timed out) and it was reported on track again
        busy[work_point] = asyncio.create_task(one(client, work_point))
    await asyncio.gather(*busy.values())
    return latencies, missing


# ---------------------------------------------------------------- main


async def main(args: argparse.Namespace) -> None:
    """Start everything, load it, take the samples, print the figures, clean up."""
    tag = run_id()
    prefix = f"bench-stallmail-{tag}."
    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    epoch = time.time()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="duban-bench-") as tmp,
            bench_databases(tag, "registry", "progress", "notifier") as dbs,
        ):
            async with (
                bench_topics(prefix),
                running_system(prefix, dbs, Path(tmp), smtp_port, epoch) as servers,
            ):
                await measure(args, dbs, servers, mailbox, epoch)
            for server in servers.values():
                log_problems(server)
    finally:
        controller.stop()


async def measure(
    args: argparse.Namespace,
    dbs: dict[str, Database],
    servers: dict[str, Server],
    mailbox: Mailbox,
    epoch: float,
) -> None:
    """The measured part, with the system running."""
    leads = await leads_of(dbs["progress"].dsn)
    clients = await create_clients(
        dbs["registry"], dbs["progress"], args.clients, servers["registry"]
    )
    by_agency = {c.agency_id: c for c in clients}
    await set_emails(dbs["notifier"], sorted(set(leads.values()) | set(by_agency)))
    kept: list[tuple[AgencyClient, str]] = []
    for wp, lead in sorted(leads.items()):
        if lead in by_agency and all(c.agency_id != lead for c, _ in kept):
            kept.append((by_agency[lead], wp))
        if len(kept) == args.kept:
            break
    kept_ids = {wp for _, wp in kept}
    load = [(c, wp) for c in clients for wp in c.work_points if wp not in kept_ids]
    random.Random(3).shuffle(load)
    note(
        f"{len(kept)} work points kept for blocked reports (leads of their own), "
        f"{len({wp for _, wp in load})} get the background load from {len(clients)} agencies"
    )
    http = Http1Client(servers["progress-api"].base_url)
    poster = Poster(http, epoch)
    stop = asyncio.Event()
    pids = {name: server.process.pid for name, server in servers.items()}
    meter = CpuMeter(pids)
    try:
        loader = asyncio.create_task(background_load(poster, load, args.rate, stop))
        await asyncio.sleep(args.warmup)
        meter.start()
        started = time.perf_counter()
        latencies, missing = await blocked_samples(
            poster, mailbox, kept, args.samples, args.interval
        )
        span = time.perf_counter() - started
        cpu = meter.report()
        stop.set()
        sent = await loader
    finally:
        await http.aclose()
    for name, server in servers.items():
        if server.process.poll() is not None:
            raise SystemExit(f"bench: {name} died:\n{server.tail()}")
    report_peak_rss("stall_mail", pids)
    note(cpu)
    note(
        f"{len(latencies)} blocked reports mailed, {missing} not within "
        f"{MAIL_TIMEOUT_SECONDS:.0f} s, over {span:.1f} s; background load {sent} reports "
        f"({sent / max(span + args.warmup, 1e-9):.0f}/s); SMTP accepted {mailbox.count} messages"
    )
    note("answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(poster.answers.items())))
    if latencies:
        note(f"202 -> mail max {1000 * max(latencies):.0f} ms")
    p99 = 1000 * percentile(latencies, 99)
    result("stall_mail_p50_ms", 1000 * percentile(latencies, 50), "ms")
    result("stall_mail_p99_ms", p99, "ms")
    result("stall_mail_count", len(latencies), "count", 0)
    result("stall_mail_missing", missing, "count", 0)
    verdict(
        "stall_mail_p99_ms",
        p99,
        f"<= {TARGET_P99_MS:.0f} ms at {args.rate:.0f}/s",
        p99 <= TARGET_P99_MS and not missing,
    )


def parse_args() -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="on-track reports/s (500)")
    parser.add_argument("--samples", type=int, default=60, help="blocked reports (60)")
    parser.add_argument("--interval", type=float, default=0.5, help="s between them (0.5)")
    parser.add_argument("--kept", type=int, default=8, help="work points kept for them (8)")
    parser.add_argument("--warmup", type=float, default=5.0, help="s of load first (5)")
    parser.add_argument(
        "--clients", type=int, default=16, help="agency API clients, most work points first (16)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 100/s, 10 samples")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.samples, args.warmup = min(args.rate, 100.0), 10, 2.0
    return args


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k != "quick" or v}


if __name__ == "__main__":
    setup()
    options = parse_args()
    print_environment("stall_mail", _options(options))
    run(lambda: main(options))
