"""The media ladder on a real network: a sender in a namespace, a cloud and a box on the host's side of it.

Nothing tells the sender which way to go: with UDP open it shares peer to peer; with UDP blocked it climbs
to TURN over TCP, and with only the TLS ports open to TURN over TLS, by itself, and says which in the line
it prints. ``coalesce doctor`` shows every rung as tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coalesce_cloud.stack import LocalCloud
from coalesce_common.cloud.ladder import Ladder
from coalesce_testing.netns import Netns, run_command, tool
from tests.cloudlab import Admin, Box, linked_box
from tests.netshare import enrolled_sender, share_from_netns


def cloud_endpoints(cloud: LocalCloud, *, turn_tcp: bool) -> list[tuple[str, int]]:
    """The TCP endpoints a sender needs: the API, XMPP, TURN over TLS and (``turn_tcp``) TURN over TCP."""
    ports = [cloud.ports.api, cloud.ports.xmpp_starttls, cloud.ports.xmpp_tls, cloud.ports.turn_tls]
    if turn_tcp:
        ports.append(cloud.ports.turn)
    return [(cloud.host, port) for port in ports]


@contextlib.asynccontextmanager
async def no_udp_in(netns: Netns) -> AsyncIterator[None]:
    """No UDP reaches the namespace either (its firewall only stops what leaves it, and lets replies to
    what the host started back out): with it, no UDP passes either way, as with Wi-Fi client isolation."""
    nft = await asyncio.to_thread(tool, "nft", "nftables")
    table = "ladder_no_udp_in"
    script = (
        f"table inet {table} {{\n  chain input {{\n"
        "    type filter hook input priority filter; policy accept;\n    meta l4proto udp drop\n  }\n}\n"
    )
    await asyncio.to_thread(run_command, netns.exec_args([nft, "-f", "-"]), input=script)
    try:
        yield
    finally:
        await asyncio.to_thread(run_command, netns.exec_args([nft, "delete", "table", "inet", table]))


async def share_and_see_frames(netns: Netns, box: Box, env: dict[str, str], camera: Path) -> str:
    """Share from inside the namespace until the box shows the camera's frames; what the sender printed."""
    started = time.monotonic()
    sharing = asyncio.ensure_future(share_from_netns(netns, env, box.meeting_id, camera))
    arrived: BaseException | None = None
    try:
        await box.receiver.wait_for_shares(1, timeout=45)
        [shown] = box.receiver.model.shares
        sink = shown.tracks["camera"]
        await asyncio.wait_for(sink.wait_for_frames(1), 20)
        print(f"first frame at the box {time.monotonic() - started:.2f} s after `coalesce share` started")
    except (TimeoutError, AssertionError) as exc:
        arrived = exc
    rc, out, err = await sharing
    assert arrived is None, f"no frames at the box ({arrived!r}); the sender said: {out}{err}"
    assert rc == 0, err
    return out


async def test_with_udp_open_the_share_goes_peer_to_peer(
    netns: Netns, admin: Admin, box: Box, camera_file: Path, tmp_path: Path
) -> None:
    env = await enrolled_sender(admin, tmp_path)
    out = await share_and_see_frames(netns, box, env, camera_file)
    assert "(meeting " in out and "), peer to peer." in out, out


@pytest.mark.parametrize(
    ("turn_tcp", "path"),
    [
        (True, "relayed over TCP through the local relay."),
        (False, "relayed over TLS through the local relay."),
    ],
    ids=["udp-blocked", "only-tls-ports"],
)
async def test_with_udp_blocked_the_share_climbs_the_ladder_by_itself(
    netns: Netns, admin: Admin, box: Box, camera_file: Path, local_cloud: LocalCloud, tmp_path: Path,
    turn_tcp: bool, path: str,
) -> None:  # fmt: skip
    await asyncio.to_thread(netns.firewall, cloud_endpoints(local_cloud, turn_tcp=turn_tcp))
    env = await enrolled_sender(admin, tmp_path)
    out = await share_and_see_frames(netns, box, env, camera_file)
    assert path in out, out


async def test_doctor_shows_each_rung_of_the_ladder(
    netns: Netns, admin: Admin, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    await asyncio.to_thread(netns.firewall, cloud_endpoints(local_cloud, turn_tcp=False))
    env = await enrolled_sender(admin, tmp_path)
    args = netns.exec_args([sys.executable, "-m", "coalesce_client", "doctor"])
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    report = out.decode()
    assert "[FAIL] TURN local over UDP: no STUN answer: UDP is blocked" in report, report
    assert "[FAIL] TURN local over TCP: " in report, report
    assert "[ok  ] TURN local over TLS: relay allocated in " in report, report
    assert "[info] media to local: relayed over TLS through the local relay" in report, report
    assert proc.returncode == 1


def test_a_ladder_names_the_path_and_the_proxy() -> None:
    ladder = Ladder("eu", (), "tls", via="http://alice@proxy.corp:3128")
    assert ladder.relay_only
    assert ladder.relay_path() == "over TLS through the eu relay, via the proxy http://alice@proxy.corp:3128"


async def test_on_a_lan_without_udp_an_enrolled_laptop_shares_through_the_clouds_relay(
    netns: Netns, admin: Admin, camera_file: Path, local_cloud: LocalCloud, tmp_path: Path
) -> None:
    """Client isolation: the laptop reaches the box's TLS port, but no UDP passes (to anyone)."""
    async with linked_box(admin, tmp_path, host=netns.host_ip) as box, no_udp_in(netns):
        endpoints = [*cloud_endpoints(local_cloud, turn_tcp=True), (netns.host_ip, box.receiver.port)]
        await asyncio.to_thread(netns.firewall, endpoints)
        env = await enrolled_sender(admin, tmp_path)
        room = f"{netns.host_ip}:{box.receiver.port}"
        args = netns.exec_args(
            [
                sys.executable, "-m", "coalesce_client", "share", "--to", room, "--pin", "4821",
                "--no-screen", "--camera", str(camera_file), "--duration", "4",
                "--name", "Isolated laptop",
            ]
        )  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        try:
            await box.receiver.wait_for_shares(1, timeout=45)
            [shown] = box.receiver.model.shares
            assert shown.sender_name == "Isolated laptop"
        finally:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "relayed over TCP through the local relay." in out.decode(), out.decode()
