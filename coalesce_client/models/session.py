"""The share in progress as people see it: where to, which phase, what is sent, how the link is doing.

The controller drives :class:`ShareSession` through its phases; views read it, and write only the
user's own choices (:meth:`~ShareSession.set_moderator`, :meth:`~ShareSession.answer_join`). Phases::

    IDLE ──share──▶ CONNECTING ◀──▶ WAITING_FOR_PIN
                        ├──▶ WAITING_TO_JOIN (a moderated room decides; Cancel goes back to IDLE)
                        │
                        ▼
                     SHARING (another screen, the camera on or off: still SHARING, same share)
                        │
                      stop / the receiver ends it / failure
                        ▼
                      IDLE (with ``error`` or ``notice`` saying why, when it was not asked for)

Joining as the room's moderator (``moderator``, the connect page's choice) pairs with the moderator PIN;
while such a share runs, senders waiting to share queue up in ``join_requests`` until the user answers
each with :meth:`ShareSession.answer_join` (the controller answers Deny when nobody does in time), and
``room`` says what the room display shows, which the moderator steers through the controller.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field, replace

from coalesce_client.models.destination import Destination
from coalesce_client.models.observable import Observable
from coalesce_common.protocol import RoomState

logger = logging.getLogger(__name__)


class SharePhase(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    WAITING_FOR_PIN = "waiting-for-pin"
    WAITING_TO_JOIN = "waiting-to-join"  # a moderated room decides whether to let the share in
    SHARING = "sharing"
    STOPPING = "stopping"


@dataclass(frozen=True)
class PinRequest:
    """The receiver asks for its PIN; ``error`` is why the last one was not accepted."""

    receiver_name: str
    error: str | None = None
    moderator: bool = False  # the room's moderator PIN is wanted, not the one the room display shows


@dataclass(frozen=True, eq=False)
class JoinRequest:
    """A sender waiting to share, asked of us as the room's moderator; ``answer`` gets the user's yes or no.

    Compared by identity: two senders of the same name asking at once are two requests.
    """

    sender_name: str
    answer: asyncio.Future[bool] = field(repr=False)


@dataclass(frozen=True)
class MediaChoice:
    """What to send: a monitor (mss numbering, from 1; ``None`` for none) and a camera (index or file)."""

    screen: int | None = 1
    camera: str | None = None

    def describe(self) -> str:
        parts = []
        if self.screen is not None:
            parts.append(f"screen {self.screen}")
        if self.camera is not None:
            parts.append("camera")
        return " and ".join(parts) or "nothing"


@dataclass(frozen=True)
class LinkStatus:
    """How the media link is doing, from the peer connection's statistics; ``None`` where unknown."""

    route: str | None = None  # "peer-to-peer" or "relayed"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    round_trip_ms: float | None = None
    kbps: float | None = None
    relay: str = ""  # how relayed media reaches the relay: "over TLS through the eu relay"
    reconnecting: bool = False  # the connection was lost: the share is trying to come back

    def describe(self) -> str:
        if self.reconnecting:
            return "Connection lost: reconnecting… (the room keeps your place)"
        relayed = f"Relayed {self.relay}" if self.relay else "Relayed through the cloud"
        parts = [{"peer-to-peer": "Peer to peer", "relayed": relayed}.get(self.route or "", "")]
        if self.width and self.height:
            parts.append(f"{self.width}\N{MULTIPLICATION SIGN}{self.height}")
        if self.fps is not None:
            parts.append(f"{self.fps:.0f} fps")
        if self.round_trip_ms is not None:
            rtt = f"{self.round_trip_ms:.0f} ms" if self.round_trip_ms >= 1 else "under 1 ms"
            parts.append(f"{rtt} round trip")
        if self.kbps is not None:
            parts.append(f"{self.kbps / 1000:.1f} Mbit/s" if self.kbps >= 1000 else f"{self.kbps:.0f} kbit/s")
        return " · ".join(p for p in parts if p) or "Measuring the connection…"


