"""A share comes back after its network does: the laptop in a namespace, the room on the host's side.

A blackout (every packet dropped both ways) longer than either side's patience ends the connection; the
sender reconnects with the PIN it already has, and the room gives it the same tile, in the same place.
A blackout longer than the sender keeps trying ends the share, and both sides say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from coalesce_common.media.ice import set_host_addresses_policy
from coalesce_receiver.models.room import ShareView
from coalesce_receiver.services.receiver import Receiver
from coalesce_receiver.services.sink import TrackSink
from coalesce_testing.impair import ImpairedLink, Impairment
from coalesce_testing.netns import Netns, run_command, tool
from coalesce_testing.waiting import until
from tests import netlab
from tests.e2e.conftest import ReceiverFactory

PIN = "4821"
BLACKOUT = Impairment(loss_percent=100)


netns = netlab.netns  # a fixture


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


@contextlib.asynccontextmanager
async def blackout(netns: Netns) -> AsyncIterator[None]:
    """Every packet on the namespace's link dropped, both ways, while inside."""
    link = await asyncio.to_thread(ImpairedLink, netns, BLACKOUT)
    try:
        yield
    finally:
        await asyncio.to_thread(link.close)


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


async def test_a_blackout_longer_than_the_retries_ends_the_share_on_both_sides(
    netns: Netns, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    room = await open_room(netns, make_receiver, reconnect_window=15.0)  # as long as the sender tries
    sender = await laptop(netns, room, video_file(), "--duration", "200", "--reconnect-for", "15")
    try:
        await room.wait_for_shares(1, timeout=30)
        async with blackout(netns):
            out, err = await asyncio.wait_for(sender.communicate(), 90)
            await until(room.model, lambda: not room.model.shares, "the room to give the tile up", 30)
            assert room.model.notice is not None and "did not come back" in room.model.notice
    finally:
        if sender.returncode is None:
            sender.terminate()
            await sender.wait()
    said = out.decode()
    assert sender.returncode == 1
    assert "was lost and did not come back" in said, (said, err.decode())
    assert "Traceback" not in err.decode()


def move_address(netns: Netns) -> None:
    """The laptop gets another address on its network and loses the old one (as on a move to another
    Wi-Fi, or a VPN coming up); its default route stays."""
    ip, dev, new = tool("ip", "iproute2"), netns.ns_ifname, f"{netns.ns_ip.rsplit('.', 1)[0]}.3"
    inside = netns.exec_args
    run_command(inside([tool("sysctl", "procps"), "-qw", f"net.ipv4.conf.{dev}.promote_secondaries=1"]))
    run_command(inside([ip, "addr", "add", f"{new}/24", "dev", dev]))
    run_command(inside([ip, "addr", "del", f"{netns.ns_ip}/24", "dev", dev]))
    run_command(inside([ip, "route", "replace", "default", "via", netns.host_ip]))


async def test_a_new_address_on_the_laptop_brings_the_share_back_at_once(
    netns: Netns, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    room = await open_room(netns, make_receiver)
    sender = await laptop(netns, room, video_file(), "--duration", "60")
    try:
        await room.wait_for_shares(1, timeout=30)
        before = the_share(room)
        moved = time.monotonic()
        await asyncio.to_thread(move_address, netns)

        def back_from_the_new_address() -> bool:
            return one_share(room, reconnecting=False) and the_share(room).share_id != before.share_id

        # Well before either side could see the media fail (half a minute): the sender saw its address go.
        await until(room.model, back_from_the_new_address, "the share to come back from its new address", 15)
        await frames_flow(room, 10)
        print(f"frames again {time.monotonic() - moved:.1f} s after the address changed")
        assert the_share(room).sender_id == before.sender_id and room.model.placed_shares == [the_share(room)]
    finally:
        sender.terminate()
        out, err = await asyncio.wait_for(sender.communicate(), 30)
    said = out.decode()
    assert "was lost; reconnecting" in said and "Reconnected: sharing to" in said, (said, err.decode())
