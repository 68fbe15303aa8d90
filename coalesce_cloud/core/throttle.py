"""Back-off for failed attempts (wrong enrollment codes per client address, unknown meeting ids per
device). The policy is pure; the counts live in the database (``crud.throttle_*``) so that every API
replica sees the same ones.

After ``free_failures`` failures, each further attempt must wait ``base_delay`` * 2^(failures - free)
seconds from the last failure, capped at ``max_delay``. A record idle for ``forget_after`` seconds
starts over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class BackoffPolicy:
    free_failures: int
    base_delay: float
    max_delay: float
    forget_after: float

    def retry_after(self, failures: int, last_failure: datetime, now: datetime) -> float:
        """Seconds still to wait after ``failures`` failures, the last at ``last_failure`` (0: go ahead)."""
        idle = (now - last_failure).total_seconds()
        if idle > self.forget_after or failures < self.free_failures:
            return 0.0
        delay = min(self.max_delay, self.base_delay * 2.0 ** min(failures - self.free_failures, 32))
        return max(0.0, delay - idle)

    def is_stale(self, last_failure: datetime, now: datetime) -> bool:
        return (now - last_failure).total_seconds() > self.forget_after
