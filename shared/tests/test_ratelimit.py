"""Token buckets per key on an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from duban_shared.clock import ManualClock
from duban_shared.ratelimit import RateLimiter, retry_after_header

START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")


def test_a_burst_is_allowed_then_refused_until_tokens_refill() -> None:
    clock = ManualClock(START)
    limiter = RateLimiter(clock, rate=2, burst=3)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.advance(timedelta(seconds=0.5))
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.advance(timedelta(seconds=10))  # refills only up to the burst
    assert [limiter.acquire("a") for _ in range(4)][-1] == pytest.approx(0.5)


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(ManualClock(START), rate=1, burst=1)
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0


def test_retry_after_is_whole_seconds_and_bad_limits_are_refused() -> None:
    assert retry_after_header(0.2) == {"Retry-After": "1"}
    assert retry_after_header(2.01) == {"Retry-After": "3"}
    with pytest.raises(ValueError):
        RateLimiter(ManualClock(START), rate=0, burst=1)
