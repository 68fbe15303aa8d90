"""The signaling session state machine, shared by sender and receiver.

One table says which message moves the session from which state to which; it is the same for both
roles because every message has one direction (``bye``, ``error`` and ``refused`` go both ways).
``receive`` parses and checks an incoming message, ``send`` checks and encodes an outgoing one; both raise
:class:`ProtocolError` for a message that is not legal now and leave the state untouched. For a
session-control message (``constraints``, ``room-control``, ``room``) that
:meth:`SignalingSession.receive` cannot accept it raises :class:`ControlRefused` instead: the caller
answers with :meth:`SignalingSession.refusal` and goes on.
"""

from __future__ import annotations

import enum
import logging

from coalesce_common.errors import ControlRefused, ProtocolError
from coalesce_common.protocol.codec import MAX_MESSAGE_SIZE, encode, parse
from coalesce_common.protocol.messages import (
    CONTROL_TYPES,
    Answer,
    Bye,
    Challenge,
    Constraints,
    Denied,
    Error,
    Hello,
    JoinDecision,
    JoinRequest,
    MediaState,
    Message,
    Offer,
    Pair,
    Refused,
    RoomControl,
    RoomState,
    Waiting,
    Welcome,
)

logger = logging.getLogger(__name__)


class Role(enum.Enum):
    SENDER = "sender"
    RECEIVER = "receiver"


class SessionState(enum.Enum):
    IDLE = "idle"
    HELLO = "hello"  # hello sent/received, challenge pending
    PAIRING = "pairing"  # challenge sent/received, pair pending
    CONFIRMING = "confirming"  # pair sent/received, welcome or denied pending
    PAIRED = "paired"  # offer pending
    OFFERED = "offered"  # answer pending
    ACTIVE = "active"  # media flowing
    CLOSED = "closed"


_FROM_SENDER: frozenset[type[Message]] = frozenset(
    {Hello, Pair, Offer, JoinDecision, MediaState, RoomControl}
)
_FROM_RECEIVER: frozenset[type[Message]] = frozenset(
    {Challenge, Waiting, Welcome, Denied, Answer, JoinRequest, Constraints, RoomState}
)

_TRANSITIONS: dict[tuple[SessionState, type[Message]], SessionState] = {
    (SessionState.IDLE, Hello): SessionState.HELLO,
    (SessionState.HELLO, Challenge): SessionState.PAIRING,
    (SessionState.HELLO, Denied): SessionState.CLOSED,  # full, throttled or wrong version: no challenge
    (SessionState.PAIRING, Pair): SessionState.CONFIRMING,
    (SessionState.CONFIRMING, Waiting): SessionState.CONFIRMING,  # a moderated room decides first
    (SessionState.CONFIRMING, Welcome): SessionState.PAIRED,
    (SessionState.CONFIRMING, Denied): SessionState.CLOSED,
    (SessionState.PAIRED, Offer): SessionState.OFFERED,
    (SessionState.OFFERED, Answer): SessionState.ACTIVE,
    # moderation runs over a moderator's active session; the receiver checks who may send a decision
    (SessionState.ACTIVE, JoinRequest): SessionState.ACTIVE,
    (SessionState.ACTIVE, JoinDecision): SessionState.ACTIVE,
    # the sender says which sources are live (camera on/off, pause) while sharing
    (SessionState.ACTIVE, MediaState): SessionState.ACTIVE,
    # the room tells the sender what each source's tile needs; a refusal of either keeps the share
    (SessionState.ACTIVE, Constraints): SessionState.ACTIVE,
    (SessionState.ACTIVE, Refused): SessionState.ACTIVE,
    # a moderator steers the room's layout, and is told how it looks (the receiver checks who may)
    (SessionState.ACTIVE, RoomControl): SessionState.ACTIVE,
    (SessionState.ACTIVE, RoomState): SessionState.ACTIVE,
}


class SignalingSession:
    """Which message is legal when, for one side of one session."""

    def __init__(self, role: Role, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.role = role
        self.max_size = max_size
        self._state = SessionState.IDLE

    @property
    def state(self) -> SessionState:
        return self._state

    def receive(self, data: str | bytes) -> Message:
        """Parse ``data`` from the peer and advance; raise :class:`ProtocolError` if it is not legal now
        (:class:`ControlRefused` for a session-control message: the session stays as it was)."""
        if self._state is SessionState.CLOSED:
            raise ProtocolError("the session is closed", code="closed")
        try:
            message = parse(data, self.max_size)
            outgoing = _FROM_SENDER if self.role is Role.SENDER else _FROM_RECEIVER
            if type(message) in outgoing:
                error = ProtocolError(
                    f"a {self.role.value} does not accept {message.TYPE!r}", code="wrong-direction"
                )
                error.message_type = message.TYPE
                raise error
            self._advance(message)
        except ProtocolError as exc:
            if exc.message_type in CONTROL_TYPES and self._state is SessionState.ACTIVE:
                refused = ControlRefused(str(exc), code=exc.code)
                refused.message_type = exc.message_type
                raise refused from exc
            raise
        return message

    def refusal(self, exc: ControlRefused) -> Refused:
        """The ``refused`` answer to a session-control message :meth:`receive` could not accept."""
        return Refused(refused=exc.message_type or "", code=exc.code, message=str(exc)[:512])

    def send(self, message: Message) -> str:
        """Advance for ``message`` going to the peer and return its wire form."""
        incoming = _FROM_RECEIVER if self.role is Role.SENDER else _FROM_SENDER
        if type(message) in incoming:
            raise ProtocolError(f"a {self.role.value} cannot send {message.TYPE!r}", code="wrong-direction")
        if self._state is SessionState.CLOSED:
            raise ProtocolError("the session is closed", code="closed")
        self._advance(message)
        return encode(message)

    def close(self) -> None:
        self._set_state(SessionState.CLOSED)

    def _advance(self, message: Message) -> None:
        if isinstance(message, Bye | Error):
            self._set_state(SessionState.CLOSED)
            return
        new = _TRANSITIONS.get((self._state, type(message)))
        if new is None:
            error = ProtocolError(
                f"{message.TYPE!r} is not expected in state {self._state.value!r}", code="out-of-order"
            )
            error.message_type = message.TYPE
            raise error
        self._set_state(new)

    def _set_state(self, state: SessionState) -> None:
        if state is not self._state:
            logger.debug("%s session %s -> %s", self.role.value, self._state.value, state.value)
            self._state = state
