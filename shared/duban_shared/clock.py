"""The clock is a parameter: services read time only through a Clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """Return the current time in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; tests inject it to move time."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward and return the new time."""
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to an aware moment."""
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = moment.astimezone(UTC)


class ScaledClock:
    """Simulated time: `start + (wall - epoch) * rate`, optionally stopping at `end`.

    Every process of a stack built with the same start, rate and epoch (a wall moment, so that
    they agree) tells the same simulated time. Only domain time runs on it (see `domain_span`);
    what is about real seconds (tokens, leases, timeouts, polling) stays on the wall clock.
    """

    def __init__(
        self,
        start: datetime,
        rate: float,
        epoch: datetime,
        *,
        wall: Clock | None = None,
        end: datetime | None = None,
    ) -> None:
        if start.tzinfo is None or epoch.tzinfo is None or (end and end.tzinfo is None):
            raise ValueError("ScaledClock needs aware datetimes")
        if not rate > 0:
            raise ValueError(f"ScaledClock needs a rate above 0, not {rate}")
        if end is not None and end <= start:
            raise ValueError("ScaledClock's end must come after its start")
        self.start = start.astimezone(UTC)
        self.rate = rate
        self.epoch = epoch.astimezone(UTC)
        self.end = end.astimezone(UTC) if end else None
        self.wall = wall or SystemClock()

    def now(self) -> datetime:
        """The simulated moment of the wall clock's now (held at `end` once it is reached)."""
        moment = self.start + (self.wall.now() - self.epoch) * self.rate
        return min(moment, self.end) if self.end is not None else moment


def domain_span(clock: Clock, wall: timedelta) -> timedelta:
    """How much of `clock`'s time passes during `wall` of real time.

    For deadlines that are about real seconds (a claim's lease, a retry's backoff, a rate
    limit's wait) but are stored next to domain times and compared with the domain clock.
    """
    return wall * clock.rate if isinstance(clock, ScaledClock) else wall
