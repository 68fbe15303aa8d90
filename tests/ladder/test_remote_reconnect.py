"""A share through the cloud comes back after a blackout, and finds its way again when it does.

The laptop shares to a meeting ID from a namespace, peer to peer. Its link then goes dark for 45 s, and
while it is dark the network changes: UDP is blocked both ways, only TCP to the cloud passes. When the link
returns the laptop logs in to XMPP again, climbs the ladder again (now to TURN over TCP), pairs with the
PIN it already has and gets its tile back, and says how its media goes now.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

from coalesce_cloud.stack import LocalCloud
from coalesce_receiver.services.sink import TrackSink
from coalesce_testing.netns import Netns, run_command, tool
from coalesce_testing.waiting import until
from tests.cloudlab import Admin, Box
from tests.ladder.test_ladder import cloud_endpoints, no_udp_in
from tests.netlab import blackout
from tests.netshare import PIN, enrolled_sender


def one_share(box: Box, *, reconnecting: bool) -> bool:
    shares = box.receiver.model.shares
    return (
        len(shares) == 1
        and shares[0].reconnecting is reconnecting
        and (reconnecting or bool(shares[0].tracks))
    )


async def frames_flow(box: Box, timeout: float) -> None:
    [shown] = box.receiver.model.shares
    sink = shown.tracks.get("camera")
    assert isinstance(sink, TrackSink)
    await asyncio.wait_for(sink.wait_for_frames(sink.frames + 5), timeout)


async def hotel_laptop(
    netns: Netns, box: Box, camera: Path, env: dict[str, str]
) -> asyncio.subprocess.Process:
    """``coalesce share`` to the box's meeting from inside the namespace, for up to 150 s."""
    args = netns.exec_args(
        [
            sys.executable, "-m", "coalesce_client", "share", "--meeting", box.meeting_id, "--pin", PIN,
            "--no-screen", "--camera", str(camera), "--duration", "150", "--name", "Hotel laptop",
        ]
    )  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )


async def test_a_remote_share_comes_back_after_45_s_and_climbs_the_ladder_again(
    netns: Netns, admin: Admin, box: Box, camera_file: Path, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    sender = await hotel_laptop(netns, box, camera_file, await enrolled_sender(admin, tmp_path))
    try:
        await until(box.receiver.model, lambda: one_share(box, reconnecting=False), "the share", 45)
        await frames_flow(box, 20)
        [before] = box.receiver.model.shares
        async with contextlib.AsyncExitStack() as changed_network:
            async with blackout(netns):
                started = time.monotonic()
                await until(
                    box.receiver.model,
                    lambda: one_share(box, reconnecting=True),
                    "the box to see the loss",
                    40,
                )
                [kept] = box.receiver.model.shares
                assert kept.share_id == before.share_id  # kept, marked, not removed
                # Meanwhile the network changes: no UDP passes any more, only TCP to the cloud leaves.
                await asyncio.to_thread(netns.firewall, cloud_endpoints(local_cloud, turn_tcp=True))
                await changed_network.enter_async_context(no_udp_in(netns))
                await asyncio.sleep(max(0.0, 45 - (time.monotonic() - started)))  # the blackout's length
            back = time.monotonic()
            await until(
                box.receiver.model, lambda: one_share(box, reconnecting=False), "the share's return", 30
            )
            await frames_flow(box, 10)
            print(f"frames again {time.monotonic() - back:.1f} s after the link came back")
            [shown] = box.receiver.model.shares
            assert shown.sender_name == "Hotel laptop" and shown.sender_id == before.sender_id  # its tile
            assert box.receiver.model.placed_shares == [shown]
    finally:
        sender.terminate()
        out, err = await asyncio.wait_for(sender.communicate(), 30)
    said = out.decode()
    assert f"(meeting {box.meeting_id}), peer to peer." in said, (said, err.decode())
    assert f"The connection to meeting {box.meeting_id} was lost; reconnecting" in said, said
    assert (
        f"Reconnected: sharing to meeting {box.meeting_id} again, relayed over TCP through the local relay."
        in said
    ), (said, err.decode())
    assert "Traceback" not in err.decode()


def network_gone(netns: Netns, gone: bool) -> None:
    """The laptop's network goes away (no address, no route: connections fail at once), or comes back."""
    ip, dev, inside = tool("ip", "iproute2"), netns.ns_ifname, netns.exec_args
    if gone:
        run_command(inside([ip, "addr", "flush", "dev", dev]))
    else:
        run_command(inside([ip, "addr", "add", f"{netns.ns_ip}/24", "dev", dev]))
        run_command(inside([ip, "route", "replace", "default", "via", netns.host_ip]))


async def test_a_remote_share_keeps_trying_while_the_laptop_has_no_network_at_all(
    netns: Netns, admin: Admin, box: Box, camera_file: Path, tmp_path: Path
) -> None:
    """Connections that fail at once (no route) are retried like those that time out, not taken for a
    refusal."""
    sender = await hotel_laptop(netns, box, camera_file, await enrolled_sender(admin, tmp_path))
    try:
        await until(box.receiver.model, lambda: one_share(box, reconnecting=False), "the share", 45)
        await frames_flow(box, 20)
        [before] = box.receiver.model.shares
        await asyncio.to_thread(network_gone, netns, True)
        try:
            await until(box.receiver.model, lambda: one_share(box, reconnecting=True), "the loss", 40)
            ended = asyncio.ensure_future(sender.wait())
            done, _ = await asyncio.wait({ended}, timeout=8)  # attempts failing at once, several of them
            assert not done, "the share ended while the laptop had no network"
            ended.cancel()
        finally:
            await asyncio.to_thread(network_gone, netns, False)
        await until(box.receiver.model, lambda: one_share(box, reconnecting=False), "the share's return", 30)
        [shown] = box.receiver.model.shares
        assert shown.sender_id == before.sender_id
        await frames_flow(box, 10)
    finally:
        if sender.returncode is None:
            sender.terminate()
        out, err = await asyncio.wait_for(sender.communicate(), 30)
    assert "Reconnected: sharing to meeting" in out.decode(), (out.decode(), err.decode())
