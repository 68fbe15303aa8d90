"""The room's observable state: who the receiver is and which shares it shows. No Qt, no IO.

The signaling server adds and removes shares; views (the Qt window, the stats and snapshot writers)
read it and subscribe to changes. Callbacks run synchronously on the thread that changes the model,
which is always the event loop's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

MAX_SHOWN_SHARES = 4
"""How many shares the room shows at once (one full screen, two to four tiled)."""


class FrameSource(Protocol):
    """A decoded track as views see it (implemented by ``coalesce_receiver.services.sink.TrackSink``)."""

    kind: str

    def latest_rgb(self) -> np.ndarray | None:
        """The newest decoded frame as RGB ``uint8`` of shape (h, w, 3); ``None`` before the first."""
        ...

    def stats(self) -> dict[str, object]:
        """``{"kind", "frames", "width", "height", "fps"}`` for the stats file."""
        ...


@dataclass
class ShareView:
    """One sender's share: its name and its tracks by kind (``screen``, ``camera``)."""

    share_id: str
    sender_name: str
    tracks: dict[str, FrameSource] = field(default_factory=dict)


@dataclass(frozen=True)
class JoinRequest:
    """A sender waiting for a moderator's yes or no (moderated rooms)."""

    share_id: str
    sender_name: str
    source: str


class RoomActions(Protocol):
    """What the room's controls (the window, a moderator) may ask of the receiver service."""

    def decide(self, share_id: str, approve: bool) -> None:
        """Let a waiting sender in, or turn it away."""
        ...

    def drop_share(self, share_id: str) -> None:
        """End a share from the box."""
        ...

    def check_admin_password(self, password: str) -> bool:
        """Whether ``password`` unlocks the box's settings (never logged)."""
        ...

    def change_pin(self, password: str, new_pin: str | None) -> bool:
        """Set a new PIN (``None``: an open room); ``False`` if the admin password is wrong."""
        ...

    def set_pin_rotation(self, password: str, rotate: bool) -> bool:
        """Turn a new random PIN per meeting on or off; ``False`` if the admin password is wrong."""
        ...


Listener = Callable[[], None]


class RoomModel:
    """Receiver identity plus the ordered list of live shares."""

    def __init__(
        self,
        name: str,
        *,
        pin_required: bool,
        addresses: list[str] | None = None,
        port: int = 0,
        fingerprint: str = "",
    ) -> None:
        self.name = name
        self.pin_required = pin_required
        self.addresses: list[str] = list(addresses or [])
        self.port = port
        self.fingerprint = fingerprint
        self.meeting_id: str | None = None  # set while the box is connected to a cloud
        self.pin: str | None = None  # shown on the idle screen; the model is the box's own display state
        self.pin_rotation = False
        self.moderated = False
        self.update_notice: str | None = None  # "Coalesce 1.2 is available" from the cloud
        self.actions: RoomActions | None = None  # set by the receiver service
        self._join_requests: list[JoinRequest] = []
        self._shares: list[ShareView] = []
        self._listeners: list[Listener] = []

    @property
    def shares(self) -> list[ShareView]:
        """All live shares, oldest first (a copy)."""
        return list(self._shares)

    @property
    def shown_shares(self) -> list[ShareView]:
        """The shares on screen: the first ``MAX_SHOWN_SHARES``."""
        return self._shares[:MAX_SHOWN_SHARES]

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def set_endpoint(self, addresses: list[str], port: int) -> None:
        self.addresses = list(addresses)
        self.port = port
        self._changed()

    def set_meeting_id(self, meeting_id: str | None) -> None:
        """The cloud meeting ID remote senders type (``None`` when the box has no cloud)."""
        self.meeting_id = meeting_id
        self._changed()

    def set_pin(self, pin: str | None) -> None:
        self.pin = pin
        self.pin_required = pin is not None
        self._changed()

    def set_update_notice(self, notice: str | None) -> None:
        self.update_notice = notice
        self._changed()

    @property
    def join_requests(self) -> list[JoinRequest]:
        """Senders waiting for the moderator, oldest first (a copy)."""
        return list(self._join_requests)

    def add_join_request(self, request: JoinRequest) -> None:
        self._join_requests.append(request)
        self._changed()

    def remove_join_request(self, share_id: str) -> None:
        before = len(self._join_requests)
        self._join_requests = [r for r in self._join_requests if r.share_id != share_id]
        if len(self._join_requests) != before:
            self._changed()

    def add_share(self, share: ShareView) -> None:
        self._shares.append(share)
        self._changed()

    def add_track(self, share_id: str, source: FrameSource) -> None:
        for share in self._shares:
            if share.share_id == share_id:
                share.tracks[source.kind] = source
                self._changed()
                return

    def remove_share(self, share_id: str) -> None:
        before = len(self._shares)
        self._shares = [s for s in self._shares if s.share_id != share_id]
        if len(self._shares) != before:
            self._changed()

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()
