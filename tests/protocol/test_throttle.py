"""Wrong PINs back off exponentially per source, and per receiver across sources."""

from __future__ import annotations

import pytest

from coalesce_receiver.services.throttle import PinThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_three_free_failures_then_exponential_back_off() -> None:
    clock = Clock()
    t = PinThrottle(free_failures=3, base_delay=2.0, clock=clock)
    assert t.failure("10.0.0.1") == 0
    assert t.failure("10.0.0.1") == 0
    assert t.failure("10.0.0.1") == 2.0
    assert t.retry_after("10.0.0.1") == 2.0
    assert t.retry_after("10.0.0.2") == 0  # another source is not punished
    clock.now += 2.0
    assert t.retry_after("10.0.0.1") == 0
    assert t.failure("10.0.0.1") == 4.0
    assert t.failure("10.0.0.1") == 8.0


def test_success_clears_the_source() -> None:
    clock = Clock()
    t = PinThrottle(free_failures=1, clock=clock)
    t.failure("a")
    assert t.retry_after("a") > 0
    t.success("a")
    assert t.retry_after("a") == 0


def test_guessing_from_many_sources_is_throttled_per_receiver() -> None:
    clock = Clock()
    t = PinThrottle(free_failures=3, global_free_failures=5, base_delay=1.0, clock=clock)
    for i in range(5):
        t.failure(f"10.0.0.{i}")
    assert t.retry_after("10.0.0.99") == 1.0


def test_delay_is_capped_and_records_expire() -> None:
    clock = Clock()
    t = PinThrottle(free_failures=1, base_delay=1.0, max_delay=10.0, forget_after=60.0, clock=clock)
    for _ in range(20):
        t.failure("a")
    assert t.retry_after("a") == 10.0
    clock.now += 61
    assert t.retry_after("a") == 0


def test_ten_thousand_failures_still_throttle_at_the_cap() -> None:
    now = [0.0]
    throttle = PinThrottle(free_failures=3, base_delay=2.0, max_delay=300.0, clock=lambda: now[0])
    for _ in range(10_000):  # 2 ** 9997 would not fit a float: the doubling must stop before that
        wait = throttle.failure("10.0.0.9")
    assert wait == pytest.approx(300.0)
    now[0] += 301
    assert throttle.retry_after("10.0.0.9") == 0.0
    throttle.success("10.0.0.9")
    assert throttle.retry_after("10.0.0.9") == 0.0
