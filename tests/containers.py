"""The testcontainers backend: Kafka and PostgreSQL as containers for one pytest session.

`DUBAN_TEST_BACKEND=containers` selects it (the default, `scripts`, uses the broker and the
PostgreSQL that `scripts/test.sh` starts, or DUBAN_TEST_KAFKA_BOOTSTRAP / DUBAN_TEST_PG_URL).
The containers run on the local images of `scripts/images.sh` (duban-local/kafka,
duban-local/postgres) with host networking on 127.0.0.1, on ports of their own, through
testcontainers on the engine of DOCKER_HOST (`scripts/docker.sh start`). Ryuk, testcontainers'
reaper, needs an image from a registry; it is off unless TESTCONTAINERS_RYUK_DISABLED says
otherwise, and the session stops and removes its containers itself.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from aiokafka.admin import AIOKafkaAdminClient

KAFKA_IMAGE = os.environ.get("DUBAN_TEST_KAFKA_IMAGE", "duban-local/kafka:latest")
PG_IMAGE = os.environ.get("DUBAN_TEST_PG_IMAGE", "duban-local/postgres:latest")
KAFKA_PORT = int(os.environ.get("DUBAN_TEST_CONTAINERS_KAFKA_PORT", "39192"))
PG_PORT = int(os.environ.get("DUBAN_TEST_CONTAINERS_PG_PORT", "35532"))
START_TIMEOUT = 180.0


def selected() -> bool:
    """Whether this session runs on the testcontainers backend."""
    backend = os.environ.get("DUBAN_TEST_BACKEND", "scripts")
    if backend not in ("scripts", "containers"):
        raise SystemExit(f"DUBAN_TEST_BACKEND must be scripts or containers, not {backend!r}")
    return backend == "containers"


@dataclass
class Infrastructure:
    """The running containers and the addresses the tests use."""

    kafka_bootstrap: str
    pg_url: str
    containers: list[Any]

    def stop(self) -> None:
        for container in self.containers:
            container.stop()  # removes it too (and its anonymous volumes)


def start() -> Infrastructure:
    """Start Kafka and PostgreSQL containers and wait until both answer."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer  # reads the setting above

    password = secrets.token_urlsafe(16)
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_env("KAFKA_PORT", str(KAFKA_PORT))
        .with_env("KAFKA_CONTROLLER_PORT", str(KAFKA_PORT + 1))
        .with_kwargs(network_mode="host")
    )
    postgres = (
        DockerContainer(PG_IMAGE)
        .with_env("POSTGRES_USER", "duban")
        .with_env("POSTGRES_PASSWORD", password)
        .with_env("PGPORT", str(PG_PORT))
        .with_kwargs(network_mode="host")
    )
    started: list[Any] = []
    try:
        for container in (kafka, postgres):
            container.start()
            started.append(container)
        infra = Infrastructure(
            kafka_bootstrap=f"127.0.0.1:{KAFKA_PORT}",
            pg_url=f"postgresql+psycopg://duban:{password}@127.0.0.1:{PG_PORT}/postgres",
            containers=started,
        )
        _wait_for_postgres(password)
        asyncio.run(_wait_for_kafka(infra.kafka_bootstrap))
    except BaseException:
        for container in started:
            _, stderr = container.get_logs()
            tail = stderr.decode(errors="replace").splitlines()[-15:]
            print(f"--- last log lines of {container.image}:", *tail, sep="\n")
            container.stop()
        raise
    return infra


def _wait_for_postgres(password: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    dsn = f"host=127.0.0.1 port={PG_PORT} user=duban password={password} dbname=postgres"
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=3):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


async def _wait_for_kafka(bootstrap: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
        finally:
            await admin.close()
        await asyncio.sleep(0.5)
