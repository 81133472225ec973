"""Logical Kafka topic names; partition counts live in deploy/kafka/topics.txt.

Outbox rows store these logical names; the actual topic is `settings.topic_prefix + name`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

WORK_POINTS = "duban.registry.work-points.v1"
AGENCIES = "duban.registry.agencies.v1"
STATUS = "duban.status.v1"
PROGRESS_DLQ = "duban.progress.dlq.v1"
STALLS = "duban.stalls.v1"
NOTIFIER_DLQ = "duban.notifier.dlq.v1"
REVOCATIONS = "duban.registry.revocations.v1"
CIRCULARS = "duban.circulars.v1"
NOTICES = "duban.notices.v1"
ALERTS = "duban.alerts.v1"
DELIVERIES = "duban.deliveries.v1"

DEFAULT_EVENT_RETENTION_MS = 604_800_000
"""How long an event topic keeps a record unless DUBAN_KAFKA_RETENTION_MS says (7 days)."""


def event_retention_ms(env: dict[str, str] | None = None) -> int:
    """DUBAN_KAFKA_RETENTION_MS, or the default: the retention of the event topics."""
    value = (os.environ if env is None else env).get("DUBAN_KAFKA_RETENTION_MS", "")
    return int(value) if value.strip() else DEFAULT_EVENT_RETENTION_MS


class TopicSpec(NamedTuple):
    """One line of the topic list: a logical topic, its partition count and its configs."""

    name: str
    partitions: int
    configs: dict[str, str]


def read_topic_list(path: Path, *, retention_ms: int | None = None) -> list[TopicSpec]:
    """Read the topic list (deploy/kafka/topics.txt): `name partitions [key=value ...]` lines,
    `#` starting a comment. The one parser for the scripts, tests and benchmarks.

    A topic that deletes records (its cleanup.policy is not `compact` alone) and names no
    retention.ms gets `retention_ms` (default: DUBAN_KAFKA_RETENTION_MS, else 7 days), as
    scripts/kafka.sh gives it when it creates the topics.
    """
    default_retention = event_retention_ms() if retention_ms is None else retention_ms
    specs = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, partitions, *configs = line.split()
        config = dict(c.split("=", 1) for c in configs)
        if "delete" in config.get("cleanup.policy", "delete").split(","):
            config.setdefault("retention.ms", str(default_retention))
        specs.append(TopicSpec(name, int(partitions), config))
    return specs
