"""Who may hold a connection to a signaling server: limits per source and in total, strangers shed first.

Pure bookkeeping, no sockets. The server asks :meth:`Admission.admit` as it accepts each connection, before
the TLS handshake, so that a refused one costs neither a handshake nor the ~300 kB a TLS connection holds;
it marks a connection paired once its peer has proved the PIN, and releases it when it closes. At the total
limit the oldest connection that has not paired (of the source holding the most) is closed to admit the
newcomer (OpenSSH's ``MaxStartups`` likewise bites on unauthenticated connections only): a paired share is
never closed to admit a stranger, and strangers holding idle connections cannot lock the room. Out of file
descriptors, the server lowers the total limit below what the system allows
(:meth:`Admission.out_of_descriptors`) instead of failing every accept.
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
MAX_CLOSING = 8
"""Shed connections that may be closing at once (each still holds a descriptor); fewer than HEADROOM."""


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
    """The server holds ``total`` connections and can shed none now: all are paired, or enough are closing."""


class Ticket:
    """One admitted connection; hashable by identity."""

    __slots__ = ("closing", "paired", "serial", "source")

    def __init__(self, source: str, serial: int) -> None:
        self.source = source
        self.serial = serial
        self.paired = False
        self.closing = False  # shed, but still holding its descriptor until its transport has closed

    def __repr__(self) -> str:
        state = " paired" if self.paired else " closing" if self.closing else ""
        return f"<Ticket #{self.serial} {self.source}{state}>"


@dataclass(frozen=True)
class Admitted:
    ticket: Ticket
    shed: Ticket | None = None
    """An unpaired connection to close now, to make room (the oldest one)."""


class Admission:
    """Counts open connections per source and in total, and decides who gets in.

    A shed connection counts until it has closed (:meth:`release`), since it holds its descriptor and its
    buffers until then; at most :data:`MAX_CLOSING` may be closing at once, so that a burst of newcomers
    at the limit is refused instead of each one being let in by shedding another.
    """

    def __init__(self, limits: ConnectionLimits | None = None) -> None:
        self.limits = limits or ConnectionLimits()
        self._ceiling = self.limits.total
        self._open: dict[Ticket, None] = {}  # insertion order: oldest first
        self._closing = 0
        self._per_source: Counter[str] = Counter()
        self._serials = itertools.count(1)

    @property
    def total(self) -> int:
        """The total limit in force: the configured one, or lower once descriptors ran out."""
        return self._ceiling

    @property
    def open(self) -> int:
        """Connections holding a descriptor, those being shed included."""
        return len(self._open)

    def count(self, source: str) -> int:
        return self._per_source[source]

    def admit(self, source: str) -> Admitted | Refusal:
        if self._per_source[source] >= self.limits.per_source:
            return Refusal.PER_SOURCE
        shed = None
        if len(self._open) - self._closing >= self._ceiling:
            shed = self._oldest_unpaired() if self._closing < MAX_CLOSING else None
            if shed is None:
                return Refusal.FULL
            self._start_closing(shed)
        ticket = Ticket(source, next(self._serials))
        self._open[ticket] = None
        self._per_source[source] += 1
        return Admitted(ticket, shed)

    def making_room(self) -> bool:
        """A newcomer would be refused now only because shed connections are still closing.

        Each closes within a turn or two of the event loop, so the server can leave newcomers waiting in
        its listen backlog meanwhile instead of resetting them: in a flood, the sender queued behind it
        is then admitted a moment later rather than refused.
        """
        if not self._closing or len(self._open) - self._closing < self._ceiling:
            return False
        return self._closing >= MAX_CLOSING or self._oldest_unpaired() is None

    def mark_paired(self, ticket: Ticket) -> None:
        """The peer proved it may share: never shed this connection to admit another."""
        ticket.paired = True

    def release(self, ticket: Ticket) -> None:
        """The connection has closed; releasing twice does nothing."""
        if ticket not in self._open:
            return
        del self._open[ticket]
        if ticket.closing:
            self._closing -= 1
        self._per_source[ticket.source] -= 1
        if not self._per_source[ticket.source]:
            del self._per_source[ticket.source]

    def out_of_descriptors(self) -> list[Ticket]:
        """The system refused a descriptor: lower the total limit to leave :data:`HEADROOM` free.

        Returns the unpaired connections to close now (oldest first) to get under the new limit. While
        connections shed for an earlier refusal are still closing, the limit stays as it is.
        """
        if len(self._open) > self._ceiling:
            return []
        self._ceiling = max(1, len(self._open) - HEADROOM)
        shed: list[Ticket] = []
        while len(self._open) - self._closing > self._ceiling and (oldest := self._oldest_unpaired()):
            self._start_closing(oldest)
            shed.append(oldest)
        return shed

    def _start_closing(self, ticket: Ticket) -> None:
        ticket.closing = True
        self._closing += 1

    def _oldest_unpaired(self) -> Ticket | None:
        """The oldest unpaired connection of the source holding the most: a lone sender about to pair is
        not the one shed for a flood from a few addresses."""
        candidates = [t for t in self._open if not t.paired and not t.closing]
        if not candidates:
            return None
        held = Counter(t.source for t in candidates)
        most = max(held.values())
        return next(t for t in candidates if held[t.source] == most)
