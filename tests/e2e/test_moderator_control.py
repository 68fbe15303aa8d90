"""A moderator sender steers the room: it is told what is on screen and who waits, and it spotlights,
swaps, stops and goes back to the grid by tile number, over real TLS signaling to a real receiver."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.errors import ProtocolError
from coalesce_common.protocol import EndReason, RoomCommand, RoomState
from coalesce_testing.waiting import until
from tests.e2e.conftest import ReceiverFactory

PIN, MODERATOR_PIN = "4821", "909090"


class RoomSeen:
    """What the moderator's app has been told, observable for :func:`until`."""

    def __init__(self, share: Share) -> None:
        self.room = RoomState()
        self.refusals: list[str] = []
        self._listeners: list[Callable[[], None]] = []
        share.watch_room(self._told, self._refused)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _told(self, room: RoomState) -> None:
        self.room = room
        for listener in list(self._listeners):
            listener()

    def _refused(self, why: str) -> None:
        self.refusals.append(why)
        self._told(self.room)


def options(video: Path, name: str, *, moderator: bool = False) -> ShareOptions:
    pin = MODERATOR_PIN if moderator else PIN
    return ShareOptions(sender_name=name, pin=pin, screen=None, camera=str(video), moderator=moderator)


async def test_a_moderator_sees_the_room_and_spotlights_swaps_stops_and_returns_to_the_grid(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    answers: asyncio.Queue[asyncio.Future[bool]] = asyncio.Queue()

    async def ask(sender_name: str) -> bool:
        answer = asyncio.get_running_loop().create_future()
        await answers.put(answer)
        return await answer

    async with Share(target, options(video, "Chair", moderator=True), on_join_request=ask) as chair:
        seen = RoomSeen(chair)
        await until(seen, lambda: seen.room.names == ("Chair",), "the moderator is told it is on screen")
        ada = asyncio.ensure_future(Share(target, options(video, "Ada")).start())
        await until(seen, lambda: seen.room.waiting == ("Ada",), "the moderator sees Ada waiting")
        (await answers.get()).set_result(True)
        await asyncio.wait_for(ada, 20)
        bob = Share(target, options(video, "Bob"))
        bob_joined = asyncio.ensure_future(bob.start())
        (await answers.get()).set_result(True)
        await asyncio.wait_for(bob_joined, 20)
        await until(seen, lambda: seen.room.names == ("Chair", "Ada", "Bob"), "three tiles, by number")
        assert seen.room.waiting == () and seen.room.paused == (False, False, False)
        ada_id, bob_id = (s.share_id for s in receiver.model.shown_shares[1:])

        await chair.control_room(RoomCommand.SPOTLIGHT, 2)
        await until(seen, lambda: seen.room.spotlight == 2, "Ada in the spotlight")
        assert receiver.model.spotlit == ada_id

        await chair.control_room(RoomCommand.SWAP, 1, 3)
        await until(receiver.model, lambda: receiver.model.placed_shares[0].share_id == ada_id, "swapped")
        await chair.control_room(RoomCommand.GRID)
        await until(seen, lambda: seen.room.spotlight == 0, "back to the grid")
        assert [s.sender_name for s in receiver.model.placed_shares] == ["Bob", "Ada", "Chair"]

        await chair.control_room(RoomCommand.SPOTLIGHT, 4)  # no fourth tile
        await until(seen, lambda: bool(seen.refusals), "the room says why it did nothing")
        assert seen.refusals == ["Room 1 did not do that: the room shows no share 4."]

        await chair.control_room(RoomCommand.STOP, 3)
        assert await asyncio.wait_for(bob.wait_ended(), 20) is EndReason.DROPPED_BY_ROOM
        await until(seen, lambda: seen.room.names == ("Chair", "Ada"), "Bob's tile is gone")
        assert receiver.model.number_of(ada_id) == 2 and bob_id not in [
            s.share_id for s in receiver.model.shares
        ]


async def test_a_presenter_cannot_steer_the_room_and_its_share_goes_on(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN)
    video = video_file()
    async with Share(ShareTarget("127.0.0.1", receiver.port), options(video, "Ada")) as ada:
        seen = RoomSeen(ada)
        await ada.control_room(RoomCommand.STOP, 1)
        await until(seen, lambda: bool(seen.refusals), "the room refuses")
        assert seen.refusals == ["Room 1 did not do that: only the room's moderator may change its layout."]
        assert seen.room == RoomState()  # a presenter is never told the room's state
        assert [s.sender_name for s in receiver.model.shares] == ["Ada"] and ada.end_reason is None
        await ada.control_room(RoomCommand.GRID)  # and may still send: the share is running


async def test_a_command_before_the_share_runs_is_an_error_at_the_sender(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN)
    share = Share(ShareTarget("127.0.0.1", receiver.port), options(video_file(), "Ada"))
    with pytest.raises(ProtocolError) as caught:
        await share.control_room(RoomCommand.GRID)
    assert caught.value.code == "not-running"


async def said(proc: asyncio.subprocess.Process, words: str) -> str:
    """Read the CLI's output until a line with ``words``; return that line."""
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, f"the CLI ended before it said {words!r}"
        if words in line:
            return line.strip()


async def test_coalesce_share_moderator_lets_in_and_steers_the_room_from_typed_commands(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    video = video_file()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "coalesce_client", "share", "--moderator", "--name", "Chair"),
        *(
            "--to",
            f"127.0.0.1:{receiver.port}",
            "--pin",
            MODERATOR_PIN,
            "--no-screen",
            "--camera",
            str(video),
        ),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COALESCE_ICE_HOST_ADDRESSES": "127.0.0.1"},
    )
    assert proc.stdin is not None

    async def type_(line: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(f"{line}\n".encode())
        await proc.stdin.drain()

    ada = Share(ShareTarget("127.0.0.1", receiver.port), options(video, "Ada"))
    try:
        await said(proc, "You are the moderator of Room 1.")
        assert await said(proc, "Room 1: ") == "Room 1: 1 Chair"
        joining = asyncio.ensure_future(ada.start())
        await said(proc, "Ada wants to share. Type yes")
        await type_("yes")
        await asyncio.wait_for(joining, 20)
        assert await said(proc, "Room 1: 1 Chair · 2 Ada") == "Room 1: 1 Chair · 2 Ada"
        await type_("spotlight 2")
        assert await said(proc, "spotlight") == "Room 1: 1 Chair · 2 Ada, 2 in the spotlight"
        assert receiver.model.spotlit == receiver.model.shown_shares[1].share_id
        await type_("spotlight 3")
        assert await said(proc, "did not do that") == "Room 1 did not do that: the room shows no share 3."
        await type_("dance")
        await said(proc, "Not a command: 'dance'.")
        await type_("stop 2")
        assert await asyncio.wait_for(ada.wait_ended(), 20) is EndReason.DROPPED_BY_ROOM
        assert await said(proc, "Room 1: ") == "Room 1: 1 Chair"
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        assert b"Share stopped." in out
    finally:
        await ada.stop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
