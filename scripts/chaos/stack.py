"""The stack under test: its own broker and PostgreSQL (other ports, state under .run/chaos),
the registry, the progress API, two progress workers, two notifier replicas and an SMTP sink,
each a process of its own that can be killed, stopped and started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PLAN_SLUG = "zhaoqing-digital-2024"
PLAN_YEAR = 2024
DUE_WINDOW_YEARS = str(max(1, datetime.now(UTC).year - PLAN_YEAR))
SINK = ["-c", "aiosmtpd.handlers.Mailbox"]
PLAN_FILE = ROOT / "data" / "plans" / f"{PLAN_SLUG}.txt"


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the chaos stack (none shared with `make up`, `make demo` or tests)."""

    kafka: int = 29092
    kafka_controller: int = 29093
    postgres: int = 25432
    registry: int = 8201
    progress: int = 8202
    notifier: tuple[int, int] = (8203, 8204)
    workers: tuple[int, int] = (8212, 8213)
    worker_2027: int = 8214
    smtp: int = 1225


def log(message: str) -> None:
    """One line of the suite's own output."""
    print(f"chaos {time.strftime('%H:%M:%S')} {message}", flush=True)


@dataclass
class Proc:
    """A long-running process of the stack, in a session of its own (so it and its children
    are signalled together)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_file: Path
    health_url: str | None = None
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    async def start(self) -> None:
        """Start it (again); output appended to its log file."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            out.write(f"\n===== chaos: start #{self.starts + 1} of {self.name}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        self.starts += 1

    @property
    def alive(self) -> bool:
        """Tell whether the process runs."""
        return self.process is not None and self.process.returncode is None

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal to its whole process group."""
        if self.alive and self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    async def kill9(self) -> None:
        """SIGKILL, as a crash would, and reap it."""
        self.signal(signal.SIGKILL)
        await self.wait(10)

    async def stop(self, timeout: float = 15) -> None:  # noqa: ASYNC109
        """SIGTERM, then SIGKILL after `timeout`."""
        self.signal(signal.SIGTERM)
        if not await self.wait(timeout):
            self.signal(signal.SIGKILL)
            await self.wait(5)

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to `timeout` for it to exit; tell whether it did."""
        if self.process is None:
            return True
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
            return True
        except TimeoutError:
            return False


