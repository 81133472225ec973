"""Logical Kafka topic names; partition counts live in deploy/kafka/topics.txt.

Outbox rows store these logical names; the actual topic is `settings.topic_prefix + name`.
"""

from __future__ import annotations

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


class TopicSpec(NamedTuple):
    """One line of the topic list: a logical topic, its partition count and its configs."""

    name: str
    partitions: int
    configs: dict[str, str]


def read_topic_list(path: Path) -> list[TopicSpec]:
    """Read the topic list (deploy/kafka/topics.txt): `name partitions [key=value ...]` lines,
    `#` starting a comment. The one parser for the scripts, tests and benchmarks."""
    specs = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, partitions, *configs = line.split()
        specs.append(TopicSpec(name, int(partitions), dict(c.split("=", 1) for c in configs)))
    return specs
