"""The receivers found on the LAN, as the first screen lists them: fed by repeated mDNS browsing.

A receiver that stops answering is dropped after it has been missing from ``forget_after_rounds``
complete browsing rounds, so the list neither flickers nor keeps a room that was switched off.
"""

from __future__ import annotations

from collections.abc import Sequence

from coalesce_client.models.observable import Observable
from coalesce_common.discovery import ReceiverInfo


def receiver_key(info: ReceiverInfo) -> str:
    """A stable identity for a receiver across browsing rounds."""
    return info.receiver_id or f"{info.name}@{info.port}"


class ReceiverList(Observable):
    """Receivers on this network, sorted by name; ``searching`` until the first round has finished."""

    def __init__(self, *, forget_after_rounds: int = 2) -> None:
        super().__init__()
        self._forget_after = forget_after_rounds
        self._found: dict[str, ReceiverInfo] = {}
        self._missed: dict[str, int] = {}
        self.searching = True
        self.problem: str | None = None

    @property
    def receivers(self) -> list[ReceiverInfo]:
        return sorted(self._found.values(), key=lambda r: (r.name.lower(), receiver_key(r)))

    def merge(self, found: Sequence[ReceiverInfo], *, complete: bool) -> None:
        """Add or refresh ``found``; after a ``complete`` round, count the others as missed once."""
        seen = {receiver_key(r): r for r in found}
        changed = self.problem is not None or (complete and self.searching)
        for key, info in seen.items():
            if self._found.get(key) != info:
                changed = True
            self._found[key] = info
            self._missed[key] = 0
        if complete:
            self.searching = False
            for key in list(self._found):
                if key in seen:
                    continue
                self._missed[key] = self._missed.get(key, 0) + 1
                if self._missed[key] >= self._forget_after:
                    del self._found[key]
                    del self._missed[key]
                    changed = True
        self.problem = None
        if changed:
            self._changed()

    def set_problem(self, message: str) -> None:
        """Discovery itself failed (no network, mDNS blocked): say so instead of an empty list."""
        if message != self.problem or self.searching:
            self.problem = message
            self.searching = False
            self._changed()
