"""The room's observable state: who the receiver is and which shares it shows. No Qt, no IO.

The signaling server adds and removes shares; views (the Qt window, the stats and snapshot writers)
read it and subscribe to changes. Callbacks run synchronously on the thread that changes the model,
which is always the event loop's.
"""

from __future__ import annotations

import enum
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
    """One sender's share: its name, its live tracks by kind (``screen``, ``camera``), whether it is paused.

    ``tracks`` holds only what the sender says is live (its ``media`` message): a camera the sender
    turned off is not in it. A paused share keeps its tracks (the room shows the last picture).
    """

    share_id: str
    sender_name: str
    tracks: dict[str, FrameSource] = field(default_factory=dict)
    paused: bool = False


@dataclass(frozen=True)
class JoinRequest:
    """A sender waiting for a moderator's yes or no (moderated rooms)."""

    share_id: str
    sender_name: str
    source: str


class SettingsOutcome(enum.Enum):
    """What became of a settings change asked for at the box."""

    APPLIED = "applied"
    WRONG_PASSWORD = "wrong-password"  # or no admin password is set for this box
    INVALID_PIN = "invalid-pin"


class RoomActions(Protocol):
    """What the room's controls (the window, a moderator) may ask of the receiver service.

    The receiver service implements it; the window is handed it beside the model (the model does not
    point back at the service).
    """

    def decide(self, share_id: str, approve: bool) -> None:
        """Let a waiting sender in, or turn it away."""
        ...

    def drop_share(self, share_id: str) -> None:
        """End a share from the box."""
        ...

    def change_settings(
        self, password: str, *, pin: str | None, rotate: bool, done: Callable[[SettingsOutcome], None]
    ) -> None:
        """Set the PIN (``None``: an open room) and its rotation if ``password`` is the admin password.

        Returns at once; ``done`` is called on the event loop with the outcome (checking the password is
        a deliberately slow hash, so it runs off the loop). The password is never logged.
        """
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
                if share.tracks.get(source.kind) is not source:
                    share.tracks[source.kind] = source
                    self._changed()
                return

    def remove_track(self, share_id: str, kind: str) -> None:
        for share in self._shares:
            if share.share_id == share_id and share.tracks.pop(kind, None) is not None:
                self._changed()
                return

    def set_paused(self, share_id: str, paused: bool) -> None:
        for share in self._shares:
            if share.share_id == share_id and share.paused != paused:
                share.paused = paused
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
