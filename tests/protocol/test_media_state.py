"""The ``media`` message: which offered sections are live, and pause; legal only while sharing."""

from __future__ import annotations

import pytest

from coalesce_common.errors import ProtocolError
from coalesce_common.protocol import (
    Answer,
    Challenge,
    Hello,
    MediaState,
    Offer,
    Pair,
    Role,
    SessionState,
    SignalingSession,
    Welcome,
    encode,
    parse,
)


def active_pair() -> tuple[SignalingSession, SignalingSession]:
    sender, receiver = SignalingSession(Role.SENDER), SignalingSession(Role.RECEIVER)
    for message, (out, into) in [
        (Hello(v=1, sender_name="Ada", sender_id="a"), (sender, receiver)),
        (Challenge(v=1, receiver_name="Room", receiver_id="r", pin_required=False), (receiver, sender)),
        (Pair(), (sender, receiver)),
        (Welcome(share_id="s"), (receiver, sender)),
        (Offer(sdp="v=0", tracks={"0": "screen", "1": "camera"}), (sender, receiver)),
        (Answer(sdp="v=0"), (receiver, sender)),
    ]:
        into.receive(out.send(message))
    assert sender.state is receiver.state is SessionState.ACTIVE
    return sender, receiver


def test_media_state_round_trips_and_keeps_the_session_active() -> None:
    sender, receiver = active_pair()
    for state in (MediaState(screen=False, camera=True), MediaState(paused=True), MediaState()):
        assert receiver.receive(sender.send(state)) == state
        assert receiver.state is SessionState.ACTIVE
    assert parse(encode(MediaState(camera=True, paused=True))) == MediaState(camera=True, paused=True)


def test_media_state_before_sharing_is_out_of_order() -> None:
    receiver = SignalingSession(Role.RECEIVER)
    receiver.receive(SignalingSession(Role.SENDER).send(Hello(v=1, sender_name="Ada", sender_id="a")))
    with pytest.raises(ProtocolError) as caught:
        receiver.receive(encode(MediaState(camera=True)))
    assert caught.value.code == "out-of-order"


def test_only_a_sender_sends_media_state_and_its_fields_are_booleans() -> None:
    sender, receiver = active_pair()
    with pytest.raises(ProtocolError) as wrong_way:
        sender.receive(encode(MediaState()))
    assert wrong_way.value.code == "wrong-direction"
    with pytest.raises(ProtocolError) as malformed:
        receiver.receive('{"type": "media", "screen": "yes"}')
    assert malformed.value.code == "malformed"
