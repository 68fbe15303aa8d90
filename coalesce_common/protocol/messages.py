"""Every signaling message, as a frozen dataclass with the limits the parser enforces.

A message's wire form is a JSON object whose ``type`` is the class's ``TYPE`` and whose other members
are exactly the dataclass fields. ``LIMITS`` gives the maximum length of string fields (characters)
and of mappings (entries); a field not listed there gets ``DEFAULT_STRING_LIMIT``. ``RANGES`` gives the
smallest and largest value a number field may have.

*Session-control* messages (:data:`CONTROL_TYPES`) steer a share that is running; one that cannot be
accepted (malformed, out of place, from the wrong side) is answered with ``refused`` and the share goes
on, where any other bad message ends the session with ``error``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar

DEFAULT_STRING_LIMIT = 256
NAME_LIMIT = 64
SDP_LIMIT = 48 * 1024


class Role(enum.StrEnum):
    """What a sender asks to be in a room."""

    PRESENTER = "presenter"
    MODERATOR = "moderator"


class AccessMode(enum.StrEnum):
    """Who may start a share, as the room announces it (mDNS TXT ``mode``) and senders list it."""

    OPEN = "open"  # anyone on the network, no PIN
    PIN = "pin"  # the PIN on the room's screen
    MODERATED = "moderated"  # the PIN, then the room (or its moderator) lets each share in
    LOCKED = "locked"  # no new shares; those on screen go on

    def describe(self) -> str:
        """A few words for a room list."""
        return {
            AccessMode.OPEN: "No PIN",
            AccessMode.PIN: "PIN needed",
            AccessMode.MODERATED: "PIN, then the room lets you in",
            AccessMode.LOCKED: "Locked",
        }[self]


class DenyReason(enum.StrEnum):
    """Why a receiver refused a pairing; stable codes the sender turns into user-facing words."""

    WRONG_PIN = "wrong-pin"
    THROTTLED = "throttled"
    TAMPERED = "tampered"
    FULL = "full"
    VERSION = "version"
    DECLINED = "declined"  # a moderated room's moderator said no
    NO_MODERATOR = "no-moderator"  # asked to moderate a room that has no moderator PIN
    LOCKED = "locked"  # the room takes no new shares now


class EndReason(enum.StrEnum):
    """Why a share ended: carried by ``bye``, kept by both sides, and said to people by :meth:`describe`.

    The codes are for the wire and the logs; people only ever see :meth:`describe`'s sentences.
    """

    STOPPED = "stopped"  # the sender stopped it (or its user quit)
    RECEIVER_SHUTDOWN = "receiver-shutdown"  # the room display is switching off or restarting
    DROPPED_BY_ROOM = "dropped-by-room"  # someone ended the share at the room display
    REPLACED = "replaced"  # the room was full and a newcomer took this share's place
    MEDIA_FAILED = "media-failed"  # the media connection failed
    CONNECTION_LOST = "connection-lost"  # the signaling channel closed without a bye
    NETWORK_LOST = "network-lost"  # the connection was lost and did not come back while the sender retried
    PROTOCOL_ERROR = "protocol-error"  # the peer sent something that could not be accepted
    PEER_ERROR = "peer-error"  # the peer answered with an error
    CLOUD_DISCONNECTED = "cloud-disconnected"  # the cloud ended this device's connection
    SUSPENDED = "suspended"  # an administrator suspended the sending device
    REVOKED = "revoked"  # an administrator revoked the sending device
    REFUSED = "refused"  # pairing was refused: the share never began
    FAILED = "failed"  # this side could not start the share

    def describe(self, room: str) -> str | None:
        """The sentence a sender's user sees, naming ``room``; ``None`` when the user ended it."""
        return {
            EndReason.STOPPED: None,
            EndReason.RECEIVER_SHUTDOWN: f"{room} was switched off or restarted, so the share ended.",
            EndReason.DROPPED_BY_ROOM: f"{room} ended your share: someone stopped it at the room display.",
            EndReason.REPLACED: (
                f"{room} was full, and someone who joined took the place of your share, the oldest one. "
                "Share again to take a place back."
            ),
            EndReason.MEDIA_FAILED: (
                f"The picture could not reach {room} any more: the media connection failed. "
                "Share again; if it keeps failing, the network may block media between you."
            ),
            EndReason.CONNECTION_LOST: (
                f"The connection to {room} was lost: the network or the room display went away."
            ),
            EndReason.NETWORK_LOST: (
                f"The connection to {room} was lost and did not come back while this computer kept "
                "trying, so the share ended. Check this computer's network, then share again."
            ),
            EndReason.PROTOCOL_ERROR: (
                f"{room} sent something this app does not understand, so the share ended. "
                "Check that the app and the room display are up to date."
            ),
            EndReason.PEER_ERROR: f"{room} ended the share after an error. Share again.",
            EndReason.CLOUD_DISCONNECTED: (
                "The Coalesce cloud ended this computer's connection, so the share ended. "
                "If it happens again, ask your IT administrator whether this device is suspended."
            ),
            EndReason.SUSPENDED: (
                f"Your administrator suspended this device, so the share to {room} ended. "
                "Ask your IT administrator to restore it."
            ),
            EndReason.REVOKED: (
                f"Your administrator revoked this device, so the share to {room} ended. "
                "To share again, ask your IT administrator for a new enrollment code."
            ),
            EndReason.REFUSED: f"{room} refused the share.",
            EndReason.FAILED: f"The share to {room} could not be started.",
        }[self]


