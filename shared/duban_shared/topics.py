"""Logical Kafka topic names; partition counts live in deploy/kafka/topics.txt.

Outbox rows store these logical names; the actual topic is `settings.topic_prefix + name`.
"""

WORK_POINTS = "duban.registry.work-points.v1"
AGENCIES = "duban.registry.agencies.v1"
STATUS = "duban.status.v1"
STATUS_DLQ = "duban.status.dlq.v1"
STALLS = "duban.stalls.v1"
