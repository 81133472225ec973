"""Delivery rules: what a planned delivery is called, when it may go, how often it is retried.

Planning writes one `notification_log` row per (alert, step occurrence, channel, recipient);
its cause id (`cause_id`) is a uuid5 of the alert and the step occurrence, so the table's
unique constraint is the promise of at most one send per (alert, step, channel, recipient).
Everything here is a pure function of its arguments: the use cases in
`notifier.use_cases.planning` and `notifier.use_cases.dispatching` store and send.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from duban_shared.workdays import WorkingCalendar

from notifier.domain.policy import EscalationPolicy
from notifier.domain.workhours import is_open, next_open

PENDING, HELD, SENDING, SENT, FAILED = "pending", "held", "sending", "sent", "failed"
SUPERSEDED, NO_CONTACT = "superseded", "no_contact"
DUE_STATUSES = (PENDING, HELD, SENDING)
"""Rows the dispatcher claims once their `next_attempt_at` has come."""
UNSENT_STATUSES = (PENDING, HELD)
"""Rows a recovery or closure may still drop (superseded)."""
RESOLVING_EVENTS = ("recovered", "closed")
STEP_EVENTS = {"lead": "fired", "co": "fired", "coordinating_office": "escalated"}
"""The event a policy step's message tells, by whom it notifies (a repeat is a `reminder`)."""
NOTICE_ISSUED, NOTICE_OVERDUE = "notice_issued", "notice_overdue"
"""The events of a supervision notice's messages: issued (to the lead), overdue (the policy's
notice steps: the coordinating office, reminders to the lead)."""
OFFICE_NAME = "督办协调部门"
"""The coordinating office's name in a message when the registry has not published it."""


def cause_id(alert_id: uuid.UUID, occurrence: str) -> uuid.UUID:
    """The id of one step occurrence of one alert: stable, so replays plan nothing twice."""
    return uuid.uuid5(alert_id, occurrence)


def step_event(notify: str, repeat: bool) -> str:
    """What a step's message tells: fired or escalated the first time, a reminder after."""
    return "reminder" if repeat and notify != "coordinating_office" else STEP_EVENTS[notify]


@dataclass(frozen=True)
class Recipient:
    """An agency to tell, and how it relates to the alert."""

    agency_id: uuid.UUID
    name: str
    role: str  # lead, co, office


def agency_recipients(agencies: Iterable[Mapping[str, Any]], role: str) -> list[Recipient]:
    """The recipients of an alert's agency list (`{"agency_id", "name"}` items)."""
    return [Recipient(uuid.UUID(a["agency_id"]), a["name"], role) for a in agencies]


def first_due(
    now: datetime, urgent: bool, group_wait: timedelta, joined: datetime | None
) -> datetime:
    """When a new row falls due: at once when urgent, else after the group window, or with an
    earlier pending row of the same contact it joins (so alerts of one moment go together)."""
    due = now if urgent else now + group_wait
    return joined if joined is not None and joined < due else due


def held_until(
    policy: EscalationPolicy,
    channel: str,
    urgent: bool,
    now: datetime,
    calendar: WorkingCalendar,
) -> datetime | None:
    """When a message on a quiet channel outside working hours may go (None: it may go now)."""
    hours = policy.hours
    if channel in policy.quiet_channels and not urgent and not is_open(now, hours, calendar):
        return next_open(now, hours, calendar)
    return None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: base * 2^(n-1), capped; half fixed, half random."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait before attempt `attempts + 1`."""
        full = min(self.cap, self.base * (1 << max(attempts - 1, 0)))
        return full / 2 + full / 2 * rng.random()


def message_reference(rows: Iterable[tuple[uuid.UUID, str, str]]) -> str:
    """Our id of the message for these deliveries, each (cause id, channel, recipient): what
    makes a delivery unique, so the same each time they are sent: an email's Message-ID and
    an SMS gateway's caller id are made from it, so a message sent again (after a retry, a
    lease that ran out when a process died mid-send, or a database restored from a backup
    taken before it was sent) is recognised as the same one by the receiving side."""
    key = ",".join(sorted(f"{cause}:{channel}:{recipient}" for cause, channel, recipient in rows))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def delivery_key(cause: uuid.UUID, channel: str, recipient: str) -> str:
    """The key of one delivery (cause, channel, recipient), with no address readable in it:
    what the deliveries topic says was sent, and what a restored notifier computes again from
    the rows it plans to recognise them."""
    return message_reference([(cause, channel, recipient)])


def note_author(
    lead_agencies: Sequence[Mapping[str, Any]], co_agencies: Sequence[Mapping[str, Any]]
) -> str | None:
    """Who wrote the alert's note, when it can only be one agency (else the message says 报送单位).

    A note comes from the status report that caused the transition, and only the work point's
    lead and co-responsible agencies report on it; the transition does not name the reporter.
    """
    agencies = {a["name"] for a in [*lead_agencies, *co_agencies]}
    return agencies.pop() if len(agencies) == 1 else None
