"""What the benchmarks share: where the broker and PostgreSQL are, their own topics and
databases (created here, removed afterwards), the environment banner, and result lines.

Every benchmark prints its figures as `name value unit` lines on stdout and everything else as
`# ` comment lines, so `bench/run.sh | grep -v '^#'` is a machine-readable result list.
Benchmarks only ever talk to loopback addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from duban_shared.migrations import upgrade
from duban_shared.telemetry import create_tracer_provider
from duban_shared.topics import TopicSpec, read_topic_list
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
TOPICS_FILE = ROOT / "deploy" / "kafka" / "topics.txt"
# No collector runs beside a benchmark: metrics are not pushed (the default would retry against
# localhost:4318 in the measured process).
os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
MIGRATIONS = {
    name: ROOT / "services" / name / name / "migrations"
    for name in ("registry", "progress", "notifier")
}
KAFKA = os.environ.get("DUBAN_BENCH_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
PG_ADMIN_URL = os.environ.get(
    "DUBAN_BENCH_PG_URL", "postgresql+psycopg://duban@127.0.0.1:15432/postgres"
)

log = logging.getLogger("bench")


# ---------------------------------------------------------------- process set-up


def setup() -> None:
    """Logging to stderr (warnings and up); refuse non-loopback servers; wait for a quiet
    machine."""
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s"
    )
    _require_loopback(KAFKA)
    _require_loopback(PG_ADMIN_URL)
    settle()


QUIET_SHARE = 0.05  # of one core
SETTLE_SECONDS = 60.0


def settle() -> None:
    """Wait until the broker and PostgreSQL are quiet (under 5% of a core each over 2 s), at most
    60 s: the benchmark before this one leaves work behind (the broker deleting its topics'
    logs, PostgreSQL dropping its databases), which would otherwise be measured here."""
    started = time.monotonic()
    while True:
        before, t0 = _server_cpu(), time.monotonic()
        time.sleep(2.0)
        after, elapsed = _server_cpu(), time.monotonic() - t0
        busy = {k: (after[k] - before.get(k, after[k])) / elapsed for k in after}
        waited = time.monotonic() - started
        if all(share < QUIET_SHARE for share in busy.values()):
            if waited > 2.5:
                note(f"waited {waited:.0f} s for the broker and PostgreSQL to be quiet")
            return
        if waited > SETTLE_SECONDS:
            shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in busy.items())
            note(f"the broker and PostgreSQL are still busy after {waited:.0f} s ({shares})")
            return


def _server_cpu() -> dict[str, float]:
    """CPU seconds so far of PostgreSQL (all its processes) and the broker."""
    sample = {"postgresql": cpu_by_name(("postgres",))["postgres"]}
    broker = _broker_pid()
    if broker is not None:
        with contextlib.suppress(OSError):
            sample["kafka"] = process_cpu_seconds(broker)
    return sample


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a benchmark's main coroutine; SIGINT and SIGTERM cancel it, so every `finally` and
    `async with` of it runs (servers stopped, databases dropped, topics deleted)."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        await main()

    try:
        asyncio.run(guarded())
    except asyncio.CancelledError:
        raise SystemExit("bench: interrupted; what it had created is removed") from None


def _require_loopback(address: str) -> None:
    """Refuse anything but a loopback host: benchmarks load what they talk to."""
    host = (make_url(address).host or "") if "://" in address else address.rsplit(":", 1)[0]
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"bench: {address} is not a loopback address; benchmarks stay local")


@contextlib.contextmanager
def no_collector_pauses() -> Iterator[None]:
    """Keep Python's garbage collector from pausing a load generator while it measures (as
    timeit does): what setup built is frozen, and no collection runs until the end."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def run_id() -> str:
    """A short random id naming this run's topics and databases."""
    return uuid.uuid4().hex[:10]


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_tracer_provider(service: str) -> TracerProvider:
    """The service's TracerProvider as production builds it, minus exporting: spans are still
    created and ended (their cost is measured), only the OTLP export is left out."""
    return create_tracer_provider(service, env={"OTEL_TRACES_EXPORTER": "none"})


# ---------------------------------------------------------------- output


def result(name: str, value: float, unit: str, decimals: int = 1) -> None:
    """Print one figure: `name value unit`."""
    print(f"{name} {value:.{decimals}f} {unit}", flush=True)


def note(text: str) -> None:
    """Print a comment line (`# ...`)."""
    for line in text.splitlines() or [""]:
        print(f"# {line}", flush=True)


