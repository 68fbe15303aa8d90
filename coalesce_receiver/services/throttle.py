"""The receiver's throttles on pairing: hellos per source, and wrong PINs per source and per receiver.

They stop whoever guesses or floods, never the room: a source that has not failed is never made to wait
because others guess, and a source within its own hello rate is never shed because others flood.

**Wrong PINs** (:class:`PinThrottle`). Per source, as a plain back-off: ``free_failures`` wrong PINs, then
each further attempt waits ``base_delay`` doubling up to ``max_delay``; idle for ``forget_after`` seconds,
the count starts over. Across sources, one bucket of ``global_burst`` tokens refilled at ``global_rate`` per
second: every wrong PIN spends a token, and a source that has failed within ``remember_failed`` seconds
(a *suspect*) may only try again while a token is there. A source that has never failed (a *clean* one) is
never refused: its wrong PIN still spends a token, into debt down to ``-global_debt`` if need be, so that
first guesses from fresh addresses are paid for by the suspects. A right PIN makes its source clean again.

The bound: over any window of W seconds the receiver hears at most ``global_burst + global_debt +
global_rate·W`` wrong PINs, plus the first guesses of fresh sources while the bucket is at its floor; each
source key guesses once as a clean source per ``remember_failed`` (IPv6 counts by /64, so an attacker on
a LAN has about one key per IPv4 address it can take). With the defaults (0.25 tokens/s, 24 h memory) that is
0.25 + N/86,400 guesses per second for N addresses: 0.253/s for a whole /24 of 254 addresses, well below
one per second. A 4-digit PIN (10,000 values, found on average after 5,000 guesses) then takes on average
5,000 / 0.25 = 20,000 s, about 5.6 hours of guessing at full speed; a 6-digit PIN about 23 days. An attacker
with more source keys than ``max_sources`` can recycle them faster, which only the receiver's limits on
connections bound; the memory stays bounded either way.

**Hellos** (:class:`HelloThrottle`). Each hello costs a SPAKE2 start (or, in an open room, a peer
connection), so hellos are counted before any such work: per source a bucket of ``burst`` hellos refilled at
``rate`` per second, and a receiver-wide ceiling of ``global_rate`` per second (``global_burst`` at once) that
sheds only sources that have spent more than half their own burst: a sender that shares now and then always
gets through, however many others flood.

Sources are keyed by :func:`coalesce_common.throttle.source_key`. Memory is bounded: at most ``max_sources``
records each, the least recently used forgotten first. The clock is injectable so tests need not wait.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from coalesce_common.throttle import BackoffPolicy, TokenBucket, source_key

MAX_SOURCES = 16_384
"""Records kept per throttle: a /18 of attackers, about 2 MB."""


@dataclass
class _Record:
    failures: int
    last_failure: float


class PinThrottle:
    """Wrong PINs: a back-off per source, and a receiver-wide allowance that only failed sources wait for."""

    def __init__(
        self,
        *,
        free_failures: int = 3,
        base_delay: float = 2.0,
        max_delay: float = 300.0,
        forget_after: float = 900.0,
        global_burst: int = 10,
        global_rate: float = 0.25,
        global_debt: int = 30,
        remember_failed: float = 86_400.0,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backoff = BackoffPolicy(free_failures, base_delay, max_delay, forget_after)
        self._remember = max(remember_failed, forget_after)
        self._max_sources = max_sources
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()  # the least recently failed first
        self._allowance = TokenBucket.full(global_burst, global_rate, clock(), floor=-global_debt)

    def retry_after(self, source: str) -> float:
        """Seconds ``source`` must still wait before its next attempt (0 when it may try now)."""
        now = self._clock()
        self._forget(now)
        record = self._records.get(source_key(source))
        if record is None:
            return 0.0  # a clean source is never made to wait, whatever others do
        own = self._backoff.retry_after(record.failures, now - record.last_failure)
        return max(own, self._allowance.wait(now))

    def failure(self, source: str) -> float:
        """Record a wrong PIN from ``source``; return the wait now imposed on it."""
        now = self._clock()
        key = source_key(source)
        record = self._records.pop(key, None) or _Record(failures=0, last_failure=now)
        if self._backoff.is_stale(now - record.last_failure):
            record.failures = 0
        record.failures += 1
        record.last_failure = now
        self._records[key] = record
        self._allowance.charge(now)
        return self.retry_after(source)

    def success(self, source: str) -> None:
        """The right PIN: ``source`` is clean again."""
        self._records.pop(source_key(source), None)

    @property
    def sources(self) -> int:
        """How many sources it remembers as having failed."""
        return len(self._records)

    def _forget(self, now: float) -> None:
        records = self._records
        while records and (
            len(records) > self._max_sources
            or now - next(iter(records.values())).last_failure > self._remember
        ):
            records.popitem(last=False)


class HelloThrottle:
    """Hellos: a bucket per source, and a receiver-wide ceiling that sheds only sources above their rate."""

    def __init__(
        self,
        *,
        burst: int = 8,
        rate: float = 1.0,
        global_burst: int = 40,
        global_rate: float = 20.0,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._rate = rate
        self._max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # the least recently heard first
        self._ceiling = TokenBucket.full(global_burst, global_rate, clock())

    def admit(self, source: str) -> float:
        """Count a hello from ``source``: 0 when it may go on, else the seconds it must wait first."""
        now = self._clock()
        self._forget(now)
        key = source_key(source)
        bucket = self._buckets.pop(key, None) or TokenBucket.full(self._burst, self._rate, now)
        self._buckets[key] = bucket
        within_its_rate = bucket.level(now) >= self._burst / 2
        if not bucket.take(now):
            return bucket.wait(now)
        if self._ceiling.take(now) or within_its_rate:
            return 0.0
        return self._ceiling.wait(now)

    @property
    def sources(self) -> int:
        """How many sources it keeps a bucket for."""
        return len(self._buckets)

    def _forget(self, now: float) -> None:
        """Drop full buckets (a source idle long enough is as good as new) and the oldest beyond the cap."""
        buckets = self._buckets
        while buckets and (len(buckets) >= self._max_sources or next(iter(buckets.values())).is_full(now)):
            buckets.popitem(last=False)
