"""The receivers found on the LAN, as the first screen lists them: kept current by mDNS events.

Discovery reports each receiver as ``found`` (it appeared, changed what it advertises, or answers again)
and ``lost`` (it said goodbye, or stopped answering), so the list follows what the network says. ``searching``
holds until the first answers have had time to come, so that an empty list reads as "looking", not as
"nobody here".
"""

from __future__ import annotations

from coalesce_client.models.observable import Observable
from coalesce_common.discovery import ReceiverInfo


def receiver_key(info: ReceiverInfo) -> str:
    """A stable identity for a receiver, whatever discovery calls it (the views keep a selection by it)."""
    return info.receiver_id or f"{info.name}@{info.port}"


class ReceiverList(Observable):
    """Receivers on this network, sorted by name; a :class:`~coalesce_common.discovery.ReceiverListener`.

    ``key`` is discovery's name for a receiver (its mDNS instance name).
    """

    def __init__(self) -> None:
        super().__init__()
        self._found: dict[str, ReceiverInfo] = {}
        self.searching = True
        self.problem: str | None = None

    @property
    def receivers(self) -> list[ReceiverInfo]:
        return sorted(self._found.values(), key=lambda r: (r.name.lower(), receiver_key(r)))

    def found(self, key: str, info: ReceiverInfo) -> None:
        """``info`` is on the network (new, or changed); discovery works, whatever went wrong before."""
        if self._found.get(key) == info and self.problem is None:
            return
        self._found[key] = info
        self.problem = None
        self._changed()

    def lost(self, key: str) -> None:
        if self._found.pop(key, None) is not None:
            self._changed()

    def searched(self) -> None:
        """The first answers have had their time: an empty list now means nobody answered."""
        if self.searching:
            self.searching = False
            self._changed()

    def restart(self) -> None:
        """Discovery starts again (at launch, after a failure, on another network): nothing known yet."""
        if self._found or self.problem is not None or not self.searching:
            self._found.clear()
            self.problem = None
            self.searching = True
            self._changed()

    def set_problem(self, message: str) -> None:
        """Discovery itself failed (no network, mDNS blocked): say so instead of an empty list."""
        if message != self.problem or self.searching:
            self.problem = message
            self.searching = False
            self._changed()
