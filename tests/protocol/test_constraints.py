"""The ``constraints`` message (what the room's tile needs) and ``refused``: a bad session-control message
is refused and the session goes on."""

from __future__ import annotations

import json

import pytest

from coalesce_common.errors import ControlRefused, ProtocolError
from coalesce_common.protocol import (
    Constraints,
    MediaState,
    Refused,
    Role,
    SessionState,
    SignalingSession,
    encode,
    parse,
)
from tests.protocol.test_media_state import active_pair

GRID = Constraints(
    track="screen", max_width=960, max_height=540, max_fps=30, max_bitrate=1_555_200, keyframe=True
)


def test_constraints_round_trip_and_keep_the_session_active() -> None:
    sender, receiver = active_pair()
    assert sender.receive(receiver.send(GRID)) == GRID
    assert parse(encode(GRID)) == GRID
    assert sender.state is receiver.state is SessionState.ACTIVE
    refusal = Refused(refused="constraints", code="malformed", message="no")
    assert receiver.receive(sender.send(refusal)) == refusal
    assert receiver.state is SessionState.ACTIVE


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"max_width": 8}, "between 16 and 7680"),
        ({"max_height": 100_000}, "between 16 and 4320"),
        ({"max_fps": 0}, "between 1 and 120"),
        ({"max_bitrate": 10**12}, "between"),
        ({"max_width": "wide"}, "must be an integer"),
        ({"track": "speaker"}, "unknown track"),
        ({"extra": 1}, "unexpected field"),
    ],
)
def test_a_bad_constraints_message_is_refused_and_the_share_goes_on(
    change: dict[str, object], why: str
) -> None:
    sender, receiver = active_pair()
    wire = json.loads(encode(GRID)) | change
    with pytest.raises(ControlRefused) as caught:
        sender.receive(json.dumps(wire))
    assert why in str(caught.value) and caught.value.message_type == "constraints"
    assert sender.state is SessionState.ACTIVE
    answer = parse(sender.send(sender.refusal(caught.value)))
    assert isinstance(answer, Refused) and answer.refused == "constraints" and answer.code == "malformed"
    # ... and the share goes on: the next good messages are taken
    assert sender.receive(receiver.send(GRID)) == GRID
    assert receiver.receive(sender.send(MediaState(paused=True))) == MediaState(paused=True)


def test_constraints_from_a_sender_are_refused_not_fatal() -> None:
    _, receiver = active_pair()
    with pytest.raises(ControlRefused) as caught:
        receiver.receive(encode(GRID))
    assert caught.value.code == "wrong-direction"
    assert receiver.state is SessionState.ACTIVE


def test_constraints_before_the_share_is_running_end_the_handshake() -> None:
    sender = SignalingSession(Role.SENDER)
    sender.send(parse('{"type": "hello", "v": 1, "sender_name": "Ada", "sender_id": "a"}'))
    with pytest.raises(ProtocolError) as caught:
        sender.receive(encode(GRID))
    assert not isinstance(caught.value, ControlRefused) and caught.value.code == "out-of-order"


def test_other_bad_messages_stay_fatal_while_sharing() -> None:
    sender, _ = active_pair()
    with pytest.raises(ProtocolError) as caught:
        sender.receive('{"type": "media", "screen": "yes"}')  # wrong direction and malformed: not control
    assert not isinstance(caught.value, ControlRefused)
    with pytest.raises(ProtocolError) as unknown:
        sender.receive('{"type": "layout", "spotlight": "x"}')
    assert not isinstance(unknown.value, ControlRefused) and unknown.value.code == "unknown-type"
