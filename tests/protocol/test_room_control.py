"""``room-control`` (a moderator steers the room's tiles) and ``room`` (what the moderator is told):
round trips, the states where they are legal, and a bad one refused while the share goes on."""

from __future__ import annotations

import json

import pytest

from coalesce_common.errors import ControlRefused, ProtocolError
from coalesce_common.protocol import (
    MAX_MESSAGE_SIZE,
    MediaState,
    Refused,
    Role,
    RoomCommand,
    RoomControl,
    RoomState,
    SessionState,
    SignalingSession,
    encode,
    parse,
)
from tests.protocol.test_media_state import active_pair

SWAP = RoomControl(command=RoomCommand.SWAP, tile=1, other=3)
ROOM = RoomState(
    names=("Ada", "Bob", "Cy"),
    paused=(False, True, False),
    spotlight=2,
    locked=True,
    waiting=("Dee",),
    waiting_ids=("r-7",),
    queued=1,
    sound=(True, False, True),
    audible=3,
)


def test_both_round_trip_while_sharing_and_keep_the_session_active() -> None:
    sender, receiver = active_pair()
    for whole_room in (RoomCommand.MUTE, RoomCommand.UNMUTE, RoomCommand.LISTEN, RoomCommand.GRID):
        command = RoomControl(command=whole_room)  # about the whole room: no tile
        assert receiver.receive(sender.send(command)) == command
    listen = RoomControl(command=RoomCommand.LISTEN, tile=2)
    assert receiver.receive(sender.send(listen)) == listen
    assert receiver.receive(sender.send(SWAP)) == SWAP
    assert sender.receive(receiver.send(ROOM)) == ROOM
    assert parse(encode(ROOM)) == ROOM and parse(encode(SWAP)) == SWAP
    assert sender.state is receiver.state is SessionState.ACTIVE


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        ({"command": "dance", "tile": 1}, "unknown value"),
        ({"command": "spotlight"}, "needs a tile"),
        ({"command": "stop", "tile": 0}, "needs a tile"),
        ({"command": "swap", "tile": 2}, "another tile to swap with"),
        ({"command": "spotlight", "tile": 5}, "between 0 and 4"),
        ({"command": "spotlight", "tile": "1"}, "must be an integer"),
        ({"command": "grid", "layout": "2x2"}, "unexpected field"),
    ],
)
def test_a_bad_room_control_is_refused_and_the_share_goes_on(wire: dict[str, object], why: str) -> None:
    sender, receiver = active_pair()
    with pytest.raises(ControlRefused) as caught:
        receiver.receive(json.dumps({"type": "room-control", **wire}))
    assert why in str(caught.value) and caught.value.message_type == "room-control"
    assert receiver.state is SessionState.ACTIVE
    answer = parse(receiver.send(receiver.refusal(caught.value)))
    assert isinstance(answer, Refused) and answer.refused == "room-control" and answer.code == "malformed"
    assert receiver.receive(sender.send(MediaState(paused=True))) == MediaState(paused=True)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"names": ["Ada"] * 5, "paused": [False] * 5}, "at most 4 items"),
        ({"names": ["A" * 65], "paused": [False]}, "longer than 64"),
        ({"names": ["Ada", "Bob"], "paused": [False]}, "each name needs its paused flag"),
        ({"sound": [True]}, "and sound flag"),
        ({"audible": 5}, "between 0 and 4"),
        ({"waiting_ids": []}, "each waiting sender its id"),
        ({"paused": [0, 1, 0]}, "must be a boolean"),
        ({"names": "Ada"}, "must be an array"),
        ({"names": [["Ada"]], "paused": [False]}, "must be a string"),
        ({"spotlight": 9}, "between 0 and 4"),
    ],
)
def test_a_bad_room_message_is_refused_by_the_moderator_and_the_share_goes_on(
    change: dict[str, object], why: str
) -> None:
    sender, receiver = active_pair()
    with pytest.raises(ControlRefused) as caught:
        sender.receive(json.dumps(json.loads(encode(ROOM)) | change))
    assert why in str(caught.value) and caught.value.message_type == "room"
    assert sender.state is SessionState.ACTIVE
    assert sender.receive(receiver.send(ROOM)) == ROOM


def test_each_goes_one_way_only() -> None:
    sender, receiver = active_pair()
    with pytest.raises(ControlRefused) as caught:
        sender.receive(encode(SWAP))  # a receiver never steers a sender's room
    assert caught.value.code == "wrong-direction"
    with pytest.raises(ControlRefused) as caught:
        receiver.receive(encode(ROOM))
    assert caught.value.code == "wrong-direction"
    with pytest.raises(ProtocolError):
        receiver.send(SWAP)
    assert sender.state is receiver.state is SessionState.ACTIVE


def test_a_room_control_before_the_share_is_running_ends_the_handshake() -> None:
    receiver = SignalingSession(Role.RECEIVER)
    with pytest.raises(ProtocolError) as caught:
        receiver.receive(encode(SWAP))
    assert not isinstance(caught.value, ControlRefused) and caught.value.code == "out-of-order"


def test_the_fullest_room_message_fits_the_size_limit() -> None:
    names = tuple("N" * 64 for _ in range(4))
    full = RoomState(names=names, paused=(True,) * 4, waiting=names * 4, waiting_ids=names * 4, queued=1024)
    assert len(encode(full).encode()) < MAX_MESSAGE_SIZE // 4
    assert parse(encode(full)) == full
