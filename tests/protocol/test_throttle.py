"""Throttles stop whoever guesses or floods, never the room (injected clocks: nothing here waits).

Wrong PINs back off per source; across sources only sources that have failed wait for the receiver-wide
allowance, so that the total guess rate stays below one per second however many addresses guess. Hellos are
counted per source, and the receiver-wide ceiling sheds only sources above their own rate.
"""

from __future__ import annotations

import heapq

import pytest

from coalesce_common.throttle import BackoffPolicy, TokenBucket, source_key
from coalesce_receiver.services.throttle import HelloThrottle, PinThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the shared pieces ---------------------------------------------------------------------------------


def test_sources_are_keyed_by_ipv4_address_ipv6_slash_64_or_as_given() -> None:
    assert source_key("10.0.0.1") == "10.0.0.1"
    assert source_key("::ffff:10.0.0.1") == "10.0.0.1"  # a dual-stack socket's view of an IPv4 peer
    assert source_key("2001:db8:1:2::1") == source_key("2001:db8:1:2:abcd::9") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("fe80::1%eth0") == "fe80::/64"
    assert source_key("box-7@cloud.example") == "box-7@cloud.example"  # a device through the cloud


def test_backoff_doubles_from_the_free_failures_to_the_cap_and_forgets() -> None:
    policy = BackoffPolicy(free_failures=2, base_delay=1.0, max_delay=8.0, forget_after=60.0)
    assert [policy.delay(n) for n in range(7)] == [0, 0, 1, 2, 4, 8, 8]
    assert policy.delay(10**9) == 8.0  # no OverflowError, however many failures
    assert policy.retry_after(4, idle=1.5) == 2.5
    assert policy.retry_after(4, idle=61) == 0.0
    assert policy.is_stale(61) and not policy.is_stale(59)


def test_a_token_bucket_refills_takes_and_runs_into_bounded_debt() -> None:
    bucket = TokenBucket.full(2, 0.5, now=0.0, floor=-3)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.wait(0.0) == 2.0
    assert bucket.take(2.0)
    for _ in range(10):
        bucket.charge(2.0)
    assert bucket.level(2.0) == -3  # the debt stops at the floor
    assert bucket.wait(2.0) == 8.0
    assert bucket.is_full(100.0)
    assert bucket.level(50.0) == 2  # a clock that goes back refills nothing and takes nothing


# -- wrong PINs ------------------------------------------------------------------------------------------


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


def test_a_source_that_never_failed_is_never_refused_while_a_thousand_others_guess() -> None:
    clock = Clock()
    t = PinThrottle(clock=clock)
    for round_ in range(20):
        for i in range(1000):
            source = f"10.{i // 250}.{i % 250}.{round_ % 3}"
            if t.retry_after(source) == 0:
                t.failure(source)
        assert t.retry_after("10.9.9.9") == 0, "a clean source may always try"
        clock.now += 1.0
    assert t.retry_after("10.0.0.0") > 0, "the guessers wait for the receiver-wide allowance"


def test_failed_sources_share_the_receiver_wide_allowance() -> None:
    clock = Clock()
    t = PinThrottle(free_failures=3, global_burst=5, global_rate=0.5, global_debt=0, clock=clock)
    for i in range(5):
        t.failure(f"10.0.0.{i}")  # each below its own free failures
    assert t.retry_after("10.0.0.0") == 2.0  # the allowance is spent: a token every 2 s
    assert t.retry_after("10.0.0.99") == 0.0  # a clean source is not held back by the others
    clock.now += 2.0
    assert t.retry_after("10.0.0.1") == 0.0


def test_a_clean_sources_first_guess_is_paid_for_by_the_suspects() -> None:
    clock = Clock()
    t = PinThrottle(global_burst=2, global_rate=1.0, global_debt=5, clock=clock)
    for i in range(10):  # fresh addresses: never refused, but each guess spends the allowance
        assert t.retry_after(f"10.0.1.{i}") == 0.0
        t.failure(f"10.0.1.{i}")
    assert t.retry_after("10.0.1.0") == 6.0  # in debt down to the floor: 6 tokens short of one
    clock.now += 6.0
    assert t.retry_after("10.0.1.0") == 0.0


@pytest.mark.parametrize("addresses", [50, 254])
def test_the_total_guess_rate_stays_below_one_per_second(addresses: int) -> None:
    """Guessers on ``addresses`` addresses (254: a whole /24) try again the instant they may, for an hour.

    Trying sooner would change nothing: a refused attempt counts for nothing.
    """
    clock = Clock()
    t = PinThrottle(clock=clock)
    start, window = clock.now, 3600.0
    wake = [(start, f"10.0.0.{i}") for i in range(addresses)]
    guesses = clean_refused = 0
    while wake[0][0] < start + window:
        clock.now, source = heapq.heappop(wake)
        if (wait := t.retry_after(source)) > 0:
            heapq.heappush(wake, (clock.now + max(wait, 0.01), source))
            continue
        t.failure(source)
        guesses += 1
        heapq.heappush(wake, (clock.now, source))
        clean_refused += t.retry_after(f"192.168.0.{guesses % 250}") > 0
    assert guesses / window < 1.0, f"{guesses} guesses in an hour"
    assert guesses <= 10 + 30 + 0.25 * window + addresses  # burst, debt, refill, each address's first
    assert guesses > 0.9 * 0.25 * window, "the allowance is there for those who failed"
    assert clean_refused == 0


