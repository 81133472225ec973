"""The load: agency systems posting status reports as a careful client does.

Each report has its own event_id and is sent until it is answered 202 (or refused for good):
a 503, 429, timeout or refused connection is resent after a pause with the same event_id and
the same body. One report in ten is sent a second time after its 202, as a client that lost
the answer would. Every outcome is recorded for the checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from scripts.chaos.stack import PLAN_SLUG


@dataclass
class Agency:
    """A reporting agency: its API client and the work points it leads."""

    id: uuid.UUID
    name: str
    client_id: str = ""
    secret: str = ""
    work_points: list[str] = field(default_factory=list)  # codes
    token: str = ""
    token_until: float = 0.0


@dataclass
class Sent:
    """One report and what became of it."""

    event_id: uuid.UUID
    agency: Agency
    body: dict[str, Any]
    created: float
    attempts: int = 0
    first_attempt: float = 0.0
    accepted_at: float | None = None
    final_status: int | None = None
    final_code: str = ""
    resent_ok: bool | None = None  # the deliberate second send after a 202


@dataclass
class LoadStats:
    """Counters of the load's traffic."""

    answers: Counter[str] = field(default_factory=Counter)  # "202", "503", "timeout", ...
    first_503_after: dict[str, float] = field(default_factory=dict)  # fault -> seconds
    first_202_after: dict[str, float] = field(default_factory=dict)


class Tokens:
    """Access tokens of the agencies' clients (client credentials), renewed before expiry."""

    def __init__(self, registry: httpx.AsyncClient) -> None:
        self.registry = registry
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def get(self, agency: Agency, renew: bool = False) -> str:
        """A valid token; retried while the registry or its database is down. One request
        per agency at a time: the others wait for its token."""
        held = agency.token
        async with self._locks.setdefault(agency.id, asyncio.Lock()):
            fresh = agency.token and time.monotonic() < agency.token_until - 60
            if fresh and (not renew or agency.token != held):
                return agency.token
            return await self._fetch(agency)

    async def _fetch(self, agency: Agency) -> str:
        while True:
            try:
                answer = await self.registry.post(
                    "/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": agency.client_id,
                        "client_secret": agency.secret,
                    },
                )
                if answer.status_code == 200:
                    body = answer.json()
                    agency.token = str(body["access_token"])
                    agency.token_until = time.monotonic() + float(body["expires_in"])
                    return agency.token
                if answer.status_code < 500:
                    raise RuntimeError(f"token refused: {answer.status_code} {answer.text}")
            except httpx.HTTPError:
                pass
            await asyncio.sleep(1.0)


class Load:
    """Posts reports at a steady rate and remembers every one."""

    def __init__(
        self,
        progress: httpx.AsyncClient,
        tokens: Tokens,
        agencies: list[Agency],
        rate: float,
        *,
        seed: int = 14,
        give_up_after: float = 240.0,
    ) -> None:
        self.progress = progress
        self.tokens = tokens
        self.agencies = agencies
        self.rate = rate
        self.rng = random.Random(seed)  # noqa: S311 - a load pattern, not a secret
        self.give_up_after = give_up_after
        self.sent: list[Sent] = []
        self.stats = LoadStats()
        self.watch: dict[str, float] = {}  # fault name -> monotonic moment it began
        self._queues: dict[uuid.UUID, asyncio.Queue[tuple[Sent, bool]]] = {}
        self._senders: list[asyncio.Task[None]] = []

    def body(self, agency: Agency) -> dict[str, Any]:
        """A report on one of the agency's work points: on pace mostly, sometimes blocked (an
        episode opens, and the next report on pace ends it)."""
        code = self.rng.choice(agency.work_points)
        blocked = self.rng.random() < 0.03
        return {
            "event_id": str(uuid.uuid4()),
            "work_point_id": f"{PLAN_SLUG}/{code}",
            "status": "blocked" if blocked else "on_track",
            "percent": 100,
            "note": "审批未完成" if blocked else "按计划推进",
            "occurred_at": datetime.now(UTC).isoformat(),
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Queue a report every 1/rate seconds until `stop`. Each agency's system sends its
        queue in order, two reports at a time (a backlog builds up while the service does not
        accept them, and drains afterwards)."""
        for agency in self.agencies:
            queue: asyncio.Queue[tuple[Sent, bool]] = asyncio.Queue()
            self._queues[agency.id] = queue
            for _ in range(2):
                self._senders.append(asyncio.create_task(self._sender(queue)))
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not stop.is_set():
            agency = self.rng.choice(self.agencies)
            body = self.body(agency)
            report = Sent(uuid.UUID(body["event_id"]), agency, body, time.monotonic())
            self.sent.append(report)
            self._queues[agency.id].put_nowait((report, self.rng.random() < 0.1))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _sender(self, queue: asyncio.Queue[tuple[Sent, bool]]) -> None:
        while True:
            report, resend = await queue.get()
            try:
                await self._deliver(report, resend)
            finally:
                queue.task_done()

    async def drain(self) -> None:
        """Wait for every queued report to be answered for good (or given up)."""
        await asyncio.gather(*(q.join() for q in self._queues.values()))

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The agencies' senders."""
        return list(self._senders)

    @property
    def in_flight(self) -> int:
        """Reports queued or being sent."""
        return sum(q.qsize() for q in self._queues.values()) + sum(
            1 for s in self.sent if s.attempts and s.final_status is None
        )

    async def post(self, agency: Agency, body: dict[str, Any]) -> tuple[str, int, str]:
        """One POST /v1/events; (outcome label, status, code). An expired token is renewed."""
        for renew in (False, True):
            token = await self.tokens.get(agency, renew=renew)
            try:
                answer = await self.progress.post(
                    "/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.TimeoutException:
                return "timeout", 0, "timeout"
            except httpx.TransportError:
                return "connection_error", 0, "connection_error"
            code = ""
            with contextlib.suppress(ValueError):
                code = str(answer.json().get("code", ""))
            if answer.status_code == 401 and not renew:
                continue
            return str(answer.status_code), answer.status_code, code
        raise AssertionError("unreachable")

    def _noted(self, label: str) -> None:
        self.stats.answers[label] += 1
        now = time.monotonic()
        for fault, began in self.watch.items():
            if label == "503" and fault not in self.stats.first_503_after:
                self.stats.first_503_after[fault] = now - began
            if label == "202" and fault in self.stats.first_503_after:
                self.stats.first_202_after.setdefault(fault, now - began)

    async def _deliver(self, report: Sent, resend: bool) -> None:
        pause = 0.5
        report.first_attempt = time.monotonic()
        while True:
            report.attempts += 1
            label, status, code = await self.post(report.agency, report.body)
            self._noted(label)
            if status == 202:
                report.accepted_at = time.monotonic()
                report.final_status = 202
                break
            retryable = status in (0, 429) or status >= 500
            if not retryable or time.monotonic() - report.first_attempt > self.give_up_after:
                report.final_status, report.final_code = status, code
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
        if resend:  # the answer was "lost": the same report again, at once
            for _ in range(60):
                label, status, _code = await self.post(report.agency, report.body)
                self._noted(label)
                if status == 202:
                    report.resent_ok = True
                    return
                if status not in (0, 429) and status < 500:
                    report.resent_ok = False
                    return
                await asyncio.sleep(2.0)