@dataclass(frozen=True, slots=True)
class Message:
    """Base of all messages."""

    TYPE: ClassVar[str] = ""
    LIMITS: ClassVar[dict[str, int]] = {}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {}


@dataclass(frozen=True, slots=True)
class Hello(Message):
    """Sender → receiver: opens a session."""

    TYPE: ClassVar[str] = "hello"
    LIMITS: ClassVar[dict[str, int]] = {"sender_name": NAME_LIMIT, "sender_id": NAME_LIMIT}
    v: int
    sender_name: str
    sender_id: str
    role: Role = Role.PRESENTER  # MODERATOR: pairs with the moderator PIN and answers join requests
    replace_oldest: bool = False
    """In a full room that allows it, end the oldest presenter's share to make room (once paired)."""


@dataclass(frozen=True, slots=True)
class Challenge(Message):
    """Receiver → sender: who the receiver is, whether a PIN is needed, and its SPAKE2 message (base64)."""

    TYPE: ClassVar[str] = "challenge"
    LIMITS: ClassVar[dict[str, int]] = {"receiver_name": NAME_LIMIT, "receiver_id": NAME_LIMIT}
    v: int
    receiver_name: str
    receiver_id: str
    pin_required: bool
    spake: str | None = None


@dataclass(frozen=True, slots=True)
class Pair(Message):
    """Sender → receiver: the sender's SPAKE2 message and its key confirmations (all base64).

    ``confirm`` proves knowledge of the PIN; ``binding`` ties the key to the TLS certificate the
    sender saw. In an open room all three are ``None``.
    """

    TYPE: ClassVar[str] = "pair"
    spake: str | None = None
    confirm: str | None = None
    binding: str | None = None


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    """Receiver → sender: paired; ``confirm`` proves the receiver holds the key and its certificate."""

    TYPE: ClassVar[str] = "welcome"
    LIMITS: ClassVar[dict[str, int]] = {"share_id": NAME_LIMIT}
    share_id: str
    confirm: str | None = None


@dataclass(frozen=True, slots=True)
class Waiting(Message):
    """Receiver → sender, after ``pair`` in a moderated room: the PIN was right, and the room (or its
    moderator) now decides; ``welcome`` or ``denied`` follows within ``seconds``."""

    TYPE: ClassVar[str] = "waiting"
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"seconds": (0, 3600)}
    seconds: float


@dataclass(frozen=True, slots=True)
class Denied(Message):
    """Receiver → sender: pairing refused. ``retry_after`` (seconds) is set when throttled."""

    TYPE: ClassVar[str] = "denied"
    reason: DenyReason
    message: str
    retry_after: float | None = None
    replaceable: bool = False
    """With ``full``: the room lets a newcomer take the oldest share's place (``hello.replace_oldest``)."""


@dataclass(frozen=True, slots=True)
class Offer(Message):
    """Sender → receiver: the SDP offer, which media section carries which source, and its MAC (base64)."""

    TYPE: ClassVar[str] = "offer"
    LIMITS: ClassVar[dict[str, int]] = {"sdp": SDP_LIMIT, "tracks": 4}
    sdp: str
    tracks: dict[str, str] = field(default_factory=dict)
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class Answer(Message):
    """Receiver → sender: the SDP answer and its MAC (base64)."""

    TYPE: ClassVar[str] = "answer"
    LIMITS: ClassVar[dict[str, int]] = {"sdp": SDP_LIMIT}
    sdp: str
    mac: str | None = None


@dataclass(frozen=True, slots=True)
class JoinRequest(Message):
    """Receiver → moderator: a sender waits for approval in a moderated room."""

    TYPE: ClassVar[str] = "join-request"
    LIMITS: ClassVar[dict[str, int]] = {"request_id": NAME_LIMIT, "sender_name": NAME_LIMIT}
    request_id: str
    sender_name: str


@dataclass(frozen=True, slots=True)
class JoinDecision(Message):
    """Moderator → receiver: let the waiting sender in, or not."""

    TYPE: ClassVar[str] = "join-decision"
    LIMITS: ClassVar[dict[str, int]] = {"request_id": NAME_LIMIT}
    request_id: str
    approve: bool


@dataclass(frozen=True, slots=True)
class MediaState(Message):
    """Sender → receiver, while sharing: which offered sources carry a picture now, and whether it is paused.

    Every offer carries a screen, a camera and a sound section, so turning the camera or the sound on
    or off, or pausing, changes only which sections send; this message tells the room which to show
    (and play). Before the
    first one the receiver shows every section that delivers frames.
    """

    TYPE: ClassVar[str] = "media"
    screen: bool = True
    camera: bool = False
    paused: bool = False
    sound: bool = False
    """The ``sound`` section carries what the sender's computer plays."""


