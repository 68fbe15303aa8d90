"""A share comes back after its network does: the laptop in a namespace, the room on the host's side.

A blackout (every packet dropped both ways) longer than either side's patience ends the connection; the
sender reconnects with the PIN it already has, and the room gives it the same tile, in the same place.
A blackout longer than the sender keeps trying ends the share, and both sides say so; a short one or a
lossy link does not end it. A laptop that moves to another network comes back from there at once.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from coalesce_common.media.ice import set_host_addresses_policy
from coalesce_receiver.models.room import ShareView
from coalesce_receiver.services.receiver import Receiver
from coalesce_receiver.services.sink import TrackSink
from coalesce_testing.impair import ImpairedLink, Impairment
from coalesce_testing.netns import Netns
from coalesce_testing.waiting import until
from tests import netlab
from tests.e2e.conftest import ReceiverFactory

PIN = "4821"
netns = netlab.netns  # a fixture
blackout = netlab.blackout


async def open_room(netns: Netns, make_receiver: ReceiverFactory, **config: float) -> Receiver:
    """A room on the host's side of the namespace's link, its media there too."""
    set_host_addresses_policy(include_loopback=False, only=[netns.host_ip])
    return await make_receiver(pin=PIN, host=netns.host_ip, **config)


async def laptop(netns: Netns, room: Receiver, camera: Path, *extra: str) -> asyncio.subprocess.Process:
    args = netns.exec_args(
        [
            sys.executable, "-m", "coalesce_client", "share", "--to", f"{netns.host_ip}:{room.port}",
            "--pin", PIN, "--no-screen", "--camera", str(camera), "--name", "Laptop", *extra,
        ]
    )  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


def the_share(room: Receiver) -> ShareView:
    [share] = room.model.shares
    return share


def one_share(room: Receiver, *, reconnecting: bool) -> bool:
    shares = room.model.shares
    return (
        len(shares) == 1
        and shares[0].reconnecting is reconnecting
        and (reconnecting or bool(shares[0].tracks))
    )


async def frames_flow(room: Receiver, timeout: float) -> None:
    """The room's (only) tile gets new frames."""
    sink = the_share(room).tracks.get("camera")
    assert isinstance(sink, TrackSink)
    await asyncio.wait_for(sink.wait_for_frames(sink.frames + 5), timeout)


