"""The Coalesce signaling protocol, sans-IO.

``messages`` defines every message as a frozen dataclass, ``codec`` turns them into JSON and back with
strict checks and a size limit, ``session`` is the state machine that says which message is legal
when, ``pairing`` is the PIN-keyed SPAKE2 exchange with its key confirmations, and ``sdp`` reads the
DTLS fingerprints that pairing vouches for. Nothing here touches a socket, a thread or the event loop;
transports in ``coalesce_common.signaling`` only move the bytes.

The conversation, over any transport::

    sender                               receiver
    hello(v, name, id)            ──▶
                                  ◀──    challenge(v, name, id, pin_required, spake)
    pair(spake, confirm, binding) ──▶
                                  ◀──    waiting(seconds): a moderated room decides first (optional)
                                  ◀──    welcome(share_id, confirm) | denied(reason, retry_after)
    offer(sdp, tracks, mac)       ──▶
                                  ◀──    answer(sdp, mac)
    ... media flows over DTLS-SRTP ...
    media(screen, camera, paused) ──▶            which sources are live now (any number of times)
                                  ◀──    constraints(track, max_width, max_height, max_fps,
                                                     max_bitrate, keyframe): what its tile needs
    room-control(command, tile, other) ──▶  a moderator: spotlight, grid, swap or stop numbered tiles
                                  ◀──    room(names, paused, spotlight, locked, waiting, ...): to a
                                         moderator, whenever the room changes
    refused(refused, code, message) ◀─▶  a session-control message was not accepted; the share goes on
    bye(reason)                   ◀─▶
    error(code, message)          ◀─▶    then the session closes
"""

from coalesce_common.protocol.codec import MAX_MESSAGE_SIZE, encode, parse
from coalesce_common.protocol.messages import (
    AccessMode,
    Answer,
    Bye,
    Challenge,
    Constraints,
    Denied,
    DenyReason,
    EndReason,
    Error,
    Hello,
    JoinDecision,
    JoinRequest,
    MediaState,
    Message,
    Offer,
    Pair,
    Refused,
    RoomCommand,
    RoomControl,
    RoomState,
    Waiting,
    Welcome,
)
from coalesce_common.protocol.messages import Role as SenderRole
from coalesce_common.protocol.session import Role, SessionState, SignalingSession

__all__ = [
    "MAX_MESSAGE_SIZE",
    "AccessMode",
    "Answer",
    "Bye",
    "Challenge",
    "Constraints",
    "Denied",
    "DenyReason",
    "EndReason",
    "Error",
    "Hello",
    "JoinDecision",
    "JoinRequest",
    "MediaState",
    "Message",
    "Offer",
    "Pair",
    "Refused",
    "Role",
    "RoomCommand",
    "RoomControl",
    "RoomState",
    "SenderRole",
    "SessionState",
    "SignalingSession",
    "Waiting",
    "Welcome",
    "encode",
    "parse",
]
