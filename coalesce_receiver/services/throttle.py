"""Throttling of wrong PINs, per source address and per receiver.

After ``free_failures`` wrong PINs from one source, each further attempt must wait ``base_delay`` *
2^(extra failures) seconds (capped at ``max_delay``). The whole receiver has its own, larger allowance,
so that guessing from many addresses is slowed too. A correct PIN clears its source's record; records
idle for ``forget_after`` seconds are dropped. The clock is injectable so tests need not wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

GLOBAL_KEY = "*"
_MAX_DOUBLINGS = 64


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0


class PinThrottle:
    def __init__(
        self,
        *,
        free_failures: int = 3,
        global_free_failures: int = 20,
        base_delay: float = 2.0,
        max_delay: float = 300.0,
        forget_after: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = free_failures
        self._global_free = global_free_failures
        self._base = base_delay
        self._max = max_delay
        self._forget_after = forget_after
        self._clock = clock
        self._records: dict[str, _Record] = {}

    def retry_after(self, source: str) -> float:
        """Seconds ``source`` must still wait before its next attempt (0 when it may try now)."""
        now = self._clock()
        self._expire(now)
        return max(self._wait(source, self._free, now), self._wait(GLOBAL_KEY, self._global_free, now))

    def failure(self, source: str) -> float:
        """Record a wrong PIN from ``source``; return the wait now imposed on it."""
        now = self._clock()
        for key in (source, GLOBAL_KEY):
            record = self._records.setdefault(key, _Record())
            record.failures += 1
            record.last_failure = now
        return self.retry_after(source)

    def success(self, source: str) -> None:
        self._records.pop(source, None)

    def _wait(self, key: str, free: int, now: float) -> float:
        record = self._records.get(key)
        if record is None or record.failures < free:
            return 0.0
        doublings = min(record.failures - free, _MAX_DOUBLINGS)  # 2.0**n overflows past n = 1023
        delay = min(self._max, self._base * 2.0**doublings)
        return max(0.0, record.last_failure + delay - now)

    def _expire(self, now: float) -> None:
        stale = [k for k, r in self._records.items() if now - r.last_failure > self._forget_after]
        for key in stale:
            del self._records[key]
