"""The attribute registry: every span and metric attribute we set by hand, one constant each.

Our own attributes live under `duban.`; standard ones come from the OpenTelemetry semantic
conventions and are re-exported here so code imports attributes from one place. Rules:

- No personal data in any attribute: no contact address, phone number, e-mail address or webhook
  URL. A recipient appears only masked (`notifier.domain.contacts.mask`), a caller only by
  client id.
- Values are ids and closed vocabularies (levels, reasons, outcomes), so metric attributes keep a
  bounded cardinality. Work point and agency ids go on spans only, never on metrics.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import messaging_attributes as _messaging
from opentelemetry.semconv.attributes import error_attributes as _error

# ---------------------------------------------------------------- our own (duban.*)

WORK_POINT_ID: Final = "duban.work_point.id"
"""A work point's id, `<plan slug>/<number>` (e.g. `zhaoqing-digital-2024/35`). Spans only."""

PLAN_SLUG: Final = "duban.plan.slug"
"""A plan's slug (e.g. `zhaoqing-digital-2024`): the work point id up to its last slash."""

AGENCY_ID: Final = "duban.agency.id"
"""The registry's UUID of an agency: the reporting agency, the caller's, or a recipient's."""

CLIENT_ID: Final = "duban.client.id"
"""The API client id of the caller (`<role>-<16 hex>`, not a secret); never the token."""

CLIENT_ROLE: Final = "duban.client.role"
"""The caller's role: `agency`, `coordinator` or `operator`."""

PERSON: Final = "duban.person"
"""The username of the person who acts (a personal account's session; absent for machines).
On the registry's `POST /v1/sessions` span, the username that tried to log in."""

STALL_LEVEL: Final = "duban.stall.level"
"""A stall colour: `red`, `yellow`, `blue` (or `green` once recovered). Spans and metrics."""

STALL_REASON: Final = "duban.stall.reason"
"""The headline stall reason: `blocked`, `overdue`, `silent`, `behind_pace`, `flatline`,
`due_soon`. Spans and metrics."""

STALL_TRANSITION: Final = "duban.stall.transition"
"""A stall transition's kind: `opened`, `level_changed`, `recovered` or `closed`."""

SWEEP_TRANSITIONS: Final = "duban.sweep.transitions"
"""How many stall transitions one sweep queued (on the sweep's span)."""

SWEEP_CALENDAR_REJUDGED: Final = "duban.sweep.calendar_rejudged"
"""Work points a sweep made due because a provisional calendar year they were judged on is now
official (on the first sweep after a start; on the sweep's span)."""

CALENDAR_YEAR: Final = "duban.calendar.year"
"""A calendar year judged on a provisional arrangement (a metric label)."""

CIRCULAR_ID: Final = "duban.circular.id"
"""A circular's id (progress's table `circular`). Spans only."""

CIRCULAR_KIND: Final = "duban.circular.kind"
"""How often a circular is published: `weekly` or `monthly`."""

CIRCULAR_TRIGGER: Final = "duban.circular.trigger"
"""What made a circular: `scheduled` (the calendar) or `on_demand` (the office's request)."""

CIRCULAR_PERIOD: Final = "duban.circular.period"
"""A circular's period: `2024-W36` (ISO week) or `2024-09` (month). Spans only."""

ALERT_ID: Final = "duban.alert.id"
"""The notifier's alert id (one alert per stall episode)."""

ALERT_ACK_VIA: Final = "duban.alert.acknowledged_via"
"""How an alert was acknowledged: `api` (a token: the board or a client) or `link` (a message's
signed link). Spans and the acknowledgement duration metric."""

NOTICE_ID: Final = "duban.notice.id"
"""A supervision notice's id (督办单)."""

NOTICE_STATE: Final = "duban.notice.state"
"""The state a supervision notice entered: `issued`, `replied`, `overdue`, `closed`,
`withdrawn`. Spans and metrics."""

NOTICE_OVERDUE: Final = "duban.notice.overdue"
"""How many notices one sweep marked overdue (on the sweep's span)."""

NOTIFICATION_CHANNEL: Final = "duban.notification.channel"
"""A delivery channel: `email`, `sms` or `wecom`. Spans and metrics."""

NOTIFICATION_RECIPIENT: Final = "duban.notification.recipient"
"""A recipient address, always masked (`li***@example.cn`, `+86***8000`); a WeCom robot name."""

NOTIFICATION_ROWS: Final = "duban.notification.rows"
"""How many planned deliveries one message carries (more than one for a digest)."""

ROUND_SIZE: Final = "duban.ingest.round.size"
"""How many requests one shared database round of ingestion answered (on the round's span)."""

BATCH_REJECTED: Final = "duban.batch.rejected"
"""How many records of a consumed batch were parked (on the batch's span)."""

LINK_KIND: Final = "duban.link"
"""On a span link: what the linked span is (e.g. `registry work point snapshot`)."""

EXTENSION_ID: Final = "duban.extension.id"
"""The registry's id of an extension request (延期申请). Spans only."""

EXTENSION_STATE: Final = "duban.extension.state"
"""The state an extension request reached: `requested`, `approved`, `rejected`, `withdrawn`."""

OUTCOME: Final = "outcome"
"""What became of an event or a message, a closed vocabulary per metric: ingestion `accepted`,
`replayed`, `rejected`; notifications `sent`, `failed`, `retried`, `dropped`; extension
requests `requested`, `approved`, `rejected`, `withdrawn`. Metrics only."""

# ---------------------------------------------------------------- standard (semantic conventions)

ERROR_TYPE: Final = _error.ERROR_TYPE
"""`error.type`: the stable error code of a rejection (`unknown_work_point`, `rate_limited`...)."""

MESSAGING_SYSTEM: Final = _messaging.MESSAGING_SYSTEM
MESSAGING_DESTINATION_NAME: Final = _messaging.MESSAGING_DESTINATION_NAME
MESSAGING_DESTINATION_PARTITION_ID: Final = _messaging.MESSAGING_DESTINATION_PARTITION_ID
MESSAGING_CONSUMER_GROUP_NAME: Final = _messaging.MESSAGING_CONSUMER_GROUP_NAME
MESSAGING_OPERATION_TYPE: Final = _messaging.MESSAGING_OPERATION_TYPE
MESSAGING_OPERATION_NAME: Final = _messaging.MESSAGING_OPERATION_NAME
MESSAGING_KAFKA_MESSAGE_KEY: Final = _messaging.MESSAGING_KAFKA_MESSAGE_KEY
MESSAGING_KAFKA_OFFSET: Final = _messaging.MESSAGING_KAFKA_OFFSET
MESSAGING_BATCH_MESSAGE_COUNT: Final = _messaging.MESSAGING_BATCH_MESSAGE_COUNT
MESSAGING_SYSTEM_KAFKA: Final = _messaging.MessagingSystemValues.KAFKA.value
"""The value of `messaging.system` for our broker."""
