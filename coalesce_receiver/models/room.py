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


Size = tuple[int, int]
"""(width, height) in pixels."""


def fit_size(frame: Size, box: Size) -> Size:
    """The largest size of ``frame``'s aspect ratio that fits in ``box`` (at least 1 x 1): the size a
    picture is made at, and the size a view draws it at, so drawing it is a copy, not a scaling."""
    frame_w, frame_h = frame
    box_w, box_h = max(1, box[0]), max(1, box[1])
    if frame_w <= 0 or frame_h <= 0:
        return box_w, box_h
    scale = min(box_w / frame_w, box_h / frame_h)
    return max(1, min(box_w, round(frame_w * scale))), max(1, min(box_h, round(frame_h * scale)))


@dataclass(frozen=True, eq=False)
class Picture:
    """A decoded frame made ready for the glass: scaled to the size it is shown at, in the display's layout.

    ``pixels`` is ``uint8`` of shape (h, w, 4), bytes B, G, R, X: what Qt calls ``Format_RGB32`` on a
    little-endian machine, so a view draws it without a per-pixel conversion. ``frame_size`` is the
    decoded frame's own size (its aspect ratio, whatever it was scaled to); ``number`` counts the track's
    frames (the first is 1), so a view can tell a new picture from one it has shown.
    """

    pixels: np.ndarray
    frame_size: Size
    number: int


class FrameSource(Protocol):
    """A decoded track as views see it (implemented by ``coalesce_receiver.services.sink.TrackSink``).

    The room window *watches* a source: every new frame is scaled to fit the box the window shows it
    in and converted, off the event loop, and ``on_picture`` is called (from whichever thread did the
    work) when :meth:`latest_picture` has a new one. One watcher at a time: the room has one screen.
    """

    kind: str

    def latest_rgb(self) -> np.ndarray | None:
        """The newest decoded frame as RGB ``uint8`` of shape (h, w, 3), full size; ``None`` before the
        first. For snapshots and tests; the window uses :meth:`watch`."""
        ...

    def watch(self, box: Size, on_picture: Callable[[], None]) -> None:
        """Deliver each new frame as a :class:`Picture` fitted into ``box``; calling it again changes the
        box (the newest frame is scaled again at once) or the callback."""
        ...

    def unwatch(self) -> None:
        """Stop delivering pictures (the view is gone); safe to call more than once."""
        ...

    def latest_picture(self) -> Picture | None:
        """The newest delivered picture; ``None`` before the first or after the source was cleared."""
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
    sound: bool = False
    """The sender shares its computer's sound (its ``media`` message says so)."""
    sender_id: str = ""
    """What the sender calls itself across connections (its ``hello``): a returning share has the same."""
    reconnecting: bool = False
    """The share's connection was lost; the room keeps its place (and last picture) for its return."""


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

    def spotlight(self, share_id: str | None) -> None:
        """Show one share large and the others in a strip (``None``: back to the grid)."""
        ...

    def swap(self, first: str, second: str) -> None:
        """Swap where two shown shares sit on the screen (their numbers stay theirs)."""
        ...

    def move_pip(self) -> None:
        """Move the camera insets to the next corner of their pictures."""
        ...

    def mute_sound(self, muted: bool) -> None:
        """Play no share's sound (``True``), or the audible share's again."""
        ...

    def set_sound_volume(self, volume: float) -> None:
        """The shared sound's volume at the room, 0 to 1."""
        ...

    def listen_to(self, share_id: str | None) -> None:
        """Play this share's sound rather than the spotlit one's (``None``: the spotlit share's again)."""
        ...

    def change_settings(
        self,
        password: str,
        *,
        pin: str | None,
        rotate: bool,
        done: Callable[[SettingsOutcome], None],
        locked: bool = False,
    ) -> None:
        """Set the PIN (``None``: an open room), its rotation and whether the room is locked (no new
        shares) if ``password`` is the admin password.

        Returns at once; ``done`` is called on the event loop with the outcome (checking the password is
        a deliberately slow hash, so it runs off the loop). The password is never logged.
        """
        ...


Listener = Callable[[], None]


