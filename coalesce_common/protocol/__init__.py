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
                                  ◀──    welcome(share_id, confirm) | denied(reason, retry_after)
    offer(sdp, tracks, mac)       ──▶
                                  ◀──    answer(sdp, mac)
    ... media flows over DTLS-SRTP ...
    media(screen, camera, paused) ──▶            which sources are live now (any number of times)
    bye(reason)                   ◀─▶
    error(code, message)          ◀─▶    then the session closes
"""

from coalesce_common.protocol.codec import MAX_MESSAGE_SIZE, encode, parse
from coalesce_common.protocol.messages import (
    Answer,
    Bye,
    Challenge,
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
    Welcome,
)
from coalesce_common.protocol.messages import Role as SenderRole
from coalesce_common.protocol.session import Role, SessionState, SignalingSession

__all__ = [
    "MAX_MESSAGE_SIZE",
    "Answer",
    "Bye",
    "Challenge",
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
    "Role",
    "SenderRole",
    "SessionState",
    "SignalingSession",
    "Welcome",
    "encode",
    "parse",
]