@dataclass(frozen=True, slots=True)
class Constraints(Message):
    """Receiver → sender, while sharing: what the room's tile for one of the share's sources needs.

    The sender scales that source to at most ``max_width`` x ``max_height`` (keeping its aspect), sends
    at most ``max_fps`` frames a second and at most ``max_bitrate`` bit/s; ``keyframe`` asks for a key
    frame now (after a layout change). Sent when the layout changes, at most every ~100 ms.
    """

    TYPE: ClassVar[str] = "constraints"
    LIMITS: ClassVar[dict[str, int]] = {"track": 16}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "max_width": (16, 7680),
        "max_height": (16, 4320),
        "max_fps": (1, 120),
        "max_bitrate": (50_000, 50_000_000),
    }
    track: str
    max_width: int
    max_height: int
    max_fps: float
    max_bitrate: int
    keyframe: bool = False


class RoomCommand(enum.StrEnum):
    """What a moderator may do to the room's layout, as the room's own keys do."""

    SPOTLIGHT = "spotlight"  # show ``tile`` large, the others in a strip
    GRID = "grid"  # back to the grid
    SWAP = "swap"  # swap the places of ``tile`` and ``other``
    STOP = "stop"  # end the share on ``tile``
    LISTEN = "listen"  # hear ``tile``'s sound (0: the spotlit share's, the room's default)
    MUTE = "mute"  # the room plays no share's sound
    UNMUTE = "unmute"  # the room plays the audible share's sound again


@dataclass(frozen=True, slots=True)
class RoomControl(Message):
    """Moderator → receiver, while sharing: act on the room's numbered tiles (1-4, as the room shows them).

    ``grid``, ``mute`` and ``unmute`` need no tile; ``swap`` needs ``other``; ``listen`` with no tile goes
    back to hearing the spotlit share. The room answers one it cannot carry out (not a
    moderator, no such tile) with ``refused``; what it did shows in the next ``room``.
    """

    TYPE: ClassVar[str] = "room-control"
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {"tile": (0, 4), "other": (0, 4)}
    command: RoomCommand
    tile: int = 0
    other: int = 0


@dataclass(frozen=True, slots=True)
class RoomState(Message):
    """Receiver → moderator, while sharing: the room as its moderator steers it, sent when it changes.

    ``names`` and ``paused`` are the shares on screen by tile number (``names[0]`` is tile 1);
    ``spotlight`` is the spotlit tile's number (0: the grid); ``waiting`` and ``waiting_ids`` are the
    senders waiting to be let in, oldest first, with the ``request_id`` a ``join-decision`` names;
    ``queued`` counts shares connected but not on screen (the room shows four); ``sound`` says by tile
    which shares share their sound, ``audible`` is the number of the tile whose sound the room plays (0:
    none), ``muted`` whether the room muted it all.
    """

    TYPE: ClassVar[str] = "room"
    LIMITS: ClassVar[dict[str, int]] = {
        "names": 4,
        "paused": 4,
        "sound": 4,
        "waiting": 16,
        "waiting_ids": 16,
    }
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "spotlight": (0, 4),
        "queued": (0, 1024),
        "audible": (0, 4),
    }
    names: tuple[str, ...] = ()
    paused: tuple[bool, ...] = ()
    spotlight: int = 0
    locked: bool = False
    waiting: tuple[str, ...] = ()
    waiting_ids: tuple[str, ...] = ()
    queued: int = 0
    sound: tuple[bool, ...] = ()
    audible: int = 0
    muted: bool = False


@dataclass(frozen=True, slots=True)
class Refused(Message):
    """Either side: a session-control message was not accepted (``code`` says why); the share goes on."""

    TYPE: ClassVar[str] = "refused"
    LIMITS: ClassVar[dict[str, int]] = {"code": 32, "message": 512, "refused": 32}
    refused: str
    """The ``type`` of the message refused."""
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Bye(Message):
    """Either side: the share ends cleanly."""

    TYPE: ClassVar[str] = "bye"
    reason: EndReason = EndReason.STOPPED


@dataclass(frozen=True, slots=True)
class Error(Message):
    """Either side: the last message could not be accepted; the session closes after this."""

    TYPE: ClassVar[str] = "error"
    LIMITS: ClassVar[dict[str, int]] = {"code": 32, "message": 512}
    code: str
    message: str


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Challenge,
        Pair,
        Welcome,
        Waiting,
        Denied,
        Offer,
        Answer,
        JoinRequest,
        JoinDecision,
        MediaState,
        Constraints,
        RoomControl,
        RoomState,
        Refused,
        Bye,
        Error,
    )
}

CONTROL_TYPES = frozenset({Constraints.TYPE, RoomControl.TYPE, RoomState.TYPE})
"""Session-control messages: refused (``refused``) rather than fatal when they cannot be accepted."""

VIDEO_KINDS = frozenset({"screen", "camera"})
TRACK_KINDS = VIDEO_KINDS | {"sound"}
"""The sources a media section can carry (values of ``Offer.tracks``): two video, one audio."""
