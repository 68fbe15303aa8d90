"""The moderator's typed commands and the room line the CLI prints."""

from __future__ import annotations

import pytest

from coalesce_client.models.room_commands import (
    HELP,
    Answer,
    ShowRoom,
    Steer,
    describe_room,
    parse_command,
)
from coalesce_common.protocol import RoomCommand, RoomState


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("spotlight 2", Steer(RoomCommand.SPOTLIGHT, 2)),
        ("  Spotlight   4 ", Steer(RoomCommand.SPOTLIGHT, 4)),
        ("grid", Steer(RoomCommand.GRID)),
        ("swap 1 3", Steer(RoomCommand.SWAP, 1, 3)),
        ("stop 1", Steer(RoomCommand.STOP, 1)),
        ("listen 3", Steer(RoomCommand.LISTEN, 3)),
        ("mute", Steer(RoomCommand.MUTE)),
        ("Unmute", Steer(RoomCommand.UNMUTE)),
        ("yes", Answer(True)),
        ("n", Answer(False)),
        ("room", ShowRoom()),
    ],
)
def test_commands_are_understood(line: str, command: object) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("", HELP),
        ("spotlight 5", "numbered 1 to 4"),
        ("stop -1", "numbered 1 to 4"),
        ("swap 2", "Not a command"),
        ("dance", "Not a command: 'dance'"),
        ("grid 2", "Not a command"),
        ("mute 2", "Not a command"),
        ("listen", "Not a command"),
    ],
)
def test_anything_else_gets_a_sentence_with_the_help(line: str, says: str) -> None:
    answer = parse_command(line)
    assert isinstance(answer, str) and says in answer and HELP in answer


def test_the_room_line_names_tiles_by_number() -> None:
    room = RoomState(
        names=("Chair", "Ada"), paused=(False, True), spotlight=2, waiting=("Cy",), waiting_ids=("r1",)
    )
    assert describe_room("Room 1", room) == (
        "Room 1: 1 Chair · 2 Ada (paused), 2 in the spotlight; waiting to share: Cy"
    )
    assert describe_room("Room 1", RoomState(names=("Chair", "Ada"), paused=(False, False), audible=2)) == (
        "Room 1: 1 Chair · 2 Ada, the sound of 2"
    )
    assert describe_room("Room 1", RoomState(names=("Ada",), paused=(False,), audible=1, muted=True)) == (
        "Room 1: 1 Ada, sound muted"
    )
    assert describe_room("Room 1", RoomState(locked=True)) == (
        "Room 1: no shares on screen, locked (no new shares)"
    )