class PipCorner(enum.Enum):
    """Where a share's camera inset sits on its screen picture; the room moves it (key ``C``)."""

    BOTTOM_RIGHT = "bottom-right"
    BOTTOM_LEFT = "bottom-left"
    TOP_LEFT = "top-left"
    TOP_RIGHT = "top-right"

    def next(self) -> PipCorner:
        corners = list(PipCorner)
        return corners[(corners.index(self) + 1) % len(corners)]


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
        self.share_url: str | None = None  # the cloud's browser sharing page, when the room takes those
        self.pin: str | None = None  # shown on the idle screen; the model is the box's own display state
        self.pin_rotation = False
        self.moderated = False
        self.locked = False
        """No new shares (those on screen go on): set at the box's settings."""
        self.update_notice: str | None = None  # "Coalesce 1.2 is available" from the cloud
        self.notice: str | None = None
        """A brief notice over the shares ("Ada wants to share, but the room is full"), or ``None``."""
        self._join_requests: list[JoinRequest] = []
        self._shares: list[ShareView] = []
        self._places: list[str] = []  # the shown shares' ids in screen order (swaps change it)
        self.spotlit: str | None = None
        """The share shown large (the others in a strip), or ``None`` for the grid."""
        self.pip_corner = PipCorner.BOTTOM_RIGHT
        self.sound_muted = False
        """The room plays no share's sound (its controls' mute)."""
        self.sound_volume = 1.0
        """The shared sound's volume at the room, 0 to 1 (its controls' + and -)."""
        self.chosen_sound: str | None = None
        """The share the room chose to hear (key ``H``, a moderator), or ``None``: the spotlit one."""
        self._listeners: list[Listener] = []

    @property
    def shares(self) -> list[ShareView]:
        """All live shares, oldest first (a copy)."""
        return list(self._shares)

    @property
    def shown_shares(self) -> list[ShareView]:
        """The shares on screen, by number: the first ``MAX_SHOWN_SHARES`` to arrive (share 1 first)."""
        return self._shares[:MAX_SHOWN_SHARES]

    @property
    def placed_shares(self) -> list[ShareView]:
        """The shares on screen in the order of their places (grid: left to right, top to bottom;
        spotlight: the spotlit one first, then the strip)."""
        by_id = {share.share_id: share for share in self.shown_shares}
        placed = [by_id[share_id] for share_id in self._places]
        if self.spotlit in by_id:
            placed.sort(key=lambda share: share.share_id != self.spotlit)
        return placed

    @property
    def audible(self) -> str | None:
        """The share whose sound the room plays, one at a time: the one the room chose to hear if it shares
        sound, else the spotlit share if it does, else the first share on screen that does; ``None`` when
        none does or the room is muted."""
        if self.sound_muted:
            return None
        sounding = self.sounding
        if self.chosen_sound in sounding:
            return self.chosen_sound
        if self.spotlit in sounding:
            return self.spotlit
        return sounding[0] if sounding else None

    @property
    def sounding(self) -> list[str]:
        """The shares on screen whose sound the room could play, by number."""
        return [share.share_id for share in self.shown_shares if share.sound and not share.paused]

    def listen_to(self, share_id: str | None) -> bool:
        """Hear this shown share's sound (``None``: the spotlit share's again); False, and no change, for a
        share not on screen. A chosen share that stops sharing sound is heard again when it resumes."""
        if share_id is not None and self.number_of(share_id) is None:
            return False
        if share_id != self.chosen_sound:
            self.chosen_sound = share_id
            self._changed()
        return True

    def next_sounding(self) -> str | None:
        """The share after the audible one among those sharing sound (round the tiles), for key ``H``."""
        sounding = self.sounding
        if not sounding:
            return None
        audible = self.audible
        if audible not in sounding:
            return sounding[0]
        return sounding[(sounding.index(audible) + 1) % len(sounding)]

    def set_sound(self, share_id: str, sound: bool) -> None:
        for share in self._shares:
            if share.share_id == share_id and share.sound != sound:
                share.sound = sound
                self._changed()
                return

    def set_sound_muted(self, muted: bool) -> None:
        if muted != self.sound_muted:
            self.sound_muted = muted
            self._changed()

    def set_sound_volume(self, volume: float) -> None:
        volume = round(min(1.0, max(0.0, volume)), 2)
        if volume != self.sound_volume:
            self.sound_volume = volume
            self._changed()

    def number_of(self, share_id: str) -> int | None:
        """The number the room shows on a share's tile (1-4 by arrival), ``None`` if it is not shown."""
        for index, share in enumerate(self.shown_shares):
            if share.share_id == share_id:
                return index + 1
        return None

    def share_numbered(self, number: int) -> ShareView | None:
        shown = self.shown_shares
        return shown[number - 1] if 1 <= number <= len(shown) else None

    def set_spotlight(self, share_id: str | None) -> bool:
        """Spotlight a shown share (``None``: back to the grid); False, and no change, for one not shown."""
        if share_id is not None and self.number_of(share_id) is None:
            return False
        if share_id != self.spotlit:
            self.spotlit = share_id
            self._changed()
        return True

    def swap(self, first: str, second: str) -> bool:
        """Swap the places of two shown shares; False, and no change, unless both are shown."""
        if first not in self._places or second not in self._places:
            return False
        if first != second:
            i, j = self._places.index(first), self._places.index(second)
            self._places[i], self._places[j] = second, first
            self._changed()
        return True

    def move_pip(self) -> None:
        """Move the camera insets to the next corner, clockwise from the bottom right."""
        self.pip_corner = self.pip_corner.next()
        self._changed()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def set_endpoint(self, addresses: list[str], port: int) -> None:
        self.addresses = list(addresses)
        self.port = port
        self._changed()

    def set_meeting_id(self, meeting_id: str | None, share_url: str | None = None) -> None:
        """The cloud meeting ID remote senders type (``None`` when the box has no cloud), and the address of
        the cloud's page where a browser shares with it (``None`` when the room takes no browser shares)."""
        self.meeting_id = meeting_id
        self.share_url = share_url if meeting_id is not None else None
        self._changed()

    def set_pin(self, pin: str | None) -> None:
        self.pin = pin
        self.pin_required = pin is not None
        self._changed()

    def set_locked(self, locked: bool) -> None:
        if locked != self.locked:
            self.locked = locked
            self._changed()

    def set_notice(self, notice: str | None) -> None:
        if notice != self.notice:
            self.notice = notice
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
        self._update_places()
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

    def hold_for_return(self, share_id: str) -> bool:
        """Keep a share whose connection was lost in its place, marked reconnecting; False if it is gone."""
        for share in self._shares:
            if share.share_id == share_id:
                if not share.reconnecting:
                    share.reconnecting = True
                    self._changed()
                return True
        return False

    def returning(self, sender_id: str) -> ShareView | None:
        """The share of ``sender_id`` still in the room (reconnecting, or not yet known to be lost)."""
        if not sender_id:
            return None
        return next((share for share in self._shares if share.sender_id == sender_id), None)

    def give_back(self, old_id: str, share: ShareView) -> None:
        """``share`` takes ``old_id``'s place: its tile, its place on screen, the spotlight and the sound."""
        index = next(i for i, s in enumerate(self._shares) if s.share_id == old_id)
        self._shares[index] = share
        self._places = [share.share_id if p == old_id else p for p in self._places]
        if self.spotlit == old_id:
            self.spotlit = share.share_id
        if self.chosen_sound == old_id:
            self.chosen_sound = share.share_id
        self._update_places()
        self._changed()

    def remove_share(self, share_id: str) -> None:
        before = len(self._shares)
        self._shares = [s for s in self._shares if s.share_id != share_id]
        if len(self._shares) != before:
            self._update_places()
            self._changed()

    def _update_places(self) -> None:
        """Keep the places of shares still shown; a newly shown share takes the next place."""
        shown = [share.share_id for share in self.shown_shares]
        self._places = [share_id for share_id in self._places if share_id in shown]
        self._places += [share_id for share_id in shown if share_id not in self._places]
        if self.spotlit not in shown:
            self.spotlit = None
        if self.chosen_sound not in shown:
            self.chosen_sound = None

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()
