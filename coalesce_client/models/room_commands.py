"""What a moderator types at ``coalesce share --moderator``, and how the room is described back.

Pure: parsing a line and wording a ``room`` message; the CLI reads the lines and sends the commands.
Tiles are the numbers the room display shows on them (1-4 by arrival).
"""

from __future__ import annotations

from dataclasses import dataclass

from coalesce_common.protocol import RoomCommand, RoomState

HELP = (
    "Type: spotlight N, grid, swap N M, stop N (N: the number on a tile); listen N to hear that share's "
    "sound, mute, unmute; yes or no for the oldest sender waiting to share; room to see the room again."
)


@dataclass(frozen=True)
class Steer:
    """Change the room's layout (or stop a share)."""

    command: RoomCommand
    tile: int = 0
    other: int = 0


@dataclass(frozen=True)
class Answer:
    """Let the oldest waiting sender in, or turn it away."""

    approve: bool


@dataclass(frozen=True)
class ShowRoom:
    """Describe the room again."""


Command = Steer | Answer | ShowRoom

_TILE_COMMANDS = {
    "spotlight": RoomCommand.SPOTLIGHT,
    "stop": RoomCommand.STOP,
    "listen": RoomCommand.LISTEN,
}
_PLAIN_COMMANDS = {"grid": RoomCommand.GRID, "mute": RoomCommand.MUTE, "unmute": RoomCommand.UNMUTE}
_ANSWERS = {"yes": True, "y": True, "no": False, "n": False}


def parse_command(line: str) -> Command | str:
    """The command a line asks for, or a sentence saying what is wrong with it (and :data:`HELP`)."""
    words = line.lower().split()
    if not words:
        return HELP
    verb, numbers = words[0], words[1:]
    if verb in _ANSWERS and not numbers:
        return Answer(_ANSWERS[verb])
    if verb == "room" and not numbers:
        return ShowRoom()
    if verb in _PLAIN_COMMANDS and not numbers:
        return Steer(_PLAIN_COMMANDS[verb])
    tiles = [int(n) for n in numbers if n.isdigit() and 1 <= int(n) <= 4]
    if len(tiles) != len(numbers):
        return f"Tiles are numbered 1 to 4, as the room display shows them. {HELP}"
    if verb in _TILE_COMMANDS and len(tiles) == 1:
        return Steer(_TILE_COMMANDS[verb], tiles[0])
    if verb == "swap" and len(tiles) == 2:
        return Steer(RoomCommand.SWAP, tiles[0], tiles[1])
    return f"Not a command: {line.strip()[:40]!r}. {HELP}"


def describe_room(room_name: str, room: RoomState) -> str:
    """One line: ``Room 1: 1 Chair · 2 Ada (paused), 2 in the spotlight; waiting: Cy``."""
    tiles = [
        f"{number} {name}{' (paused)' if paused else ''}"
        for number, (name, paused) in enumerate(zip(room.names, room.paused, strict=True), start=1)
    ]
    line = f"{room_name}: {' · '.join(tiles) if tiles else 'no shares on screen'}"
    if room.spotlight:
        line += f", {room.spotlight} in the spotlight"
    if room.muted:
        line += ", sound muted"
    elif room.audible:
        line += f", the sound of {room.audible}"
    if room.queued:
        line += f", {room.queued} more connected (the room shows four)"
    if room.locked:
        line += ", locked (no new shares)"
    if room.waiting:
        line += f"; waiting to share: {', '.join(room.waiting)}"
    return line