def test_the_delay_is_capped_and_records_expire() -> None:
    clock = Clock()
    t = PinThrottle(
        free_failures=1, base_delay=1.0, max_delay=10.0, forget_after=60.0, global_burst=100, clock=clock
    )
    for _ in range(20):
        t.failure("a")
    assert t.retry_after("a") == 10.0
    clock.now += 61
    assert t.retry_after("a") == 0
    assert t.failure("a") == 1.0  # the count started over


def test_ten_thousand_failures_still_throttle_at_the_cap() -> None:
    now = [0.0]
    throttle = PinThrottle(free_failures=3, base_delay=2.0, max_delay=300.0, clock=lambda: now[0])
    for _ in range(10_000):  # 2 ** 9997 would not fit a float: the doubling must stop before that
        wait = throttle.failure("10.0.0.9")
    assert wait == pytest.approx(300.0)
    now[0] += 301
    assert throttle.retry_after("10.0.0.9") == 0.0
    assert throttle.failure("10.0.0.9") == pytest.approx(300.0)  # the count still answers, at the cap
    throttle.success("10.0.0.9")
    assert throttle.retry_after("10.0.0.9") == 0.0


def test_a_failed_source_is_remembered_for_a_day_and_memory_is_bounded() -> None:
    clock = Clock()
    t = PinThrottle(global_burst=1, global_rate=0.0001, global_debt=0, max_sources=100, clock=clock)
    t.failure("10.0.0.1")
    clock.now += 3600
    assert t.retry_after("10.0.0.1") > 0, "its back-off is forgotten, but it still waits for the allowance"
    clock.now += 86_400
    assert t.retry_after("10.0.0.1") == 0
    assert t.sources == 0
    for i in range(1000):
        t.failure(f"10.0.{i // 250}.{i % 250}")
    assert t.sources <= 100


def test_ipv6_guessers_count_by_slash_64() -> None:
    clock = Clock()
    t = PinThrottle(free_failures=3, base_delay=2.0, global_burst=100, clock=clock)
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::3:4"):  # privacy addresses of one host
        t.failure(host)
    assert t.retry_after("2001:db8::99") == 2.0
    assert t.retry_after("2001:db8:0:1::1") == 0.0  # the next /64 is someone else
    t.failure("::ffff:192.0.2.7")
    t.failure("192.0.2.7")
    assert t.failure("::ffff:192.0.2.7") == 2.0


# -- hellos --------------------------------------------------------------------------------------------


def test_hellos_are_counted_per_source() -> None:
    clock = Clock()
    t = HelloThrottle(burst=5, rate=1.0, clock=clock)
    assert [t.admit("10.0.0.1") for _ in range(5)] == [0.0] * 5
    assert t.admit("10.0.0.1") == pytest.approx(1.0)
    assert t.admit("10.0.0.2") == 0.0  # another source is not refused
    clock.now += 1.0
    assert t.admit("10.0.0.1") == 0.0
    assert t.admit("10.0.0.1") == pytest.approx(1.0)
    assert t.admit("::ffff:10.0.0.1") == pytest.approx(1.0)  # the same host, however it is written


def test_the_receiver_wide_ceiling_sheds_only_sources_above_their_rate() -> None:
    clock = Clock()
    t = HelloThrottle(burst=8, rate=1.0, global_burst=10, global_rate=5.0, clock=clock)
    admitted = 0
    for step in range(200):  # 20 seconds of 50 flooding sources, ten hellos a second each
        admitted += sum(t.admit(f"10.0.0.{i}") == 0 for i in range(50))
        if step % 20 == 0:
            assert t.admit("10.0.1.1") == 0.0, "a sender sharing now and then always gets through"
        clock.now += 0.1
    # the ceiling's burst and rate, plus each source's first hellos while it held half its burst or more
    assert admitted <= 10 + 5.0 * 20 + 50 * 5, admitted
    assert admitted < 200 * 50 * 0.05


def test_hello_memory_is_bounded_and_idle_sources_are_dropped() -> None:
    clock = Clock()
    t = HelloThrottle(burst=2, rate=1.0, max_sources=100, clock=clock)
    for i in range(1000):
        t.admit(f"10.0.{i // 250}.{i % 250}")
    assert t.sources <= 100
    clock.now += 10
    t.admit("10.9.9.9")
    assert t.sources == 1
