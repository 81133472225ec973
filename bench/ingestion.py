"""Benchmark: status reports over HTTP at a steady rate, from POST to stored in PostgreSQL.

Runs the system for real, on loopback, each with its own PostgreSQL database and the run's own
topics: the registry (`duban-registry serve`, the plan imported with `duban-registry import-plan`)
and progress as deployed: `serve --workers N` (N = --api-workers, 1) with
DUBAN_PROGRESS_BACKGROUND=false beside `duban-progress worker` (its consumers, outbox relay and
sweeper), or with --api-workers 0 one `duban-progress serve` doing both; progress learns the plan's
work points from the registry over Kafka. Agency API clients are created in the registry (as
tests/stack.py and `duban-registry create-client` do) and get their access tokens from the
registry's `POST /oauth/token`; progress verifies them with the registry's JWKS. Progress's
per-client rate limit is raised for the run (DUBAN_PROGRESS_RATE_PER_SECOND / _RATE_BURST), and the
reports are spread over several agency clients anyway.

Load is open-loop: sends are scheduled by the clock (rate r: send i at t0 + i/r), each in its
own task, never waiting for earlier answers. Per report it measures:
- post: POST start to the HTTP answer (202 once Kafka acknowledged);
- persisted: POST start to the first poll of status_report (every 10 ms, on its own
  connection) that sees the row committed.
A warm-up (not counted) precedes the measured seconds.

The anchor, in the same invocation: bench/bare_ingest.py, a bare FastAPI app with the same
request model and an aiokafka producer (acks=all, idempotent) answering 202, in a process of its
own on the same broker, gets the same load at --rate after Duban. Then both are stepped through
--steps (each rate for both, one after the other, until each fails it): a rate is held while
every report is accepted, post p99 stays at or under HELD_POST_P99_MS and the answers keep up
with the rate. Printed for both: post p50/p99, the server's CPU per report, the highest rate
held, the ratios, and the peak RSS of every process.

Run: .venv/bin/python bench/ingestion.py [--rate 500] [--duration 20] [--api-workers N]
     [--steps 500,1000,...] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from _common import (
    KAFKA,
    ROOT,
    CpuMeter,
    Database,
    bench_databases,
    bench_topics,
    free_port,
    no_collector_pauses,
    note,
    partitions_of,
    percentile,
    print_environment,
    py_spy,
    result,
    run,
    run_id,
    setup,
    summarize_collapsed,
    topic_total,
    tree_cpu_seconds,
    tree_peak_rss_mib,
    verdict,
)
from duban_shared import topics
from duban_shared.db import create_engine, session_factory
from registry.store import clients as client_store

PLAN_FILE = ROOT / "data" / "plans" / "zhaoqing-digital-2024.txt"
PLAN_WORK_POINTS = 50
BIN = Path(sys.executable).parent
TARGET_PERSISTED_P99_MS = 100.0
TARGET_POST_P99_RATIO = 3.0  # Duban's post p99 at --rate over the bare app's
TARGET_RATE_RATIO = 0.7  # Duban's highest held rate over the bare app's
HELD_POST_P99_MS = 100.0  # a rate is held while post p99 stays under this...
CLIENT_LAG_MS = 20.0  # ...and the load client keeps its schedule (else it is the bottleneck)
DEFAULT_STEPS = "500,1000,1500,2000,2500,3000,3500,4000"
POLL_SECONDS = 0.010
POLL_WINDOW = 2000
DRAIN_SECONDS = 300.0


# ---------------------------------------------------------------- the services


@dataclass
class Server:
    """A service process started by the benchmark (stopped by it too)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    def tail(self, lines: int = 30) -> str:
        """The end of its log, for error messages."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def service_env(prefix: str, **extra: str) -> dict[str, str]:
    """Environment of a service process: the run's broker and topics, no trace export."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "OTEL_"))}
    env.update(
        {
            "DUBAN_ENVIRONMENT": "test",
            "DUBAN_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "DUBAN_TOPIC_PREFIX": prefix,
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            **extra,
        }
    )
    return env


_STARTED: list[subprocess.Popen[bytes]] = []


@atexit.register
def _kill_leftovers() -> None:
    """Last resort if the benchmark dies before its cleanup: kill the servers it started."""
    for process in _STARTED:
        if process.poll() is None:
            process.kill()


