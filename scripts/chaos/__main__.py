"""python -m scripts.chaos [--short]: run the stack as deployed, load it, break it, check it.

Phases:
1. set-up: a fresh broker and PostgreSQL of its own (ports 29092 and 25432, state in
   .run/chaos), migrations, the plan imported, the registry, the progress API
   (DUBAN_PROGRESS_BACKGROUND=false), two progress workers, two notifiers and an SMTP sink;
   an API client and an email contact per lead agency; every work point due at the end of this
   year (so reports on pace turn it green, a blocked one red: episodes, alerts and mails
   during the run);
2. load and faults: reports at a steady rate while the faults of the timeline are injected;
3. drain: the load stops, reports still being resent finish, the reports the wrong-clock worker
   parked are replayed as an operator would;
4. checks against the databases, the broker's dead-letter topic and the mail sink;
5. the table of figures (also in .run/chaos/report.md). Exit 0 only when every check held.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from scripts.chaos.checks import Results, query, replay_wrong_clock_letters, run_checks, until
from scripts.chaos.faults import HealthWatch, Poison, post_poison, produce_poison
from scripts.chaos.load import Agency, Load, Tokens
from scripts.chaos.stack import PLAN_FILE, PLAN_SLUG, ROOT, VENV_BIN, Stack, log, run

T = TypeVar("T")
SERVICES = ["registry", "progress-api", "worker1", "worker2", "notifier1", "notifier2"]


@dataclass
class Mode:
    """How long and how hard."""

    name: str
    rate: float  # reports per second
    timeline: list[tuple[float, str]]  # (seconds after the load starts, action)
    load_seconds: float
    check_within: float
    hard_limit: float  # the whole run, seconds


SHORT = Mode(
    "short",
    rate=12,
    timeline=[
        (5, "kill worker1"),
        (8, "start worker-2027"),
        (12, "kill notifier1"),
        (15, "poison"),
        (50, "stop worker-2027"),
        (55, "kill broker"),
        (70, "start broker"),
        (80, "stop smtp"),
        (110, "stop postgres"),
        (140, "start smtp"),
        (170, "start postgres"),
        (175, "kill worker2"),
    ],
    load_seconds=185,
    check_within=150,
    hard_limit=720,
)

LONG = Mode(
    "long",
    rate=15,
    timeline=[
        (20, "kill worker1"),
        (40, "kill notifier1"),
        (50, "poison"),
        (60, "start worker-2027"),
        (90, "kill broker"),
        (110, "start broker"),
        (150, "stop worker-2027"),
        (180, "stop smtp"),
        (240, "start smtp"),
        (270, "stop postgres"),
        (330, "start postgres"),
        (380, "kill worker2"),
        (400, "kill notifier2"),
        (430, "kill broker"),
        (445, "start broker"),
        (480, "kill worker1"),
        (482, "kill notifier1"),
        (520, "stop smtp"),
        (580, "start smtp"),
        (600, "stop postgres"),
        (660, "start postgres"),
        (700, "kill worker2"),
        (720, "kill notifier2"),
    ],
    load_seconds=780,
    check_within=240,
    hard_limit=1800,
)


@dataclass
class Run:
    """One run of the suite."""

    mode: Mode
    stack: Stack
    started: float = field(default_factory=time.monotonic)
    agencies: list[Agency] = field(default_factory=list)
    office: dict[str, str] = field(default_factory=dict)
    office_token: str = ""
    work_points: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    poisons: list[Poison] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    restart_seconds: dict[str, list[float]] = field(default_factory=dict)
    load: Load | None = None
    health: HealthWatch | None = None

    # ---------------------------------------------------------------- 1. set-up

    async def setup(self) -> None:
        stack = self.stack
        log(
            f"set-up: fresh broker (127.0.0.1:{stack.ports.kafka}) and PostgreSQL "
            f"(127.0.0.1:{stack.ports.postgres}) in {stack.run_dir.relative_to(ROOT)}"
        )
        await asyncio.gather(stack.kafka("reset"), stack.postgres("reset"))
        for path in stack.run_dir.iterdir() if stack.run_dir.exists() else []:
            if path.name not in {"kafka", "postgres"}:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        stack.run_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("tmp", "new", "cur"):
            (stack.mail_dir / sub).mkdir(parents=True, exist_ok=True)
        await asyncio.gather(stack.kafka("start"), stack.postgres("start"))
        env = stack.service_env()
        bin_ = VENV_BIN
        cli = {s: str(bin_ / f"duban-{s}") for s in ("registry", "progress", "notifier")}

        async def registry_side() -> str:
            await run([cli["registry"], "migrate"], env)
            await run([cli["registry"], "import-plan", str(PLAN_FILE)], env)
            role = ["--role", "operator", "--label", "chaos office"]
            return (await run([cli["registry"], "create-client", *role], env))[1]

        out, *_ = await asyncio.gather(
            registry_side(),
            run([cli["progress"], "migrate"], env),
            run([cli["notifier"], "migrate"], env),
        )
        self.office = dict(
            line.split("=", 1) for line in out.splitlines() if line.startswith("client_")
        )
        stack.define()
        for name in ["smtp", *SERVICES]:
            await stack.procs[name].start()
        await stack.wait_healthy(SERVICES, 120)
        log("set-up: services healthy; API clients, contacts and due dates")
        async with (
            httpx.AsyncClient(base_url=stack.url(stack.ports.registry), timeout=60) as registry,
            httpx.AsyncClient(base_url=stack.url(stack.ports.notifier[0]), timeout=60) as notifier,
        ):
            await self._office_token(registry)
            await self._read_plan(registry)
            await self._make_clients(registry)
            await self._contacts(notifier)
            await self._due_this_year(registry)
        due = f"{datetime.now(UTC).date().year}-12-31"

        async def views_due() -> bool:
            rows = await query(
                stack.pg_dsn("progress"),
                "SELECT count(*) FROM work_point_view WHERE due_on = %s",
                date.fromisoformat(due),
            )
            return bool(rows[0][0] == len(self.work_points))

        if not await until(views_due, 90, 1):
            raise RuntimeError("progress did not learn the new due dates within 90s")
        self.durations["set-up"] = time.monotonic() - self.started
        log(
            f"set-up done in {self.durations['set-up']:.0f}s: {len(self.agencies)} agencies, "
            f"{len(self.work_points)} work points due {due}"
        )

    async def _office_token(self, registry: httpx.AsyncClient) -> None:
        answer = await registry.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.office["client_id"],
                "client_secret": self.office["client_secret"],
            },
        )
        answer.raise_for_status()
        self.office_token = answer.json()["access_token"]

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.office_token}"}

    async def _read_plan(self, registry: httpx.AsyncClient) -> None:
        page = await registry.get(
            f"/v1/plans/{PLAN_SLUG}/work-points", params={"limit": 100}, headers=self._auth()
        )
        page.raise_for_status()
        self.work_points = page.json()["items"]
        agencies: dict[uuid.UUID, Agency] = {}
        for item in self.work_points:
            for r in item["responsibilities"]:
                if r["role"] == "lead":
                    agency_id = uuid.UUID(r["agency_id"])
                    agency = agencies.setdefault(agency_id, Agency(agency_id, r["agency_name"]))
                    agency.work_points.append(str(item["code"]))
        self.agencies = sorted(agencies.values(), key=lambda a: a.name)

    async def _make_clients(self, registry: httpx.AsyncClient) -> None:
        async def make(agency: Agency) -> None:
            answer = await registry.post(
                "/v1/clients",
                json={"role": "agency", "agency_id": str(agency.id), "label": "chaos load"},
                headers=self._auth(),
            )
            answer.raise_for_status()
            agency.client_id = answer.json()["client_id"]
            agency.secret = answer.json()["client_secret"]
            await Tokens(registry).get(agency)

        await _in_parallel(make, self.agencies, at_once=3)

    async def _contacts(self, notifier: httpx.AsyncClient) -> None:
        async def put(agency: Agency) -> None:
            body = {
                "contacts": [
                    {"channel": "email", "address": f"dept-{agency.id.hex[:8]}@chaos.example.cn"}
                ]
            }
            for _ in range(120):  # the notifier learns the agencies from Kafka first
                answer = await notifier.put(
                    f"/v1/agencies/{agency.id}/contacts", json=body, headers=self._auth()
                )
                if answer.status_code == 200:
                    break
                await asyncio.sleep(0.5)
            else:
                raise RuntimeError(f"contact of {agency.name} refused: {answer.text}")

        await _in_parallel(put, self.agencies)

    async def _due_this_year(self, registry: httpx.AsyncClient) -> None:
        due = f"{datetime.now(UTC).date().year}-12-31"

        async def put(item: dict[str, Any]) -> None:
            answer = await registry.put(
                f"/v1/plans/{PLAN_SLUG}/work-points/{item['code']}/policy",
                json={"due_on": due},
                headers=self._auth(),
            )
            answer.raise_for_status()

        await _in_parallel(put, self.work_points)

    # ---------------------------------------------------------------- 2. load and faults

    async def load_and_faults(self) -> None:
        stack, mode = self.stack, self.mode
        self.health = watch = HealthWatch(stack)
        async with (
            httpx.AsyncClient(
                base_url=stack.url(stack.ports.progress),
                timeout=10,
                limits=httpx.Limits(max_connections=60),
            ) as progress,
            httpx.AsyncClient(base_url=stack.url(stack.ports.registry), timeout=30) as registry,
        ):
            tokens = Tokens(registry)
            self.load = load = Load(progress, tokens, self.agencies, mode.rate)
            stop_load, stop_watch = asyncio.Event(), asyncio.Event()
            watching = asyncio.create_task(watch.run(stop_watch))
            loading = asyncio.create_task(load.run(stop_load))
            side: list[asyncio.Task[None]] = []
            try:
                began = time.monotonic()
                log(
                    f"load: {mode.rate:g} reports/s for {mode.load_seconds:.0f}s, "
                    f"{len(mode.timeline)} fault steps"
                )
                for at, action in mode.timeline:
                    await asyncio.sleep(max(0.0, began + at - time.monotonic()))
                    log(
                        f"t+{time.monotonic() - began:5.1f}s {action} "
                        f"(sent {len(load.sent)}, in flight {load.in_flight})"
                    )
                    act = self.act(action, load, progress, registry, tokens)
                    side.append(asyncio.create_task(act))
                await asyncio.sleep(max(0.0, began + mode.load_seconds - time.monotonic()))
                stop_load.set()
                await loading
                await asyncio.gather(*side)
                log(
                    f"load stopped after {time.monotonic() - began:.0f}s: {len(load.sent)} "
                    f"reports; waiting for {load.in_flight} still being resent"
                )
                await stack.wait_healthy(SERVICES, 120)
                await load.drain()
                self.durations["load"] = time.monotonic() - began
                stop_watch.set()
                await watching
            finally:
                for task in [*side, *load.tasks, loading, watching]:
                    task.cancel()

    async def act(
        self,
        action: str,
        load: Load,
        progress: httpx.AsyncClient,
        registry: httpx.AsyncClient,
        tokens: Tokens,
    ) -> None:
        stack = self.stack
        if action == "poison":
            agency = self.agencies[0]
            code = agency.work_points[0]
            self.poisons += await produce_poison(stack, agency, code)
            self.poisons += await post_poison(
                progress, registry, tokens, agency, self.office_token, code
            )
            self.faults.append("poison records: 2 to Kafka, 2 through the APIs")
            return
        verb, what = action.split(" ", 1)
        if what == "broker":
            if verb == "kill":
                load.watch[f"broker#{self._count('broker')}"] = time.monotonic()
                await stack.kill9_broker()
                self.faults.append("broker kill -9")
            else:
                t = time.monotonic()
                await stack.kafka("start")
                self.restart_seconds.setdefault("broker", []).append(time.monotonic() - t)
                for key in [k for k in load.watch if k.startswith("broker")]:
                    del load.watch[key]
            return
        if what == "postgres":
            if verb == "stop":
                load.watch[f"postgres#{self._count('postgres')}"] = time.monotonic()
                await stack.postgres("stop")
                self.faults.append("PostgreSQL stopped 60 s")
            else:
                await stack.postgres("start")
                for key in [k for k in load.watch if k.startswith("postgres")]:
                    del load.watch[key]
            return
        if what == "smtp":
            if verb == "stop":
                await stack.procs["smtp"].stop()
                self.faults.append("SMTP server stopped 60 s")
            else:
                await stack.procs["smtp"].start()
            return
        if what == "worker-2027":
            if verb == "start":
                await stack.worker_2027(time.time()).start()
                self.faults.append("a worker on a 2027 clock")
            else:
                await stack.procs["worker-2027"].stop()
            return
        if verb == "kill":  # a service: kill -9, then started again as a supervisor would
            proc = stack.procs[what]
            await proc.kill9()
            self.faults.append(f"{what} kill -9")
            await asyncio.sleep(2)
            await proc.start()
            return
        raise ValueError(f"unknown action {action}")

    def _count(self, what: str) -> int:
        return 1 + sum(
            1
            for f in self.faults
            if f.startswith({"broker": "broker", "postgres": "PostgreSQL"}[what])
        )

    # ---------------------------------------------------------------- 3-5.

    async def check(self) -> Results:
        assert self.load is not None
        load = self.load
        accepted = {str(s.event_id) for s in load.sent if s.final_status == 202}
        replayed, _ = await replay_wrong_clock_letters(
            self.stack, accepted, self.stack.service_env()
        )
        log(f"drain: replayed {replayed} accepted reports the 2027 worker parked")
        began = time.monotonic()
        results = await run_checks(
            self.stack, load.sent, self.poisons, within=self.mode.check_within
        )
        # All processes alive and healthy at the end.
        try:
            await self.stack.wait_healthy(SERVICES, 60)
            healthy, detail = True, f"{len(SERVICES)} processes answer /healthz 200"
        except RuntimeError as exc:
            healthy, detail = False, str(exc)
        results.add("all processes alive", healthy, detail)
        self.durations["checks"] = time.monotonic() - began
        f = results.figures
        sent = load.sent
        stats = load.stats
        figures: dict[str, Any] = {
            "reports sent": len(sent),
            "HTTP requests": sum(stats.answers.values()),
            "answers": dict(sorted(stats.answers.items())),
            "reports accepted (202)": sum(1 for s in sent if s.final_status == 202),
            "reports not accepted": dict(
                sorted(
                    {
                        f"{s.final_status} {s.final_code}": 0 for s in sent if s.final_status != 202
                    }.items()
                )
            ),
            "resends after 202 answered 202": sum(1 for s in sent if s.resent_ok),
            "resends after 202 refused": sum(1 for s in sent if s.resent_ok is False),
            "accepted reports parked by the 2027 worker, replayed": replayed,
        }
        for s in sent:
            if s.final_status != 202:
                figures["reports not accepted"][f"{s.final_status} {s.final_code}"] += 1
        figures.update(f)
        figures["faults injected"] = len(self.faults)
        figures["faults"] = dict(sorted({x: self.faults.count(x) for x in self.faults}.items()))
        figures["first 503 after the fault (s)"] = {
            k: round(v, 1) for k, v in stats.first_503_after.items()
        }
        figures["first 202 after the fault (s)"] = {
            k: round(v, 1) for k, v in stats.first_202_after.items()
        }
        figures["broker restart (s)"] = [
            round(x, 1) for x in self.restart_seconds.get("broker", [])
        ]
        if self.health is not None:
            figures["longest healthz not ok (s)"] = {
                k: round(v, 1) for k, v in sorted(self.health.longest.items())
            }
        figures["max attempts of one report"] = max((s.attempts for s in sent), default=0)
        self.durations["total"] = time.monotonic() - self.started
        figures["durations (s)"] = {k: round(v) for k, v in self.durations.items()}
        results.figures = figures
        return results


async def _in_parallel(
    call: Callable[[T], Awaitable[None]], items: Iterable[T], at_once: int = 6
) -> None:
    """Call for every item, a few at a time."""
    gate = asyncio.Semaphore(at_once)

    async def one(item: T) -> None:
        async with gate:
            await call(item)

    await asyncio.gather(*(one(i) for i in items))


def table(mode: Mode, results: Results) -> str:
    """The run's figures and checks as Markdown."""
    lines = [
        f"### Chaos run ({mode.name} mode, {datetime.now(UTC).date().isoformat()})",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    for key, value in results.figures.items():
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        lines.append(f"| {key} | {text} |")
    lines += ["", "| check | result | what was seen |", "|---|---|---|"]
    for c in results.checks:
        lines.append(f"| {c.name} | {'ok' if c.ok else 'FAILED'} | {c.detail} |")
    return "\n".join(lines) + "\n"


async def main_async(mode: Mode, run_dir: Path) -> int:
    stack = Stack(run_dir)
    atexit.register(stack.kill_all_now)
    chaos = Run(mode, stack)
    try:
        await chaos.setup()
        await chaos.load_and_faults()
        results = await chaos.check()
    except Exception:
        log("the suite itself failed; logs in " + str(stack.logs))
        raise
    finally:
        log("stopping everything it started")
        await stack.stop_all()
    report = table(mode, results)
    (run_dir / "report.md").write_text(report, encoding="utf-8")
    print()
    print(report)
    failed = [c.name for c in results.checks if not c.ok]
    log("all checks held" if not failed else f"FAILED: {', '.join(failed)}")
    return 0 if not failed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--short", action="store_true", help="about 5 minutes (make test)")
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run" / "chaos")
    args = parser.parse_args(argv)
    mode = SHORT if args.short else LONG
    loop = asyncio.new_event_loop()
    main_task = loop.create_task(
        asyncio.wait_for(main_async(mode, args.run_dir.resolve()), mode.hard_limit)
    )
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, main_task.cancel)
    try:
        return loop.run_until_complete(main_task)
    except asyncio.CancelledError:
        log("interrupted")
        return 130
    except TimeoutError:
        log(f"did not finish within {mode.hard_limit:.0f}s")
        return 1
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
