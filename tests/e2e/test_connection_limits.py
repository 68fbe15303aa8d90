"""Connection limits on a real receiver: a flood is refused or shed, and the room's shares go on.

Strangers come from other addresses in 127.0.0.0/8 than the legitimate sender (127.0.0.1), as they would
from other machines on the LAN.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import json
import logging
import os
import resource
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake
from websockets.protocol import State

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.signaling.admission import DEFAULT_PER_SOURCE, MAX_CLOSING
from coalesce_common.signaling.websocket import SIGNALING_PATH
from coalesce_receiver.services.receiver import Receiver
from tests.e2e.conftest import ReceiverFactory, eventually, tls_client_context
from tests.e2e.test_hostile_peers import good_share_streams

PIN = "4821"
REFUSED = (OSError, InvalidHandshake, EOFError)
"""What a refused connection looks like to its client: reset during the TLS handshake."""


async def stranger(port: int, source: str) -> ClientConnection:
    """A WebSocket from ``source`` that completes TLS and the upgrade, then never says hello."""
    return await ws_connect(
        f"wss://127.0.0.1:{port}{SIGNALING_PATH}",
        ssl=tls_client_context(),
        proxy=None,
        open_timeout=10,
        local_addr=(source, 0),
    )


def good_share(receiver: Receiver, video_file: Callable[..., Path]) -> Share:
    return Share(
        ShareTarget("127.0.0.1", receiver.port),
        ShareOptions(sender_name="Good", pin=PIN, screen=None, camera=str(video_file())),
    )


async def test_a_flood_from_one_address_is_refused_past_its_allowance_while_a_share_pairs(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coalesce_common.signaling")
    receiver = await make_receiver(pin=PIN)
    flood = [await stranger(receiver.port, "127.0.0.2") for _ in range(DEFAULT_PER_SOURCE)]
    for _ in range(5):
        with pytest.raises(REFUSED):
            await stranger(receiver.port, "127.0.0.2")
    share = good_share(receiver, video_file)
    await share.start()
    try:
        await receiver.wait_for_shares(1, timeout=20)
        await good_share_streams(receiver)
        assert all(ws.state is State.OPEN for ws in flood)  # its allowance is kept, nobody was shed
    finally:
        await share.stop()
        await asyncio.gather(*(ws.close() for ws in flood))
    refusals = [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]
    why = f"it already holds {DEFAULT_PER_SOURCE}, the most one address may"
    assert refusals == [f"refused a connection from 127.0.0.2: {why}"]  # once for five: rate-limited


async def test_at_the_limit_the_oldest_stranger_makes_room_and_the_share_stays(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN, max_connections=4)
    share = good_share(receiver, video_file)
    await share.start()
    strangers: list[ClientConnection] = []
    try:
        await receiver.wait_for_shares(1, timeout=20)
        strangers = [await stranger(receiver.port, f"127.0.0.{n}") for n in (2, 3, 4)]  # 4 connections now
        strangers.append(await stranger(receiver.port, "127.0.0.5"))
        await asyncio.wait_for(strangers[0].wait_closed(), 10)  # the oldest stranger, not the share
        assert [ws.state for ws in strangers[1:]] == [State.OPEN] * 3
        await good_share_streams(receiver)
    finally:
        await share.stop()
        await asyncio.gather(*(ws.close() for ws in strangers))


def queued(port: int, source: str) -> socket.socket:
    """A connection from ``source`` that the kernel queues for the receiver without its loop running."""
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((source, 0))
    assert sock.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
    return sock


async def test_newcomers_behind_a_burst_at_the_limit_wait_for_the_shed_ones_and_get_in(
    make_receiver: ReceiverFactory,
) -> None:
    receiver = await make_receiver(pin=PIN, max_connections=4)
    # One accept call meets them all: 4 fill the limit, the next MAX_CLOSING each shed one, and the last
    # 3 find the limit full of connections still closing. They wait in the backlog, and get in.
    socks = [queued(receiver.port, f"127.0.0.{10 + n}") for n in range(4 + MAX_CLOSING + 3)]
    try:
        for sock in socks[-3:]:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(sock=sock, ssl=tls_client_context(), server_hostname="127.0.0.1"),
                10,
            )  # raises ConnectionResetError if it was refused
            assert writer.get_extra_info("cipher") is not None  # the TLS handshake completed
    finally:
        for sock in socks:
            sock.close()


async def test_when_every_connection_is_a_share_a_stranger_is_refused(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN, max_connections=1)
    share = good_share(receiver, video_file)
    await share.start()
    try:
        await receiver.wait_for_shares(1, timeout=20)
        with pytest.raises(REFUSED):
            await stranger(receiver.port, "127.0.0.2")
        await good_share_streams(receiver)
    finally:
        await share.stop()


async def flood(port: int, sources: int, held: list[asyncio.StreamWriter]) -> None:
    """Keep opening plain TCP connections that never speak, from ``sources`` addresses, until cancelled."""
    while True:
        for n in range(sources):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(f"127.0.0.{2 + n}", 0)
                )
                held.append(writer)
        await asyncio.sleep(0.02)  # pacing the load, not waiting for anything


async def test_out_of_descriptors_it_logs_a_line_and_keeps_its_stats_rhythm(
    tmp_path: Path, video_file: Callable[..., Path]
) -> None:
    stats, log = tmp_path / "stats.json", tmp_path / "receiver.log"
    with log.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "coalesce_receiver", "--headless", "--no-mdns", "--pin", PIN),
            *("--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "data")),
            *("--stats-file", str(stats)),
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env={**os.environ, "COALESCE_ICE_HOST_ADDRESSES": "127.0.0.1"},
        )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    port = int(line.rsplit(":", 1)[1])
    resting = len(await asyncio.to_thread(os.listdir, f"/proc/{proc.pid}/fd"))
    # Fewer descriptors than the 64 connections it allows by default: the flood exhausts them.
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (resting + 40, resting + 40))
    held: list[asyncio.StreamWriter] = []
    flooding = asyncio.ensure_future(flood(port, 20, held))
    share = Share(
        ShareTarget("127.0.0.1", port),
        ShareOptions(sender_name="Good", pin=PIN, screen=None, camera=str(video_file())),
    )
    try:
        await eventually(
            lambda: log_mentions(log, "out of file descriptors"), 20, "the flood exhausts descriptors"
        )
        writes = [await written_at(stats)]

        async def four_more_writes() -> bool:
            if (mtime := await written_at(stats)) != writes[-1]:
                writes.append(mtime)
            return len(writes) >= 5

        await eventually(four_more_writes, 15, "the stats file is rewritten under the flood")
        gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(writes)]
        assert max(gaps) < 1.8, gaps  # every second, give or take a busy loop

        await share.start()  # a legitimate sender still gets in

        async def streaming() -> bool:
            document = json.loads(await asyncio.to_thread(stats.read_text))
            return any(t["frames"] > 3 for s in document["shares"] for t in s["tracks"])

        await eventually(streaming, 30, "the share streams while the flood goes on")
    finally:
        flooding.cancel()
        await asyncio.gather(flooding, return_exceptions=True)
        await share.stop()
        for writer in held:
            writer.close()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)
    text = await asyncio.to_thread(log.read_text)
    assert "Traceback" not in text, text
    assert "socket.accept() out of system resource" not in text
    assert text.count("out of file descriptors") <= 2, text


async def written_at(path: Path) -> int:
    try:
        return (await asyncio.to_thread(path.stat)).st_mtime_ns
    except FileNotFoundError:
        return 0


async def log_mentions(log: Path, text: str) -> bool:
    return text in await asyncio.to_thread(log.read_text)
