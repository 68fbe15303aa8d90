"""The two commands as a user runs them: a headless receiver and ``coalesce share``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from coalesce_receiver.cli import listening_line
from tests.conftest import PatternWindowFactory, XServer
from tests.e2e.conftest import eventually

LOOPBACK_ICE = {"COALESCE_ICE_HOST_ADDRESSES": "127.0.0.1"}


@pytest.fixture
async def cli_receiver(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    stats = tmp_path / "stats.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coalesce_receiver",
        "--headless",
        "--name",
        "CLI Box",
        "--pin",
        "4821",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-mdns",
        "--stats-file",
        str(stats),
        "--snapshot-dir",
        str(tmp_path / "snaps"),
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        stderr=await asyncio.to_thread(open, tmp_path / "receiver.log", "wb"),
        env={**os.environ, **LOOPBACK_ICE},
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert line.startswith("listening on 127.0.0.1:"), line
    try:
        yield int(line.rsplit(":", 1)[1]), stats
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0  # a clean shutdown on SIGTERM


async def run_share(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coalesce_client",
        "share",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**env, **LOOPBACK_ICE},
    )


async def read_stats(path: Path) -> dict[str, list[dict[str, object]]]:
    try:
        return json.loads(await asyncio.to_thread(path.read_text))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {"shares": []}


async def no_shares_in(path: Path) -> bool:
    return (await read_stats(path))["shares"] == []


async def test_share_command_streams_the_screen_for_its_duration(
    cli_receiver: tuple[int, Path], xvfb: XServer, pattern_window: PatternWindowFactory
) -> None:
    port, stats = cli_receiver
    await asyncio.to_thread(pattern_window)
    proc = await run_share(
        "--to",
        f"127.0.0.1:{port}",
        "--pin",
        "4821",
        "--name",
        "Grace",
        "--duration",
        "6",
        env=xvfb.env(),
    )

    async def streaming() -> bool:
        shares = (await read_stats(stats))["shares"]
        return any(
            s["sender"] == "Grace" and s["tracks"] and s["tracks"][0]["frames"] > 10  # type: ignore[index, operator]
            for s in shares
        )

    await eventually(streaming, 30, "the receiver's stats file shows Grace's screen")
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert b"Sharing to CLI Box" in out
    await eventually(lambda: no_shares_in(stats), 5, "the tile is removed after the share ends")
    log = await asyncio.to_thread((stats.parent / "receiver.log").read_text)
    assert " negotiated" in log and "ended by the sender (stopped)" in log  # the room's own account
    for library in ("aioice", "aiortc", "websockets"):  # their details (a line per connection) need -v
        assert f" {library}." not in log, log


async def test_share_command_reports_a_wrong_pin(
    cli_receiver: tuple[int, Path], video_file: Callable[..., Path]
) -> None:
    port, _ = cli_receiver
    proc = await run_share(
        "--to",
        f"127.0.0.1:{port}",
        "--pin",
        "0000",
        "--no-screen",
        "--camera",
        str(video_file()),
        env=dict(os.environ),
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"Wrong PIN" in err


async def test_share_command_reports_an_unreachable_receiver(
    free_tcp_port: int, video_file: Callable[..., Path]
) -> None:
    proc = await run_share(
        "--to",
        f"127.0.0.1:{free_tcp_port}",
        "--pin",
        "1234",
        "--timeout",
        "3",
        "--no-screen",
        "--camera",
        str(video_file()),
        env=dict(os.environ),
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"Could not reach the receiver" in err


async def test_ctrl_c_ends_the_share_cleanly(
    cli_receiver: tuple[int, Path], video_file: Callable[..., Path]
) -> None:
    import signal

    port, stats = cli_receiver
    proc = await run_share(
        "--to",
        f"127.0.0.1:{port}",
        "--pin",
        "4821",
        "--name",
        "Linus",
        "--no-screen",
        "--camera",
        str(video_file()),
        env=dict(os.environ),
    )

    async def streaming() -> bool:
        return any(s["sender"] == "Linus" and s["tracks"] for s in (await read_stats(stats))["shares"])

    await eventually(streaming, 30, "the share is up")
    assert proc.stdout is not None
    said = b""
    while b"Press Ctrl-C to stop." not in said:  # the sender's own word that Ctrl-C now stops the share
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, "the sender ended before it said it was sharing"
        said += line
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert b"Share stopped." in out
    await eventually(lambda: no_shares_in(stats), 5, "the tile is removed")


async def test_share_command_explains_a_missing_display(free_tcp_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = await run_share("--to", f"127.0.0.1:{free_tcp_port}", env=env)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"Cannot capture the screen" in err


def test_the_receiver_says_it_listens_on_all_addresses_when_it_does() -> None:
    everywhere = listening_line(None, 8443, ["192.0.2.2", "10.1.2.3"])
    assert everywhere == "listening on all addresses, port 8443 (this computer: 192.0.2.2, 10.1.2.3)"
    assert listening_line("0.0.0.0", 8443, ["192.0.2.2"]).startswith("listening on all addresses, port 8443")
    assert listening_line("127.0.0.1", 8443, ["127.0.0.1"]) == "listening on 127.0.0.1:8443"