def verdict(name: str, value: float, target: str, met: bool) -> None:
    """Print how a figure compares with its target."""
    note(f"target {name} {target}: {'met' if met else 'MISSED'} ({value:.1f})")


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of values; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def print_environment(benchmark: str, options: dict[str, Any]) -> None:
    """Print what the figures were measured on, as comment lines."""
    note(f"benchmark {benchmark} {' '.join(f'{k}={v}' for k, v in options.items())}")
    note(f"date {time.strftime('%Y-%m-%dT%H:%M:%S%z')}")
    note(f"cpus {os.cpu_count()} ({_cpu_model()}), load average {_loadavg()}")
    note(f"python {platform.python_version()} ({platform.python_implementation()})")
    note(f"kafka {kafka_version()} at {KAFKA}")
    note(
        f"postgresql {pg_version()} at {make_url(PG_ADMIN_URL).host}:{make_url(PG_ADMIN_URL).port}"
    )
    note(f"libraries {_library_versions()}")
    note(f"code {_git_state()}")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown cpu"


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def kafka_version() -> str:
    """The broker's version, from the jars scripts/kafka.sh runs it from."""
    jars = sorted((ROOT / ".cache" / "kafka" / "libs").glob("kafka-server-[0-9]*.jar"))
    if not jars:
        return "unknown (no jars in .cache/kafka/libs)"
    return ", ".join(j.stem.removeprefix("kafka-server-") for j in jars) + " (KRaft, 1 node)"


def pg_version() -> str:
    """The PostgreSQL server's version."""
    try:
        with psycopg.connect(libpq(PG_ADMIN_URL), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
        return f"{row[0] if row else '?'} (fsync={fsync[0] if fsync else '?'})"
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"bench: no PostgreSQL at {PG_ADMIN_URL} ({exc}); start it with "
            "`bash scripts/postgres.sh start` or set DUBAN_BENCH_PG_URL"
        ) from None


def _library_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = ("aiokafka", "sqlalchemy", "psycopg", "fastapi", "uvicorn", "httpx", "pydantic")
    parts = []
    for name in names:
        try:
            parts.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name}=?")
    return " ".join(parts)


def _git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "services", "shared"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"{head}" + (f" + {len(dirty)} changed files in services/, shared/" if dirty else "")


# ---------------------------------------------------------------- Kafka


def topic_specs() -> list[TopicSpec]:
    """Read deploy/kafka/topics.txt: the real topics, partition counts and configs."""
    return read_topic_list(TOPICS_FILE)


def partitions_of(name: str) -> int:
    """The partition count of a logical topic in deploy/kafka/topics.txt."""
    for topic, partitions, _ in topic_specs():
        if topic == name:
            return partitions
    raise KeyError(f"{name} is not in {TOPICS_FILE}")


@contextlib.asynccontextmanager
async def bench_topics(prefix: str) -> AsyncIterator[None]:
    """Create a prefixed copy of every topic of deploy/kafka/topics.txt; delete them after."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA, client_id="duban-bench")
    try:
        await admin.start()
    except Exception as exc:
        raise SystemExit(
            f"bench: no Kafka broker at {KAFKA} ({exc!r}); start it with "
            "`bash scripts/kafka.sh start` or set DUBAN_BENCH_KAFKA_BOOTSTRAP"
        ) from None
    names = [prefix + name for name, _, _ in topic_specs()]
    try:
        await admin.create_topics(
            [
                NewTopic(prefix + name, partitions, 1, topic_configs=configs)
                for name, partitions, configs in topic_specs()
            ]
        )
        yield
    finally:
        try:
            await admin.delete_topics(names)
        except Exception:
            log.exception("could not delete the benchmark topics %s*", prefix)
        await admin.close()


async def topic_total(topic: str, partitions: int) -> int:
    """How many messages a topic holds: the sum of its partitions' end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, client_id="duban-bench-offsets")
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return sum(ends.values())


# ---------------------------------------------------------------- PostgreSQL


def libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string (for psycopg directly)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class Database:
    """One benchmark database."""

    name: str
    url: str  # SQLAlchemy URL (postgresql+psycopg://...)

    @property
    def dsn(self) -> str:
        """The libpq connection string."""
        return libpq(self.url)


@contextlib.contextmanager
def bench_databases(run: str, *services: str) -> Iterator[dict[str, Database]]:
    """Create `duban_bench_<run>_<service>` per service, migrated to head with the service's
    own alembic migrations (as `duban-<service> migrate` does); drop them afterwards."""
    created: list[str] = []
    try:
        with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True) as conn:
            for service in services:
                name = f"duban_bench_{run}_{service}"
                conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
        databases = {}
        for service, name in zip(services, created, strict=True):
            url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
            upgrade(MIGRATIONS[service], url)
            databases[service] = Database(name, url)
        yield databases
    finally:
        with psycopg.connect(libpq(PG_ADMIN_URL), autocommit=True) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------- event loop lag


