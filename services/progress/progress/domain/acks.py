"""Acknowledgement times of the notifier's alerts, as the circulars (通报) count them.

Progress learns each alert's lifecycle from the notifier's `AlertTransition` events
(duban.alerts.v1) and keeps one row per alert. Merging an event is monotone: the state only
moves forward (fired < acknowledged < resolved) and a time once known is never unset or moved,
so an older or repeated event never overwrites a newer state, whatever the order of arrival.

Per agency (the alert's lead agencies), for a circular's period up to its moment `as_of`:

- **fired:** alerts fired in the period (from its first day, 00:00 Asia/Shanghai, up to
  `as_of`);
- **acknowledged:** of those, the ones acknowledged by `as_of`;
- **median hours to acknowledge:** the median of (acknowledged − fired) over those, in hours
  on the wall clock (nights, weekends and holidays count), one decimal; none without one;
- **unacknowledged:** alerts still firing at `as_of` (neither acknowledged nor resolved),
  whenever they fired.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

FIRED, ACKNOWLEDGED, RESOLVED = "fired", "acknowledged", "resolved"
RANK = {FIRED: 0, ACKNOWLEDGED: 1, RESOLVED: 2}

ACK_RULE_TEXT = (
    "预警确认情况：“本期预警”为通报期内（自通报期首日0时起至统计时点）向该单位（牵头单位）"
    "发出的停滞预警数；“已确认”为其中截至统计时点已确认的数目；“确认时长中位数”为已确认预警"
    "自发出至确认所用时间的中位数，以小时计，按自然时间（含夜间、周末和节假日）计算；"
    "“未确认”为截至统计时点仍未确认且未解除的预警数（不限发出时间）。"
)
"""The acknowledgement rule as the document prints it."""


class AlertLife(Protocol):
    """An alert's lifecycle as progress keeps it (the row, or an event)."""

    state: str
    fired_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


@dataclass
class Life:
    """An alert's lifecycle as an event tells it."""

    state: str
    fired_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


@dataclass
class Merged:
    """An alert's lifecycle after merging an event into what was known."""

    state: str
    fired_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    changed: bool


def merge(known: AlertLife | None, event: AlertLife) -> Merged:
    """What is known of an alert once `event` is taken in: the furthest state, the times
    first learned kept (see the module docstring)."""
    if known is None:
        return Merged(event.state, event.fired_at, event.acknowledged_at, event.resolved_at, True)
    state = event.state if RANK[event.state] > RANK[known.state] else known.state
    acknowledged_at = known.acknowledged_at or event.acknowledged_at
    resolved_at = known.resolved_at or event.resolved_at
    changed = (state, acknowledged_at, resolved_at) != (
        known.state,
        known.acknowledged_at,
        known.resolved_at,
    )
    return Merged(state, known.fired_at, acknowledged_at, resolved_at, changed)


@dataclass(frozen=True)
class AlertFacts:
    """What the circular needs of one alert."""

    alert_id: uuid.UUID
    lead_agency_ids: frozenset[uuid.UUID]
    fired_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class AckFigures:
    """One agency's acknowledgement figures in a circular."""

    alerts_fired: int
    alerts_acknowledged: int
    median_ack_hours: float | None
    alerts_unacknowledged: int


NO_ALERTS = AckFigures(0, 0, None, 0)


def hours_to_acknowledge(fired_at: datetime, acknowledged_at: datetime) -> float:
    """Wall-clock hours from firing to acknowledgement (never negative)."""
    return max((acknowledged_at - fired_at).total_seconds(), 0.0) / 3600


def median_hours(durations: Sequence[float]) -> float | None:
    """The median of the hours, one decimal; None without any."""
    return round(statistics.median(durations), 1) if durations else None


def figures_of(
    agency_id: uuid.UUID, alerts: Iterable[AlertFacts], since: datetime, as_of: datetime
) -> AckFigures:
    """One agency's figures for the period from `since` to `as_of`."""
    fired, durations, unacknowledged = 0, [], 0
    for alert in alerts:
        if agency_id not in alert.lead_agency_ids or alert.fired_at > as_of:
            continue
        acknowledged = alert.acknowledged_at is not None and alert.acknowledged_at <= as_of
        resolved = alert.resolved_at is not None and alert.resolved_at <= as_of
        if not acknowledged and not resolved:
            unacknowledged += 1
        if alert.fired_at < since:
            continue
        fired += 1
        if acknowledged and alert.acknowledged_at is not None:
            durations.append(hours_to_acknowledge(alert.fired_at, alert.acknowledged_at))
    return AckFigures(fired, len(durations), median_hours(durations), unacknowledged)


def hours_words(hours: float | None) -> str:
    """Hours as the document prints them: 26.5 (— without any)."""
    return "—" if hours is None else f"{hours:.1f}"