async def start_server(name: str, command: list[str], env: dict[str, str], logs: Path) -> Server:
    """Start `command` (a `serve` command) and wait until its /healthz answers."""
    port = free_port()
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited on)
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # Ctrl-C reaches the benchmark, which stops it in order
        )
    _STARTED.append(process)
    server = Server(name, process, log_path, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as http:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: {name} exited ({process.returncode}):\n{server.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return server
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {name} did not answer within 60 s:\n{server.tail()}")
            await asyncio.sleep(0.2)


async def stop_server(server: Server) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    if server.process.poll() is not None:
        return
    server.process.terminate()
    try:
        await asyncio.to_thread(server.process.wait, 20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        await asyncio.to_thread(server.process.wait)


@contextlib.asynccontextmanager
async def running_system(
    prefix: str, dbs: dict[str, Database], logs: Path, rate_limit: float, api_workers: int
) -> AsyncIterator[tuple[Server, list[Server]]]:
    """Registry and progress as processes, the plan imported, progress knowing all of it.

    Progress is one `serve` process doing everything (api_workers 0), or `serve --workers N`
    with DUBAN_PROGRESS_BACKGROUND=false beside one `worker` process; the API server first.
    """
    servers: list[Server] = []
    try:
        registry_env = service_env(prefix, DUBAN_REGISTRY_DATABASE_URL=dbs["registry"].url)
        registry = await start_server(
            "registry", [str(BIN / "duban-registry"), "serve"], registry_env, logs
        )
        servers.append(registry)
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
        progress_env = service_env(
            prefix,
            DUBAN_PROGRESS_DATABASE_URL=dbs["progress"].url,
            DUBAN_AUTH_JWKS_URL=f"{registry.base_url}/.well-known/jwks.json",
            DUBAN_PROGRESS_RATE_PER_SECOND=str(rate_limit),
            DUBAN_PROGRESS_RATE_BURST=str(int(rate_limit)),
            DUBAN_CALENDAR_DIR=str(ROOT / "data" / "calendar"),
        )
        progress_servers = []
        if api_workers:
            worker = await start_server(
                "progress-worker", [str(BIN / "duban-progress"), "worker"], progress_env, logs
            )
            servers.append(worker)
            api_env = {**progress_env, "DUBAN_PROGRESS_BACKGROUND": "false"}
            api_command = [str(BIN / "duban-progress"), "serve", "--workers", str(api_workers)]
            api = await start_server("progress-api", api_command, api_env, logs)
            servers.append(api)
            progress_servers = [api, worker]
        else:
            progress = await start_server(
                "progress", [str(BIN / "duban-progress"), "serve"], progress_env, logs
            )
            servers.append(progress)
            progress_servers = [progress]
        await wait_for_work_points(dbs["progress"].dsn, PLAN_WORK_POINTS, progress_servers[-1])
        yield registry, progress_servers
    finally:
        for server in reversed(servers):
            await stop_server(server)


async def wait_for_work_points(dsn: str, count: int, progress: Server) -> None:
    """Wait until progress's read model has the plan's work points (from the registry)."""
    deadline = time.monotonic() + 90
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            cur = await conn.execute("SELECT count(*) FROM work_point_view")
            row = await cur.fetchone()
            if row and row[0] >= count:
                return
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"bench: progress knows {row[0] if row else 0} of {count} work points after "
                    f"90 s:\n{progress.tail()}"
                )
            await asyncio.sleep(0.2)


# ---------------------------------------------------------------- agency clients


@dataclass
class AgencyClient:
    """An agency system: its API client, token, and the work points it may report on."""

    client_id: str
    secret: str
    agency_id: uuid.UUID
    work_points: list[str]
    token: str = ""


async def agencies_by_work_points(dsn: str) -> dict[uuid.UUID, list[str]]:
    """Each agency of the read model and the work points it is responsible for."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT id, responsibilities FROM work_point_view")
        rows = await cur.fetchall()
    found: dict[uuid.UUID, list[str]] = {}
    for wp_id, responsibilities in rows:
        refs = (
            json.loads(responsibilities) if isinstance(responsibilities, str) else responsibilities
        )
        for ref in refs:
            found.setdefault(uuid.UUID(ref["agency_id"]), []).append(wp_id)
    return found


async def create_clients(
    registry_db: Database, progress_db: Database, count: int, registry: Server
) -> list[AgencyClient]:
    """API clients for the `count` agencies with the most work points, as tests/stack.py makes
    them (registry.store.clients, the registry's own database), each with a token from the
    registry's OAuth token endpoint."""
    responsible = await agencies_by_work_points(progress_db.dsn)
    chosen = sorted(responsible, key=lambda a: (-len(responsible[a]), str(a)))[:count]
    engine = create_engine(registry_db.url)
    clients = []
    try:
        async with session_factory(engine)() as session, session.begin():
            for agency_id in chosen:
                agency = await client_store.resolve_agency(session, agency_id=agency_id)
                issued = await client_store.create_client(
                    session, role="agency", agency=agency, label="bench", now=datetime.now(UTC)
                )
                clients.append(
                    AgencyClient(
                        issued.client.client_id,
                        issued.secret,
                        agency_id,
                        sorted(responsible[agency_id]),
                    )
                )
    finally:
        await engine.dispose()
    async with httpx.AsyncClient(base_url=registry.base_url, timeout=30) as http:
        for client in clients:
            answer = await http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(client.client_id, client.secret),
            )
            if answer.status_code != 200:
                raise SystemExit(f"bench: no token for {client.client_id}: {answer.text}")
            client.token = str(answer.json()["access_token"])
    return clients


# ---------------------------------------------------------------- HTTP load client


class Http1Client:
    """Keep-alive HTTP/1.1 connections to one server, for load generation.

    A request takes an idle connection or opens one (up to `max_connections`), so requests in
    flight never queue behind each other in the client. (httpx's pool re-examines every queued
    request on every event: under an open-loop backlog the load generator itself saturated a
    core and sent almost nothing.) Bodies are read by Content-Length or chunked encoding.
    """

    def __init__(self, base_url: str, max_connections: int = 4000) -> None:
        url = httpx.URL(base_url)
        self._host, self._port = url.host, url.port or 80
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)
        self.connections = 0

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST and return (status, body); a reused connection the server closed meanwhile is
        replaced once (the report's event_id makes the resend harmless)."""
        head = f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        async with self._slots:
            for attempt in (1, 2):
                reused = attempt == 1 and bool(self._idle)
                conn = self._idle.pop() if reused else await self._connect()
                try:
                    status, payload, keep = await self._exchange(conn, request)
                except (ConnectionError, asyncio.IncompleteReadError):
                    conn[1].close()
                    if reused and attempt == 1:
                        continue
                    raise
                except BaseException:
                    conn[1].close()
                    raise
                if keep:
                    self._idle.append(conn)
                else:
                    conn[1].close()
                return status, payload
        raise AssertionError("unreachable")

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.connections += 1
        return await asyncio.open_connection(self._host, self._port)

    @staticmethod
    async def _exchange(
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
    ) -> tuple[int, bytes, bool]:
        reader, writer = conn
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("connection closed before an answer")
        status = int(status_line.split()[1])
        length, chunked, keep = None, False, True
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                keep = value != b"close"
        if chunked:
            parts = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            return status, b"".join(parts), keep
        if length is None:
            return status, await reader.read(), False
        return status, await reader.readexactly(length), keep

    async def aclose(self) -> None:
        """Close the idle connections."""
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()


# ---------------------------------------------------------------- load


@dataclass
class Sent:
    """One report: when it was due, sent, answered and seen stored (perf_counter seconds)."""

    event_id: uuid.UUID
    measured: bool
    scheduled: float
    started: float = 0.0
    started_wall: float = 0.0
    answered: float = 0.0
    status: int = 0
    persisted: float = 0.0


_SEEDS = itertools.count(11)
STATUSES = ["on_track"] * 85 + ["at_risk"] * 10 + ["blocked"] * 3 + ["not_started"] * 2


def report(client: AgencyClient, rng: random.Random) -> dict[str, Any]:
    """A status report as an agency system posts it."""
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "work_point_id": rng.choice(client.work_points),
        "status": rng.choice(STATUSES),
        "percent": rng.randint(40, 90),
        "occurred_at": datetime.now(UTC).isoformat(),
    }


class Load:
    """Open-loop sender and the poller that sees reports stored."""

    def __init__(
        self, http: Http1Client, clients: Sequence[AgencyClient], dsn: str, batch: int = 0
    ) -> None:
        self._http = http
        self._batch = batch
        self._clients = clients
        self._dsn = dsn
        # every run its own event_ids: a later run on the same server must not replay them
        self._rng = random.Random(next(_SEEDS))
        self.sent: list[Sent] = []
        self._pending: dict[uuid.UUID, Sent] = {}
        self.errors: dict[str, int] = {}
        self.polls = 0
        self.server_cpu_seconds = 0.0  # CPU the (first) server used while the measured ran

    async def _post(self, records: list[Sent], client: AgencyClient, body: bytes) -> None:
        """POST one report (to /v1/events) or several (to /v1/events/batch)."""
        started, started_wall = time.perf_counter(), time.time()
        for record in records:
            record.started, record.started_wall = started, started_wall
        headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"}
        path = "/v1/events/batch" if self._batch else "/v1/events"
        try:
            status, answer = await self._http.post(path, body, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self._answered(records, -1, type(exc).__name__)
            return
        if self._batch and status == 200:
            for item in json.loads(answer)["results"]:
                error = item.get("error") or {}
                code = f"{item['http_status']} {error.get('code', '')}".strip()
                self._answered([records[item["index"]]], item["http_status"], code)
            return
        try:
            code = f"{status} {json.loads(answer).get('code', '?')}"
        except ValueError:
            code = f"{status} ?"
        self._answered(records, status, code)

    def _answered(self, records: list[Sent], status: int, error: str) -> None:
        now = time.perf_counter()
        for record in records:
            record.status, record.answered = status, now
            if status == 202:
                self._pending[record.event_id] = record
            else:
                self._error(error)

    def _error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def send(self, rate: float, warmup: float, duration: float) -> None:
        """Send at `rate` reports per second for warmup + duration seconds, one report per
        request or `batch` per request; then wait for every answer."""
        per_request = max(1, self._batch)
        total = round(rate * (warmup + duration) / per_request)
        first_measured = round(rate * warmup / per_request)
        tasks: set[asyncio.Task[None]] = set()
        t0 = time.perf_counter() + 0.05
        for i in range(total):
            due = t0 + i * per_request / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client = self._clients[i % len(self._clients)]
            reports = [report(client, self._rng) for _ in range(per_request)]
            records = [
                Sent(uuid.UUID(r["event_id"]), measured=i >= first_measured, scheduled=due)
                for r in reports
            ]
            self.sent.extend(records)
            body = json.dumps({"events": reports} if self._batch else reports[0]).encode()
            task = asyncio.create_task(self._post(records, client, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks)

    async def poll(self, stop: asyncio.Event) -> None:
        """Every 10 ms, look up the reports not yet seen stored; stamp those found.

        Only the POLL_WINDOW oldest pending ids are asked for (reports are stored roughly in the
        order they were accepted), so a backlog does not make the poll itself a load.
        """
        query = "SELECT event_id FROM status_report WHERE event_id = ANY(%s)"
        async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
            while not stop.is_set() or self._pending:
                ids = list(itertools.islice(self._pending, POLL_WINDOW))
                if ids:
                    asked = time.perf_counter()
                    cur = await conn.execute(query, (ids,))
                    self.polls += 1
                    for (event_id,) in await cur.fetchall():
                        record = self._pending.pop(event_id, None)
                        if record is not None:
                            record.persisted = asked  # committed before this query began
                await asyncio.sleep(POLL_SECONDS)

    async def stored_at_latencies(self) -> list[float]:
        """POST start -> the consumer's stored_at (same machine clock), ms, measured reports.

        stored_at is taken when the consumer applies the report, before its batch commits: a
        lower bound of `persisted`, and a cross-check of it.
        """
        started = {r.event_id: r.started_wall for r in self.sent if r.measured and r.persisted}
        async with await psycopg.AsyncConnection.connect(self._dsn) as conn:
            cur = await conn.execute(
                "SELECT event_id, stored_at FROM status_report WHERE event_id = ANY(%s)",
                (list(started),),
            )
            rows = await cur.fetchall()
        return [(stored.timestamp() - started[eid]) * 1000.0 for eid, stored in rows]


async def run_load(
    servers: list[Server],
    clients: Sequence[AgencyClient],
    dsn: str | None,
    args: argparse.Namespace,
    logs: Path,
    *,
    rate: float,
    duration: float,
    warmup: float,
    sample: bool = False,
) -> tuple[Load, str]:
    """Warm up, send the measured seconds to the first server; with a `dsn`, wait until every
    accepted report is stored; with `sample` (--py-spy), sample that server during the measured
    seconds. The CPU of every server in `servers` is measured."""
    http = Http1Client(servers[0].base_url)
    try:
        load = Load(http, clients, dsn or "", args.batch)
        stop = asyncio.Event()
        poller = asyncio.create_task(load.poll(stop)) if dsn else None
        meter = CpuMeter({server.name: server.process.pid for server in servers})
        send = asyncio.create_task(load.send(rate, warmup, duration))
        await asyncio.sleep(warmup)
        meter.start()
        cpu_before = tree_cpu_seconds(servers[0].process.pid)
        sampler = await start_py_spy(servers, args, logs) if sample else None
        await send
        load.server_cpu_seconds = tree_cpu_seconds(servers[0].process.pid) - cpu_before
        cpu = meter.report()
        if sampler is not None:
            await sampler.wait()
            summarize_collapsed(
                logs / "progress.collapsed", f"{servers[0].name} under load (py-spy, {rate:.0f}/s)"
            )
            if args.profile_out:
                shutil.copyfile(logs / "progress.collapsed", args.profile_out)
        stop.set()
        if poller is not None:
            try:
                await asyncio.wait_for(poller, timeout=DRAIN_SECONDS)
            except TimeoutError:
                note(f"some accepted reports were not stored within {DRAIN_SECONDS:.0f} s")
    finally:
        await http.aclose()
    return load, cpu


async def start_py_spy(
    servers: list[Server], args: argparse.Namespace, logs: Path
) -> asyncio.subprocess.Process | None:
    """py-spy record of the first server's process (and its worker processes) for the measured
    seconds (collapsed stacks)."""
    binary = py_spy()
    if binary is None:
        note("--py-spy: no py-spy in the virtualenv (.venv/bin/pip install py-spy); not sampled")
        return None
    return await asyncio.create_subprocess_exec(
        str(binary),
        "record",
        "--pid",
        str(servers[0].process.pid),
        "--subprocesses",
        "--duration",
        str(max(1, int(args.duration))),
        "--rate",
        "200",
        "--nonblocking",
        "--full-filenames",
        "--format",
        "raw",
        "--output",
        str(logs / "progress.collapsed"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def log_problems(server: Server) -> None:
    """Count the errors a server logged, and show the distinct exception lines."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    errors = [line for line in lines if " ERROR " in line or line.startswith("ERROR")]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Timeout)\b", line)]
    if errors or raised:
        note(f"{server.name} log: {len(errors)} ERROR lines; exceptions:")
        for line, count in Counter(raised).most_common(5):
            note(f"  {count} x {line[:160]}")


# ---------------------------------------------------------------- the anchor


@contextlib.asynccontextmanager
async def running_anchor(prefix: str, logs: Path) -> AsyncIterator[Server]:
    """The bare FastAPI app (bench/bare_ingest.py) in a process of its own, producing to the
    status topic of its own topic prefix (so progress's consumers never see its reports)."""
    command = [
        sys.executable,
        str(Path(__file__).with_name("bare_ingest.py")),
        "--bootstrap",
        KAFKA,
        "--topic",
        prefix + topics.STATUS,
    ]
    server = await start_server("bare", command, service_env(prefix), logs)
    try:
        yield server
    finally:
        await stop_server(server)


# ---------------------------------------------------------------- main


def ms(values: list[float], pct: float) -> float:
    """A percentile in milliseconds of values in seconds."""
    return percentile(values, pct) * 1000.0


@dataclass
class Step:
    """One run at a steady rate: what it answered, and whether the rate was held."""

    rate: float
    achieved: float
    post_p50_ms: float
    post_p99_ms: float
    lag_p99_ms: float
    errors: int
    cpu: str
    cpu_ms_per_report: float
    error_kinds: str

    @property
    def held(self) -> bool:
        """Held: every report accepted, post p99 under the bound, and the load client on time
        (else the figure would be the client's, not the server's)."""
        return (
            not self.errors
            and self.post_p99_ms <= HELD_POST_P99_MS
            and self.achieved >= 0.97 * self.rate
        )

    @property
    def client_bound(self) -> bool:
        """The load client itself fell behind its schedule."""
        return self.lag_p99_ms > CLIENT_LAG_MS

    def line(self, name: str) -> str:
        """One comment line about it."""
        verdict_text = "held" if self.held else "NOT held"
        client = " (load client behind schedule)" if self.client_bound else ""
        return (
            f"{name} at {self.rate:.0f}/s: {verdict_text}{client}; {self.achieved:.0f}/s answered "
            f"202, post p50 {self.post_p50_ms:.1f} ms p99 {self.post_p99_ms:.1f} ms, "
            f"{self.errors} errors{self.error_kinds}; {self.cpu_ms_per_report:.2f} ms of "
            f"CPU a report; {self.cpu}"
        )


def step_of(load: Load, rate: float, cpu: str) -> Step:
    """The figures of one run."""
    measured = [r for r in load.sent if r.measured]
    accepted = [r for r in measured if r.status == 202]
    post = [r.answered - r.started for r in measured if r.status > 0]
    lag = [r.started - r.scheduled for r in measured]
    span = measured[-1].scheduled - measured[0].scheduled if len(measured) > 1 else 1.0
    last_answer = max((r.answered for r in accepted), default=0.0)
    # answered per second: the measured reports over the time from the first send to the last
    # answer (a backlog that drains after the last send lowers it)
    answered_span = max(span, last_answer - measured[0].scheduled) if measured else 1.0
    return Step(
        rate=rate,
        achieved=len(accepted) / answered_span if answered_span > 0 else 0.0,
        post_p50_ms=ms(post, 50),
        post_p99_ms=ms(post, 99),
        lag_p99_ms=ms(lag, 99),
        errors=len(measured) - len(accepted),
        cpu=cpu,
        cpu_ms_per_report=1000.0 * load.server_cpu_seconds / max(len(measured), 1),
        error_kinds=(
            " (" + ", ".join(f"{k} x{v}" for k, v in sorted(load.errors.items())) + ")"
            if load.errors
            else ""
        ),
    )


async def highest_held(
    targets: dict[str, list[Server]],
    clients: Sequence[AgencyClient],
    args: argparse.Namespace,
    logs: Path,
) -> dict[str, Step | None]:
    """Step the rate up (--steps), both targets at each rate one after the other, until each
    fails to hold it; the highest held rate of each (None if not even the first)."""
    best: dict[str, Step | None] = dict.fromkeys(targets)
    going = set(targets)
    for rate in args.steps:
        for name, servers in targets.items():
            if name not in going:
                continue
            load, cpu = await run_load(
                servers, clients, None, args, logs, rate=rate, duration=args.step_seconds, warmup=1
            )
            step = step_of(load, rate, cpu)
            note(step.line(name))
            if step.held:
                best[name] = step
            else:
                going.discard(name)
        if not going:
            break
    return best


async def main(args: argparse.Namespace) -> None:
    """Start the system and the anchor, load them, print the figures, stop and clean up."""
    tag = run_id()
    prefix = f"bench-ingestion-{tag}."
    bare_prefix = f"bench-ingestion-{tag}-bare."
    logs_dir = tempfile.TemporaryDirectory(prefix="duban-bench-")
    with logs_dir as tmp, bench_databases(tag, "registry", "progress") as dbs:
        logs = Path(tmp)
        async with (
            bench_topics(prefix),
            bench_topics(bare_prefix),
            running_system(prefix, dbs, logs, args.rate_limit, args.api_workers) as (
                registry,
                progress,
            ),
            running_anchor(bare_prefix, logs) as bare,
        ):
            clients = await create_clients(dbs["registry"], dbs["progress"], args.clients, registry)
            note(
                f"{len(clients)} agency clients reporting on "
                f"{len({wp for c in clients for wp in c.work_points})} of the plan's "
                f"{PLAN_WORK_POINTS} work points; progress at {progress[0].base_url} "
                f"({', '.join(f'{s.name} pid {s.process.pid}' for s in progress)}), "
                f"registry at {registry.base_url}; anchor at {bare.base_url} (pid "
                f"{bare.process.pid})"
            )
            with no_collector_pauses():  # the load generator's own pauses would count
                load, cpu = await run_load(
                    progress,
                    clients,
                    dbs["progress"].dsn,
                    args,
                    logs,
                    rate=args.rate,
                    duration=args.duration,
                    warmup=args.warmup,
                    sample=args.py_spy,
                )
                bare_load, bare_cpu = await run_load(
                    [bare],
                    clients,
                    None,
                    args,
                    logs,
                    rate=args.rate,
                    duration=args.duration,
                    warmup=args.warmup,
                )
                best = (
                    await highest_held({"duban": progress, "bare": [bare]}, clients, args, logs)
                    if args.steps and not args.batch
                    else {}
                )
            stored_ms = await load.stored_at_latencies()
            on_topic = await topic_total(prefix + topics.STATUS, partitions_of(topics.STATUS))
            for server in [*progress, bare]:
                if server.process.poll() is not None:
                    raise SystemExit(f"bench: {server.name} died:\n{server.tail()}")
            rss = {server.name: tree_peak_rss_mib(server.process.pid) for server in progress}
            rss["bare"] = tree_peak_rss_mib(bare.process.pid)
        for server in [*progress, bare]:
            log_problems(server)
    report_figures(args, load, cpu, stored_ms, on_topic)
    report_anchor(args, load, bare_load, bare_cpu, best, rss)


def report_figures(
    args: argparse.Namespace, load: Load, cpu: str, stored_ms: list[float], on_topic: int
) -> None:
    """Duban's figures at --rate."""
    measured = [r for r in load.sent if r.measured]
    accepted = [r for r in measured if r.status == 202]
    post = [r.answered - r.started for r in measured if r.status > 0]
    persisted = [r.persisted - r.started for r in accepted if r.persisted]
    lag = [r.started - r.scheduled for r in measured]
    span = measured[-1].started - measured[0].started if len(measured) > 1 else 1.0
    errors = len(measured) - len(accepted)
    not_stored = len(accepted) - len(persisted)
    note(f"duban at {args.rate:.0f}/s: {cpu}")
    note(
        f"{len(measured)} reports measured over {span:.1f} s after {args.warmup:.0f} s warm-up; "
        f"{len(accepted)} accepted; {not_stored} accepted but not seen stored; "
        f"{on_topic} on the status topic in all; {load.polls} polls"
    )
    if load.errors:
        note("errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(load.errors.items())))
    note(
        f"sender lag behind schedule: p50 {ms(lag, 50):.1f} ms, p99 {ms(lag, 99):.1f} ms, "
        f"max {max(lag) * 1000 if lag else 0:.1f} ms"
    )
    note(
        f"post max {max(post) * 1000 if post else 0:.0f} ms; persisted p90 "
        f"{ms(persisted, 90):.0f} ms, max {max(persisted) * 1000 if persisted else 0:.0f} ms"
    )
    note(
        f"cross-check, POST start -> stored_at (consumer's clock, before its commit): "
        f"p50 {percentile(stored_ms, 50):.0f} ms, p99 {percentile(stored_ms, 99):.0f} ms"
    )
    per_request = max(1, args.batch)  # the reports of one request share its start time
    result("ingest_rate_achieved_events_per_s", (len(measured) - per_request) / span, "events/s", 1)
    result("ingest_accepted_events_per_s", len(accepted) / span, "events/s", 1)
    result("ingest_errors", errors + not_stored, "count", 0)
    result("ingest_post_p50_ms", ms(post, 50), "ms")
    result("ingest_post_p99_ms", ms(post, 99), "ms")
    result("ingest_persisted_p50_ms", ms(persisted, 50), "ms")
    result("ingest_persisted_p99_ms", ms(persisted, 99), "ms")
    p99 = ms(persisted, 99)
    verdict(
        "ingest_persisted_p99_ms",
        p99,
        f"<= {TARGET_PERSISTED_P99_MS:.0f} ms at {args.rate:.0f}/s",
        p99 <= TARGET_PERSISTED_P99_MS and not errors and not not_stored,
    )


def report_anchor(
    args: argparse.Namespace,
    load: Load,
    bare_load: Load,
    bare_cpu: str,
    best: dict[str, Step | None],
    rss: dict[str, float],
) -> None:
    """The anchor's figures beside Duban's, and the ratios."""
    duban = step_of(load, args.rate, "")
    bare = step_of(bare_load, args.rate, bare_cpu)
    note(bare.line("bare"))
    result("ingest_cpu_ms_per_report", duban.cpu_ms_per_report, "ms", 3)
    result("anchor_cpu_ms_per_report", bare.cpu_ms_per_report, "ms", 3)
    if bare.cpu_ms_per_report > 0:
        result(
            "ingest_cpu_per_report_over_anchor",
            duban.cpu_ms_per_report / bare.cpu_ms_per_report,
            "x",
            2,
        )
    result("anchor_post_p50_ms", bare.post_p50_ms, "ms")
    result("anchor_post_p99_ms", bare.post_p99_ms, "ms")
    if bare.post_p99_ms > 0:
        ratio = duban.post_p99_ms / bare.post_p99_ms
        result("ingest_post_p99_over_anchor", ratio, "x", 2)
        verdict(
            "ingest_post_p99_over_anchor",
            ratio,
            f"<= {TARGET_POST_P99_RATIO:.0f}x the bare app's at {args.rate:.0f}/s",
            ratio <= TARGET_POST_P99_RATIO,
        )
    for name, pid_rss in rss.items():
        result(f"peak_rss_{name.replace('-', '_')}_mib", pid_rss, "MiB")
    if not best:
        return
    held = {name: step.rate if step else 0.0 for name, step in best.items()}
    steps = ", ".join(f"{r:.0f}" for r in args.steps)
    note(
        f"highest rate held (post p99 <= {HELD_POST_P99_MS:.0f} ms, no errors, answers keeping "
        f"up with the rate; steps of {args.step_seconds:.0f} s at {steps}/s)"
    )
    result("ingest_highest_held_per_s", held["duban"], "events/s", 0)
    result("anchor_highest_held_per_s", held["bare"], "events/s", 0)
    if held["bare"]:
        ratio = held["duban"] / held["bare"]
        result("ingest_highest_held_over_anchor", ratio, "x", 2)
        verdict(
            "ingest_highest_held_over_anchor",
            ratio,
            f">= {TARGET_RATE_RATIO} of the bare app's",
            ratio >= TARGET_RATE_RATIO,
        )
    if held["bare"] >= max(args.steps):
        note("the anchor held the highest step: raise --steps for its real ceiling")


def parse_args() -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="reports per second (500)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds (20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not counted (3)")
    parser.add_argument("--clients", type=int, default=8, help="agency API clients (8)")
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=100_000.0,
        help="progress's per-client rate limit and burst for the run",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="reports per request to POST /v1/events/batch (default: one per POST /v1/events)",
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="progress as `serve --workers N` (API only) beside `worker`, as deployed (1); "
        "0: one `serve` process doing everything, as `make up` runs it",
    )
    parser.add_argument(
        "--py-spy", action="store_true", help="sample the progress process with py-spy"
    )
    parser.add_argument(
        "--profile-out",
        metavar="FILE",
        help="with --py-spy: keep the collapsed stacks in FILE (for flame graph tools)",
    )
    parser.add_argument(
        "--steps",
        type=lambda text: [float(r) for r in text.split(",") if r],
        default=DEFAULT_STEPS,
        help=f"rates stepped through, Duban and the anchor, for the highest rate each holds "
        f"({DEFAULT_STEPS}; '' skips the stepping)",
    )
    parser.add_argument(
        "--step-seconds", type=float, default=6.0, help="measured seconds per step (6)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 100/s for 5 s")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.duration, args.warmup = min(args.rate, 100.0), 5.0, 1.0
        args.steps, args.step_seconds = [200.0, 400.0], 2.0
    return args


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k != "quick" or v}


if __name__ == "__main__":
    setup()
    options = parse_args()
    print_environment("ingestion", _options(options))
    run(lambda: main(options))
