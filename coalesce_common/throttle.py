"""The pieces every throttle in Coalesce is built from: exponential back-off after failures, token buckets,
and the unit a throttle counts (a source key).

Pure: nothing here reads a clock (callers pass ``now`` or the idle time) or does IO, so the receiver, which
keeps its counts in memory, and the cloud, which keeps them in its database for every API replica, share one
policy and tests need no waiting.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

_MAX_DOUBLINGS = 64
"""Doublings stop here: any sane ``max_delay`` is reached long before; 2.0 ** n overflows past n = 1023."""

IPV6_PREFIX = 64
"""IPv6 sources are counted by their /64: one host picks privacy addresses anywhere in its /64 at will."""


def source_key(peer: str) -> str:
    """The unit a throttle counts for ``peer`` (an IP address, or an XMPP address through the cloud).

    An IPv4-mapped IPv6 address counts as its IPv4 address and any other IPv6 address by its /64, so that
    neither a dual-stack socket nor a fresh privacy address gives a guesser a fresh allowance. Anything that
    is not an IP address is its own key.
    """
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        network = int(address) >> (128 - IPV6_PREFIX) << (128 - IPV6_PREFIX)
        return str(ipaddress.IPv6Network((network, IPV6_PREFIX)))
    return str(address)


@dataclass(frozen=True)
class BackoffPolicy:
    """After ``free_failures`` failures, each further attempt waits ``base_delay`` * 2^(failures - free)
    seconds from the last failure, capped at ``max_delay``; a record idle for ``forget_after`` seconds starts
    over."""

    free_failures: int
    base_delay: float
    max_delay: float
    forget_after: float

    def delay(self, failures: int) -> float:
        """The wait imposed after ``failures`` failures, counted from the last one."""
        if failures < self.free_failures:
            return 0.0
        doublings = min(failures - self.free_failures, _MAX_DOUBLINGS)
        return min(self.max_delay, self.base_delay * 2.0**doublings)

    def retry_after(self, failures: int, idle: float) -> float:
        """Seconds still to wait after ``failures`` failures, the last ``idle`` seconds ago (0: go ahead)."""
        if self.is_stale(idle):
            return 0.0
        return max(0.0, self.delay(failures) - idle)

    def is_stale(self, idle: float) -> bool:
        """Whether a record idle for ``idle`` seconds is forgotten (its next failure counts as the first)."""
        return idle > self.forget_after


@dataclass
class TokenBucket:
    """Up to ``capacity`` tokens, refilled at ``rate`` per second from the moment ``updated``.

    :meth:`take` spends a token only if there is one; :meth:`charge` spends one regardless, running into debt
    down to ``floor`` (≤ 0), for events that must be counted but may not be refused.
    """

    capacity: float
    rate: float
    tokens: float
    updated: float
    floor: float = 0.0

    @classmethod
    def full(cls, capacity: float, rate: float, now: float, *, floor: float = 0.0) -> TokenBucket:
        return cls(capacity=capacity, rate=rate, tokens=capacity, updated=now, floor=floor)

    def level(self, now: float) -> float:
        """The tokens held at ``now`` (refilling first; a clock that went back refills nothing)."""
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        return self.tokens

    def take(self, now: float) -> bool:
        """Spend one token if there is one; tell whether it was spent."""
        if self.level(now) < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def charge(self, now: float) -> None:
        """Spend one token, into debt if need be (never below ``floor``)."""
        self.tokens = max(self.floor, self.level(now) - 1.0)

    def wait(self, now: float) -> float:
        """Seconds until a token is there to take (0: now)."""
        return max(0.0, (1.0 - self.level(now)) / self.rate)

    def is_full(self, now: float) -> bool:
        return self.level(now) >= self.capacity
