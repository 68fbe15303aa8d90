"""The state machine accepts the one legal conversation and refuses everything out of order."""

from __future__ import annotations

import pytest

from coalesce_common.errors import ProtocolError
from coalesce_common.protocol import (
    Answer,
    Bye,
    Challenge,
    Denied,
    DenyReason,
    Hello,
    Offer,
    Pair,
    Role,
    SessionState,
    SignalingSession,
    Welcome,
    encode,
)

SDP = "v=0\r\na=fingerprint:sha-256 AB:CD\r\n"
CONVERSATION = [
    Hello(v=1, sender_name="a", sender_id="b"),
    Challenge(v=1, receiver_name="r", receiver_id="i", pin_required=False),
    Pair(),
    Welcome(share_id="s"),
    Offer(sdp=SDP, tracks={"0": "screen"}),
    Answer(sdp=SDP),
]


def test_full_conversation_on_both_sides() -> None:
    sender, receiver = SignalingSession(Role.SENDER), SignalingSession(Role.RECEIVER)
    for message in CONVERSATION:
        src, dst = (sender, receiver) if isinstance(message, Hello | Pair | Offer) else (receiver, sender)
        assert dst.receive(src.send(message)) == message
    assert sender.state is receiver.state is SessionState.ACTIVE
    assert receiver.receive(sender.send(Bye())) == Bye()
    assert sender.state is receiver.state is SessionState.CLOSED


@pytest.mark.parametrize("message", [CONVERSATION[2], CONVERSATION[4]], ids=["pair", "offer"])
def test_receiver_refuses_out_of_order(message: Pair | Offer) -> None:
    receiver = SignalingSession(Role.RECEIVER)
    with pytest.raises(ProtocolError) as info:
        receiver.receive(encode(message))
    assert info.value.code == "out-of-order"
    assert receiver.state is SessionState.IDLE


def test_receiver_refuses_receiver_messages() -> None:
    receiver = SignalingSession(Role.RECEIVER)
    with pytest.raises(ProtocolError) as info:
        receiver.receive(encode(Welcome(share_id="x")))
    assert info.value.code == "wrong-direction"


def test_sender_cannot_send_receiver_messages() -> None:
    with pytest.raises(ProtocolError):
        SignalingSession(Role.SENDER).send(Answer(sdp=SDP))


def test_second_hello_is_out_of_order() -> None:
    receiver = SignalingSession(Role.RECEIVER)
    receiver.receive(encode(CONVERSATION[0]))
    with pytest.raises(ProtocolError):
        receiver.receive(encode(CONVERSATION[0]))


def test_denied_right_after_hello_closes() -> None:
    sender = SignalingSession(Role.SENDER)
    sender.send(CONVERSATION[0])
    sender.receive(encode(Denied(reason=DenyReason.FULL, message="full")))
    assert sender.state is SessionState.CLOSED
    with pytest.raises(ProtocolError):
        sender.send(Pair())
