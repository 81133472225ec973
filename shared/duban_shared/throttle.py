"""Growing delays after failed logins, per client id and per source address.

Guessing a client secret costs the registry an argon2 check per attempt (64 MiB, tens of
milliseconds): without a limit, a caller could try hundreds a minute and keep a CPU busy. The
token endpoint and the board's login ask `LoginThrottle.wait` before they check anything: a key
(`client:<id>`, `address:<ip>`) with more than `free_failures` recent failures must wait
`first_delay` seconds after its latest failure, doubled with each further failure up to
`max_delay`; an attempt inside the wait is refused at once (429 too_many_attempts with
Retry-After), before any hashing. A key's failures are forgotten `forget_after` seconds after
its last one, and a success forgets the client's (not the address's: one good client must not
open the way to guessing the others from the same address).

Per process and on the injected clock (tests move it); each API process keeps its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from duban_shared.clock import Clock


@dataclass
class _Failures:
    count: int
    last: float  # clock seconds of the latest failure
    until: float  # no attempt before this


class LoginThrottle:
    """Failed attempts per key, and how long the next attempt must wait."""

    def __init__(
        self,
        clock: Clock,
        *,
        free_failures: int = 5,
        first_delay: float = 1.0,
        max_delay: float = 300.0,
        forget_after: float = 900.0,
        max_keys: int = 100_000,
    ) -> None:
        if free_failures < 0 or first_delay <= 0 or max_delay < first_delay or forget_after <= 0:
            raise ValueError("free_failures >= 0, 0 < first_delay <= max_delay, forget_after > 0")
        self._clock = clock
        self._free = free_failures
        self._first = first_delay
        self._max = max_delay
        self._forget = forget_after
        self._max_keys = max_keys
        self._keys: dict[str, _Failures] = {}

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _current(self, key: str, now: float) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is not None and now - entry.last >= max(self._forget, entry.until - entry.last):
            del self._keys[key]
            return None
        return entry

    def wait(self, *keys: str) -> float:
        """Seconds until an attempt with all these keys is allowed; 0.0 when it is now."""
        now = self._now()
        waits = [entry.until - now for k in keys if (entry := self._current(k, now)) is not None]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        """Count a failed attempt against each key."""
        now = self._now()
        if len(self._keys) >= self._max_keys:
            self._keys = {k: e for k, e in self._keys.items() if self._current(k, now)}
            if len(self._keys) >= self._max_keys:  # a flood of keys: start over, don't grow
                self._keys.clear()
        for key in keys:
            entry = self._current(key, now) or _Failures(0, now, now)
            entry.count += 1
            entry.last = now
            over = entry.count - self._free
            if over > 0:
                entry.until = now + min(self._max, self._first * 2 ** min(over - 1, 60))
            self._keys[key] = entry

    def succeeded(self, key: str) -> None:
        """Forget a key's failures (the client's, after a good secret)."""
        self._keys.pop(key, None)


def client_key(client_id: str) -> str:
    """The throttle key of a client id (cut short: ids are at most 64 characters)."""
    return "client:" + client_id[:80]


def address_key(address: str | None) -> str:
    """The throttle key of a source address."""
    return "address:" + (address or "unknown")