async def test_a_share_comes_back_to_its_tile_after_a_45_s_blackout(
    netns: Netns, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    room = await open_room(netns, make_receiver)
    sender = await laptop(netns, room, video_file(), "--duration", "120")
    try:
        await room.wait_for_shares(1, timeout=30)
        before = the_share(room)
        async with blackout(netns):
            started = time.monotonic()
            await until(
                room.model, lambda: one_share(room, reconnecting=True), "the room to see the loss", 40
            )
            assert the_share(room).share_id == before.share_id  # kept, marked, not removed
            await asyncio.sleep(max(0.0, 45 - (time.monotonic() - started)))  # the blackout's length
        back = time.monotonic()
        await until(room.model, lambda: one_share(room, reconnecting=False), "the share to come back", 30)
        await frames_flow(room, 10)
        print(f"frames again {time.monotonic() - back:.1f} s after the link came back")
        share = the_share(room)
        assert (
            share.sender_name == "Laptop" and share.sender_id == before.sender_id
        )  # its tile, not a new one
        assert room.model.placed_shares == [share]
    finally:
        sender.terminate()
        out, err = await asyncio.wait_for(sender.communicate(), 30)
    said = out.decode()
    assert "was lost; reconnecting" in said and "Reconnected: sharing to" in said, (said, err.decode())


@pytest.mark.timeout(240)  # two minutes of patience on each side, and the share before them
async def test_a_three_minute_blackout_ends_the_share_on_both_sides(
    netns: Netns, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    """With the default patience (two minutes each side) both ends give up while the link is still dark;
    the test stops there rather than wait out the third minute, which could change nothing."""
    room = await open_room(netns, make_receiver)
    sender = await laptop(netns, room, video_file(), "--duration", "400")
    try:
        await room.wait_for_shares(1, timeout=30)
        async with blackout(netns):
            dark = time.monotonic()
            out, err = await asyncio.wait_for(sender.communicate(), 170)
            await until(
                room.model,
                lambda: not room.model.shares,
                "the room to give the tile up",
                170 - (time.monotonic() - dark),
            )
            print(f"both sides gave up {time.monotonic() - dark:.0f} s into the blackout")
            assert room.model.notice is not None and "did not come back" in room.model.notice
    finally:
        if sender.returncode is None:
            sender.terminate()
            await sender.wait()
    said = out.decode()
    assert sender.returncode == 1
    assert "was lost and did not come back" in said, (said, err.decode())
    assert "Traceback" not in err.decode()


async def test_a_5_s_blackout_leaves_the_share_on_its_tile(
    netns: Netns, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    room = await open_room(netns, make_receiver)
    sender = await laptop(netns, room, video_file(), "--duration", "60")
    try:
        await room.wait_for_shares(1, timeout=30)
        await frames_flow(room, 10)
        before = the_share(room)
        async with blackout(netns):
            await asyncio.sleep(5)  # the blackout's length, not a wait for anything
        back = time.monotonic()
        await until(room.model, lambda: one_share(room, reconnecting=False), "the share on its tile", 10)
        await frames_flow(room, 5)
        print(f"frames again {time.monotonic() - back:.1f} s after a 5 s blackout")
        assert the_share(room).sender_id == before.sender_id and room.model.placed_shares == [the_share(room)]
    finally:
        sender.terminate()
        _out, err = await asyncio.wait_for(sender.communicate(), 30)
    assert "Traceback" not in err.decode(), err.decode()


async def test_a_lossy_link_is_not_taken_for_a_lost_one(
    netns: Netns, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    """20 % of packets lost each way for 20 s: the share goes on (the watchdog hears the room's reports)."""
    room = await open_room(netns, make_receiver)
    sender = await laptop(netns, room, video_file(), "--duration", "60")
    marked: list[bool] = []
    unsubscribe = room.model.subscribe(lambda: marked.append(any(s.reconnecting for s in room.model.shares)))
    try:
        await room.wait_for_shares(1, timeout=30)
        before = the_share(room)
        link = await asyncio.to_thread(ImpairedLink, netns, Impairment(loss_percent=20))
        try:
            await asyncio.sleep(20)  # how long the loss lasts, not a wait for anything
        finally:
            await asyncio.to_thread(link.close)
        await frames_flow(room, 10)
        assert the_share(room).share_id == before.share_id  # the same connection all along
        assert not any(marked)
    finally:
        unsubscribe()
        sender.terminate()
        out, _err = await asyncio.wait_for(sender.communicate(), 30)
    assert "was lost" not in out.decode(), out.decode()


async def test_moving_the_laptop_to_another_network_brings_the_share_back_at_once(
    netns: Netns, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    """The laptop has two networks (Wi-Fi and Ethernet: two veths); the one it shares over goes away."""
    second = await asyncio.to_thread(netns.add_link)
    room = await open_room(netns, make_receiver)
    sender = await laptop(netns, room, video_file(), "--duration", "60")
    try:
        await room.wait_for_shares(1, timeout=30)
        before = the_share(room)
        moved = time.monotonic()
        await asyncio.to_thread(netns.move_to, second)

        def back_from_the_new_address() -> bool:
            return one_share(room, reconnecting=False) and the_share(room).share_id != before.share_id

        # Before the media watchdog would see the silence (MEDIA_SILENCE, 6 s): the sender saw its address go.
        await until(room.model, back_from_the_new_address, "the share to come back from its new address", 5)
        await frames_flow(room, 10)
        print(f"frames again {time.monotonic() - moved:.1f} s after the laptop moved to its other network")
        assert the_share(room).sender_id == before.sender_id and room.model.placed_shares == [the_share(room)]
    finally:
        sender.terminate()
        out, err = await asyncio.wait_for(sender.communicate(), 30)
    said = out.decode()
    assert "was lost; reconnecting" in said and "Reconnected: sharing to" in said, (said, err.decode())
