"""The in-process rate limiter: a fixed window per key, opened by the key's first event."""

from __future__ import annotations

import pytest

from trialwright.services.ratelimit import RateLimited, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_limit_holds_within_the_window_and_lifts_after_it() -> None:
    clock = Clock()
    limiter = RateLimiter(3, 60, "tries", clock=clock)
    for _ in range(3):
        limiter.take("a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after == 60
    limiter.take("b")  # another key has its own count
    clock.t += 45
    assert limiter.retry_after("a") == 15
    clock.t += 15
    limiter.take("a")  # a new window


def test_any_key_at_its_limit_refuses_and_zero_means_no_limit() -> None:
    clock = Clock()
    limiter = RateLimiter(1, 10, "tries", clock=clock)
    limiter.hit("address")
    assert limiter.retry_after("user", "address") == 10 and limiter.retry_after("user") is None
    unlimited = RateLimiter(0, 10, "tries", clock=clock)
    for _ in range(1000):
        unlimited.take("a")