class ShareSession(Observable):
    """One share from start to end (and the next one: the session object lives as long as the app)."""

    def __init__(self, media: MediaChoice | None = None) -> None:
        super().__init__()
        self.phase = SharePhase.IDLE
        self.destination: Destination | None = None
        self.receiver_name = ""
        self.pin_request: PinRequest | None = None
        self.media = media or MediaChoice()
        self.paused = False
        self.status = LinkStatus()
        self.error: str | None = None
        self.notice: str | None = None
        self.media_problem: str | None = None  # a screen or camera change that could not be made
        self.moderator = False
        self.join_requests: list[JoinRequest] = []
        self.room: RoomState | None = None
        """As the room's moderator: what is on its screen and who waits (``None`` until it says)."""
        self.room_problem: str | None = None
        """Why the room did not carry out the moderator's last command (``None``: it did)."""
        self.can_replace = False
        """The last share found the room full, and the room lets it take the oldest share's place."""
        self.sound = False
        """Share this computer's sound: off until the user turns it on, and off again when a share ends."""
        self.sound_problem: str | None = None
        """Why the sound asked for is not shared (``None``: it is, or it was not asked for)."""
        self.sound_volume = 1.0
        """How loud the shared sound is sent, 0 to 1."""

    @property
    def active(self) -> bool:
        """Connecting, sharing or about to: the Share button is off and Stop is on."""
        return self.phase is not SharePhase.IDLE

    @property
    def sharing(self) -> bool:
        return self.phase in (SharePhase.SHARING, SharePhase.STOPPING)

    def begin(self, destination: Destination) -> None:
        self.destination = destination
        self.receiver_name = destination.label
        self.error = None
        self.notice = None
        self.can_replace = False
        self.paused = False
        self.status = LinkStatus()
        self._set_phase(SharePhase.CONNECTING)

    def ask_pin(self, request: PinRequest) -> None:
        self.pin_request = request
        self.receiver_name = request.receiver_name
        self._set_phase(SharePhase.WAITING_FOR_PIN)

    def pin_answered(self) -> None:
        if self.pin_request is not None:
            self.pin_request = None
            self._set_phase(SharePhase.CONNECTING, force_notify=True)

    def waiting_to_join(self) -> None:
        """The PIN was right and the room (a moderator) now decides: the views say so, with Cancel."""
        if self.phase is SharePhase.CONNECTING:
            self._set_phase(SharePhase.WAITING_TO_JOIN)

    def started(self, receiver_name: str) -> None:
        self.receiver_name = receiver_name
        self.media_problem = None
        self._set_phase(SharePhase.SHARING, force_notify=True)

    def set_media_problem(self, problem: str | None) -> None:
        """Why the last screen or camera change could not be made (``None``: it was)."""
        if problem != self.media_problem:
            self.media_problem = problem
            self._changed()

    def stopping(self) -> None:
        self._set_phase(SharePhase.STOPPING)

    def ended(
        self, *, error: str | None = None, notice: str | None = None, can_replace: bool = False
    ) -> None:
        """Back to the first screen; ``error`` or ``notice`` says why when it was not the user's doing."""
        self.pin_request = None
        self.can_replace = can_replace
        self.error = error
        self.notice = notice
        self.paused = False
        self.status = LinkStatus()
        self.media_problem = None
        self.join_requests = self._withdrawn_joins()
        self.room = self.room_problem = None
        self.sound, self.sound_problem = False, None
        self._set_phase(SharePhase.IDLE, force_notify=True)

    def fail_before_start(self, error: str) -> None:
        """A share that could not even begin (nothing typed, a malformed address)."""
        self.error = error
        self.notice = None
        self._changed()

    def clear_messages(self) -> None:
        if self.error is not None or self.notice is not None:
            self.error = None
            self.notice = None
            self._changed()

    def set_media(self, media: MediaChoice) -> None:
        if media != self.media:
            self.media = media
            self._changed()

    def set_screen(self, screen: int | None) -> None:
        self.set_media(replace(self.media, screen=screen))

    def set_camera(self, camera: str | None) -> None:
        self.set_media(replace(self.media, camera=camera))

    def set_paused(self, paused: bool) -> None:
        if paused != self.paused:
            self.paused = paused
            self._changed()

    def set_moderator(self, moderator: bool) -> None:
        """Join the next share as the room's moderator (the moderator PIN; answer join requests)."""
        if moderator != self.moderator:
            self.moderator = moderator
            self._changed()

    def ask_join(self, request: JoinRequest) -> None:
        """A sender waits for our answer; requests are answered in the order they came."""
        self.join_requests = [*self.join_requests, request]
        self._changed()

    def answer_join(self, request: JoinRequest, allow: bool) -> None:
        """The user's answer (the prompt's Allow or Deny); ignored once the request is gone."""
        if request not in self.join_requests:
            return
        self.join_requests = [r for r in self.join_requests if r is not request]
        if not request.answer.done():
            request.answer.set_result(allow)
        self._changed()

    def withdraw_join(self, request: JoinRequest) -> None:
        """Drop an unanswered request (timed out, or its share ended): its answer is cancelled."""
        request.answer.cancel()  # does nothing once answered
        if request in self.join_requests:
            self.join_requests = [r for r in self.join_requests if r is not request]
            self._changed()

    def withdraw_joins(self) -> None:
        """Drop every unanswered request: the share they were asked through has ended."""
        if self.join_requests:
            self.join_requests = self._withdrawn_joins()
            self._changed()

    def _withdrawn_joins(self) -> list[JoinRequest]:
        for request in self.join_requests:
            request.answer.cancel()
        return []

    def set_sound(self, sound: bool, problem: str | None = None) -> None:
        """Whether the sound is (to be) shared, and why not when it was asked for but cannot be."""
        if (sound, problem) != (self.sound, self.sound_problem):
            self.sound, self.sound_problem = sound, problem
            self._changed()

    def set_sound_volume(self, volume: float) -> None:
        volume = min(1.0, max(0.0, volume))
        if volume != self.sound_volume:
            self.sound_volume = volume
            self._changed()

    def set_room(self, room: RoomState) -> None:
        """The room changed (a moderator is told); a command the room then carried out clears the problem."""
        if room != self.room or self.room_problem is not None:
            self.room, self.room_problem = room, None
            self._changed()

    def set_room_problem(self, problem: str) -> None:
        self.room_problem = problem
        self._changed()

    def set_status(self, status: LinkStatus) -> None:
        if status != self.status:
            self.status = status
            self._changed()

    def _set_phase(self, phase: SharePhase, *, force_notify: bool = False) -> None:
        if phase is not self.phase:
            logger.debug("share session %s -> %s", self.phase.value, phase.value)
            self.phase = phase
        elif not force_notify:
            return
        self._changed()
