"""Per-caller rate limits: a token bucket per key, on the injected clock (per replica)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from duban_shared.clock import Clock


@dataclass
class _Bucket:
    tokens: float
    at: float  # clock seconds of the last refill


class RateLimiter:
    """Allows `rate` requests a second per key on average, and bursts of up to `burst`."""

    def __init__(self, clock: Clock, rate: float, burst: int, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, cost: int = 1) -> float:
        """Take `cost` tokens for `key` (at most the burst): 0.0 if allowed, else the seconds
        until they are available."""
        need = float(min(cost, self._burst))
        now = self._clock.now().timestamp()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.clear()  # a flood of keys: start over rather than grow forever
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens >= need:
            bucket.tokens -= need
            return 0.0
        return (need - bucket.tokens) / self._rate


def retry_after_header(seconds: float) -> dict[str, str]:
    """A Retry-After header in whole seconds (at least 1)."""
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
