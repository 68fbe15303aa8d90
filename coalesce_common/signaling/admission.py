"""Who may hold a connection to a signaling server: limits per source and in total, strangers shed first.

Pure bookkeeping, no sockets. The server asks :meth:`Admission.admit` as it accepts each connection, before
the TLS handshake, so that a refused one costs neither a handshake nor the ~300 kB a TLS connection holds;
it marks a connection paired once its peer has proved the PIN, and releases it when it closes. At the total
limit the oldest connection that has not paired is closed to admit the newcomer, as OpenSSH's
``MaxStartups`` drops unauthenticated sessions: a paired share is never closed to admit a stranger, and a
stranger holding idle connections cannot lock the room. Out of file descriptors, the server lowers the total
limit below what the system allows (:meth:`Admission.out_of_descriptors`) instead of failing every accept.
"""

from __future__ import annotations

import enum
import itertools
from collections import Counter
from dataclasses import dataclass

DEFAULT_PER_SOURCE = 8
"""A laptop opens one connection per share; 8 leaves room for retries and a few shares behind one NAT."""
DEFAULT_TOTAL = 64
RESERVED_DESCRIPTORS = 64
"""Descriptors a receiver needs besides its signaling connections: shares' media sockets (a handful per
share, at most four shares), its stats and snapshot files, logs, mDNS. An idle receiver holds about 10."""
HEADROOM = 16
"""Descriptors kept free once the system has refused one, for media sockets and the stats file."""


def total_for_descriptors(open_files: int) -> int:
    """The default total limit for a process allowed ``open_files`` descriptors: one per connection."""
    return max(1, min(DEFAULT_TOTAL, open_files - RESERVED_DESCRIPTORS))


@dataclass(frozen=True)
class ConnectionLimits:
    per_source: int = DEFAULT_PER_SOURCE
    total: int = DEFAULT_TOTAL

    def __post_init__(self) -> None:
        if self.per_source < 1 or self.total < 1:
            raise ValueError(f"connection limits must be at least 1, got {self}")


class Refusal(enum.Enum):
    PER_SOURCE = "per-source"
    """The source already holds ``per_source`` connections."""
    FULL = "full"
    """The server holds ``total`` connections and every one of them is paired."""


class Ticket:
    """One admitted connection; hashable by identity."""

    __slots__ = ("paired", "serial", "source")

    def __init__(self, source: str, serial: int) -> None:
        self.source = source
        self.serial = serial
        self.paired = False

    def __repr__(self) -> str:
        return f"<Ticket #{self.serial} {self.source}{' paired' if self.paired else ''}>"


@dataclass(frozen=True)
class Admitted:
    ticket: Ticket
    shed: Ticket | None = None
    """An unpaired connection to close now, to make room (the oldest one)."""


class Admission:
    """Counts open connections per source and in total, and decides who gets in."""

    def __init__(self, limits: ConnectionLimits | None = None) -> None:
        self.limits = limits or ConnectionLimits()
        self._ceiling = self.limits.total
        self._open: dict[Ticket, None] = {}  # insertion order: oldest first
        self._per_source: Counter[str] = Counter()
        self._serials = itertools.count(1)

    @property
    def total(self) -> int:
        """The total limit in force: the configured one, or lower once descriptors ran out."""
        return self._ceiling

    @property
    def open(self) -> int:
        return len(self._open)

    def count(self, source: str) -> int:
        return self._per_source[source]

    def admit(self, source: str) -> Admitted | Refusal:
        if self._per_source[source] >= self.limits.per_source:
            return Refusal.PER_SOURCE
        shed = None
        if len(self._open) >= self._ceiling:
            shed = self._oldest_unpaired()
            if shed is None:
                return Refusal.FULL
            self.release(shed)
        ticket = Ticket(source, next(self._serials))
        self._open[ticket] = None
        self._per_source[source] += 1
        return Admitted(ticket, shed)

    def mark_paired(self, ticket: Ticket) -> None:
        """The peer proved it may share: never shed this connection to admit another."""
        ticket.paired = True

    def release(self, ticket: Ticket) -> None:
        """The connection closed (or is being shed); releasing twice does nothing."""
        if ticket not in self._open:
            return
        del self._open[ticket]
        self._per_source[ticket.source] -= 1
        if not self._per_source[ticket.source]:
            del self._per_source[ticket.source]

    def out_of_descriptors(self) -> list[Ticket]:
        """The system refused a descriptor: lower the total limit to leave :data:`HEADROOM` free.

        Returns the unpaired connections to close now (oldest first) to get under the new limit; they are
        released already.
        """
        self._ceiling = max(1, min(self._ceiling, len(self._open) - HEADROOM))
        shed: list[Ticket] = []
        while len(self._open) > self._ceiling and (oldest := self._oldest_unpaired()) is not None:
            self.release(oldest)
            shed.append(oldest)
        return shed

    def _oldest_unpaired(self) -> Ticket | None:
        return next((ticket for ticket in self._open if not ticket.paired), None)