async def run(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    timeout: float = 300,  # noqa: ASYNC109
    check: bool = True,
    input_text: str | None = None,
) -> tuple[int, str]:
    """Run a command to its end (killed after `timeout`); return its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE if input_text is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(
            process.communicate(input_text.encode() if input_text is not None else None),
            timeout,
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise RuntimeError(f"{' '.join(argv)} did not finish within {timeout:.0f}s") from None
    text = out.decode(errors="replace")
    status = process.returncode if process.returncode is not None else -1
    if check and status != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {status}:\n{text[-3000:]}")
    return status, text


@dataclass
class Stack:
    """Where everything runs and how to start, kill and stop each part."""

    run_dir: Path
    ports: Ports = field(default_factory=Ports)
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def kafka_dir(self) -> Path:
        """The broker's state."""
        return self.run_dir / "kafka"

    @property
    def mail_dir(self) -> Path:
        """The SMTP sink's Maildir."""
        return self.run_dir / "mail"

    @property
    def logs(self) -> Path:
        """Every process's output."""
        return self.run_dir / "logs"

    @property
    def bootstrap(self) -> str:
        """The broker's address."""
        return f"127.0.0.1:{self.ports.kafka}"

    def db_url(self, service: str, driver: str = "postgresql+psycopg") -> str:
        """The SQLAlchemy URL of a service's database."""
        return f"{driver}://duban@127.0.0.1:{self.ports.postgres}/duban_{service}"

    def pg_dsn(self, service: str) -> str:
        """A libpq connection string of a service's database (for the checks)."""
        return f"postgresql://duban@127.0.0.1:{self.ports.postgres}/duban_{service}"

    def url(self, port: int) -> str:
        """Base URL of a service on this machine."""
        return f"http://127.0.0.1:{port}"

    # ------------------------------------------------------------------ environment

    def script_env(self) -> dict[str, str]:
        """Environment of scripts/kafka.sh and scripts/postgres.sh for this stack's servers."""
        env = dict(os.environ)
        env.update(
            DUBAN_KAFKA_PORT=str(self.ports.kafka),
            DUBAN_KAFKA_CONTROLLER_PORT=str(self.ports.kafka_controller),
            DUBAN_KAFKA_DIR=str(self.kafka_dir),
            DUBAN_KAFKA_HEAP="-Xms192m -Xmx384m",
            DUBAN_PG_PORT=str(self.ports.postgres),
            DUBAN_PG_DIR=str(self.run_dir / "postgres"),
        )
        return env

    def service_env(self, **extra: str) -> dict[str, str]:
        """Environment of the services: every setting this stack needs, nothing inherited
        from a DUBAN_* of the caller."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "OTEL_"))}
        env.update(
            PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
            DUBAN_ENVIRONMENT="test",
            DUBAN_KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            DUBAN_REGISTRY_DATABASE_URL=self.db_url("registry"),
            DUBAN_PROGRESS_DATABASE_URL=self.db_url("progress"),
            DUBAN_NOTIFIER_DATABASE_URL=self.db_url("notifier"),
            DUBAN_AUTH_JWKS_URL=f"{self.url(self.ports.registry)}/.well-known/jwks.json",
            DUBAN_CALENDAR_DIR=str(ROOT / "data" / "calendar"),
            DUBAN_LOG_FORMAT="text",
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            # Small pools: seven processes share one PostgreSQL on a small machine.
            DUBAN_REGISTRY_DATABASE_POOL_SIZE="3",
            DUBAN_PROGRESS_DATABASE_POOL_SIZE="5",
            DUBAN_NOTIFIER_DATABASE_POOL_SIZE="3",
            DUBAN_PROGRESS_SWEEP_INTERVAL_SECONDS="5",
            DUBAN_PROGRESS_OUTBOX_POLL_SECONDS="0.5",
            DUBAN_REGISTRY_OUTBOX_POLL_SECONDS="0.5",
            DUBAN_PROGRESS_NOTIFIER_URL=self.url(self.ports.notifier[0]),
            DUBAN_NOTIFIER_SMTP_HOST="127.0.0.1",
            DUBAN_NOTIFIER_SMTP_PORT=str(self.ports.smtp),
            DUBAN_NOTIFIER_SMTP_TIMEOUT_SECONDS="5",
            DUBAN_NOTIFIER_PUBLIC_URL=self.url(self.ports.notifier[0]),
            DUBAN_NOTIFIER_ESCALATION_DIR=str(ROOT / "data" / "escalation"),
            DUBAN_NOTIFIER_DISPATCH_INTERVAL_SECONDS="1",
            # An SMTP outage of a minute is retried through, not given up on.
            DUBAN_NOTIFIER_RETRY_BASE_SECONDS="2",
            DUBAN_NOTIFIER_RETRY_CAP_SECONDS="10",
            DUBAN_NOTIFIER_MAX_ATTEMPTS="100",
            DUBAN_NOTIFIER_PER_RECIPIENT_PER_HOUR="100000",
            DUBAN_NOTIFIER_PER_RECIPIENT_BURST="1000",
            DUBAN_CONSUMER_RETRY_MAX_SECONDS="5",
            # The 2024 plan's work points are moved to the end of this year (set-up), which the
            # due-date window must allow; 2030, a poison record, stays outside it.
            DUBAN_REGISTRY_LATEST_DUE_YEARS_AFTER_PLAN=DUE_WINDOW_YEARS,
            DUBAN_PROGRESS_LATEST_DUE_YEARS_AFTER_PLAN=DUE_WINDOW_YEARS,
        )
        env.update(extra)
        return env

    # ------------------------------------------------------------------ broker and database

    async def kafka(self, command: str) -> str:
        """scripts/kafka.sh COMMAND for this stack's broker."""
        _, out = await run(["bash", "scripts/kafka.sh", command], self.script_env(), timeout=240)
        return out

    async def postgres(self, command: str) -> str:
        """scripts/postgres.sh COMMAND for this stack's cluster."""
        _, out = await run(["bash", "scripts/postgres.sh", command], self.script_env(), timeout=240)
        return out

    def broker_pid(self) -> int | None:
        """The running broker's pid (from its pid file), None if it does not run."""
        try:
            pid = int((self.kafka_dir / "kafka.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    async def kill9_broker(self) -> None:
        """SIGKILL the broker, as a crash of its machine would."""
        pid = self.broker_pid()
        if pid is None:
            raise RuntimeError("the broker does not run")
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                return
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ the processes

    def define(self) -> None:
        """The processes, not started yet."""
        p, py = self.ports, str(VENV_BIN / "python")
        bin_ = VENV_BIN

        def add(name: str, argv: list[str], health: int | None, **env: str) -> None:
            self.procs[name] = Proc(
                name,
                argv,
                self.service_env(**env),
                self.logs / f"{name}.log",
                f"{self.url(health)}/healthz" if health else None,
            )

        add(
            "smtp",
            [py, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{p.smtp}", *SINK, str(self.mail_dir)],
            None,
        )
        add(
            "registry",
            [str(bin_ / "duban-registry"), "serve", "--port", str(p.registry)],
            p.registry,
        )
        add(
            "progress-api",
            [str(bin_ / "duban-progress"), "serve", "--port", str(p.progress)],
            p.progress,
            DUBAN_PROGRESS_BACKGROUND="false",
        )
        for i, port in enumerate(p.workers, 1):
            add(f"worker{i}", [str(bin_ / "duban-progress"), "worker", "--port", str(port)], port)
        for i, port in enumerate(p.notifier, 1):
            add(f"notifier{i}", [str(bin_ / "duban-notifier"), "serve", "--port", str(port)], port)

    def worker_2027(self, epoch: float) -> Proc:
        """A third progress worker whose clock says 4 January 2027, a year no official
        calendar is installed for."""
        port = self.ports.worker_2027
        proc = Proc(
            "worker-2027",
            [str(VENV_BIN / "duban-progress"), "worker", "--port", str(port)],
            self.service_env(
                DUBAN_SIM_CLOCK_START="2027-01-04T09:00:00+08:00",
                DUBAN_SIM_CLOCK_EPOCH=f"{epoch:.3f}",
            ),
            self.logs / "worker-2027.log",
            f"{self.url(port)}/healthz",
        )
        self.procs[proc.name] = proc
        return proc

    async def wait_healthy(self, names: Sequence[str], within: float) -> None:
        """Wait until each named process answers /healthz with 200."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=3) as http:
            for name in names:
                url = self.procs[name].health_url
                while url is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(url)).status_code == 200:
                            break
                    if not self.procs[name].alive:
                        raise RuntimeError(f"{name} exited; see {self.procs[name].log_file}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} not healthy after {within:.0f}s ({url})")
                    await asyncio.sleep(0.5)

    async def stop_all(self) -> None:
        """Stop every process of the stack, then the broker and the database."""
        await asyncio.gather(*(p.stop(10) for p in self.procs.values()))
        for command in (self.kafka("stop"), self.postgres("stop")):
            with contextlib.suppress(Exception):
                await command

    def kill_all_now(self) -> None:
        """Last resort on exit (no event loop): SIGKILL every process group still running."""
        for proc in self.procs.values():
            proc.signal(signal.SIGKILL)