class LoopLag:
    """How long the event loop is blocked: a 5 ms timer, and how late each tick fires. Whatever
    shares the loop (HTTP requests, consumers, the relay) waits at least that long."""

    TICK = 0.005

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(self.TICK)
            self.lags.append(time.perf_counter() - started - self.TICK)

    def start(self) -> None:
        """Start ticking on the running loop."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> str:
        """Stop; return `max X ms, p99 Y ms` of the lateness."""
        self._stop.set()
        if self._task is not None:
            await self._task
        return (
            f"max {1000 * max(self.lags, default=0.0):.0f} ms, "
            f"p99 {1000 * percentile(self.lags, 99):.0f} ms, "
            f"p50 {1000 * percentile(self.lags, 50):.1f} ms"
        )


# ---------------------------------------------------------------- CPU accounting


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its live descendants (e.g. uvicorn's workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    total = 0.0
    for member in tree:
        with contextlib.suppress(OSError):
            total += process_cpu_seconds(member)
    return total


def cpu_by_name(prefixes: Sequence[str]) -> dict[str, float]:
    """CPU seconds used so far by processes whose command name starts with a prefix (read-only
    look at /proc: e.g. every postgres backend, the Kafka JVM)."""
    totals = dict.fromkeys(prefixes, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            for prefix in prefixes:
                if comm.startswith(prefix):
                    totals[prefix] += process_cpu_seconds(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return totals


def _broker_pid() -> int | None:
    """The pid of the broker scripts/kafka.sh started (its pid file), if any."""
    pid_file = Path(os.environ.get("DUBAN_KAFKA_DIR", ROOT / ".run" / "kafka")) / "kafka.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().strip())
        if Path(f"/proc/{pid}").exists():
            return pid
    return None


class CpuMeter:
    """CPU used by this process, PostgreSQL (every postgres process), the Kafka broker of
    scripts/kafka.sh (else every JVM) and given processes (with their children), over a span."""

    def __init__(self, pids: dict[str, int] | None = None) -> None:
        self._pids = pids or {}
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {"bench": process_cpu_seconds(os.getpid())}
        for name, pid in self._pids.items():
            with contextlib.suppress(OSError):
                sample[name] = tree_cpu_seconds(pid)
        by_name = cpu_by_name(("postgres", "java"))
        sample["postgresql"] = by_name["postgres"]
        broker = _broker_pid()
        if broker is not None:
            with contextlib.suppress(OSError):
                sample["kafka"] = process_cpu_seconds(broker)
        if "kafka" not in sample:
            sample["kafka (all java)"] = by_name["java"]
        return sample

    def start(self) -> None:
        """Begin the span."""
        self._t0 = time.perf_counter()
        self._start = self._sample()

    def report(self) -> str:
        """Share of one core each used since start(), e.g. `bench 35% postgresql 60%`."""
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        end = self._sample()
        parts = [
            f"{name} {100.0 * (end[name] - self._start.get(name, end[name])) / elapsed:.0f}%"
            for name in end
        ]
        return "cpu (100% = one core): " + ", ".join(parts)


# ---------------------------------------------------------------- memory


def _status_kib(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmHWM: peak resident set, VmRSS: resident now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/{pid}/status")


def peak_rss_mib(pid: int | None = None) -> float:
    """The peak resident set size (VmHWM) of a process so far, MiB; this process by default.
    Read it before the process exits."""
    return _status_kib(os.getpid() if pid is None else pid, "VmHWM") / 1024.0


def rss_mib(pid: int | None = None) -> float:
    """The resident set size (VmRSS) of a process now, MiB; this process by default."""
    return _status_kib(os.getpid() if pid is None else pid, "VmRSS") / 1024.0


def report_peak_rss(benchmark: str, pids: dict[str, int]) -> None:
    """Print `<benchmark>_peak_rss_<name>_mib` for this process (`bench`) and each named
    process (uvicorn's worker processes each count apart: the largest is printed)."""
    found = {"bench": peak_rss_mib()}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            found[name] = max(peak_rss_mib(p) for p in _tree(pid))
    for name, mib in found.items():
        result(f"{benchmark}_peak_rss_{name.replace('-', '_')}_mib", mib, "MiB", 0)


def tree_peak_rss_mib(pid: int) -> float:
    """The peak resident sets (VmHWM, MiB) of a process and its live descendants, added up
    (uvicorn's workers with their parent); read before it stops."""
    total = 0.0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            total += peak_rss_mib(member)
    return total


def _tree(pid: int) -> set[int]:
    """A process and its live descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(stat[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return tree


# ---------------------------------------------------------------- py-spy summaries


def summarize_collapsed(path: Path, title: str, limit: int = 25) -> None:
    """Print a py-spy `--format raw` (collapsed stacks) recording as comment lines: the frames
    most often on top of the stack (own time), and the project's functions (services/, shared/)
    most often anywhere on it (inclusive time), as shares of all samples."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            if "(services/" in frame or "(shared/" in frame:
                inclusive[frame] = inclusive.get(frame, 0) + count
    note(f"profile {title}: {total} samples")
    for label, table in (("own time", own), ("inclusive, project code", inclusive)):
        note(f"  top {limit} by {label}:")
        for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:limit]:
            note(f"    {100.0 * count / max(total, 1):5.1f}%  {frame}")


def _frame_name(frame: str) -> str:
    """`func (path/to/file.py:12)` -> `func (file path relative to the repo or site-packages)`."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    file = file.replace(str(ROOT) + "/", "")
    if "/site-packages/" in file:
        file = file.split("/site-packages/", 1)[1]
    elif "/lib/python3" in file:
        file = "stdlib/" + file.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return f"{name} ({file})"


def py_spy() -> Path | None:
    """The py-spy of the virtualenv, if installed (it is not a project dependency)."""
    candidate = Path(sys.executable).parent / "py-spy"
    return candidate if candidate.exists() else None
