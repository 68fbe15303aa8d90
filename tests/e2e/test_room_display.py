"""The room display as people see it: a real receiver window on Xvfb showing a real share."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import mss
import numpy as np

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from tests.conftest import XServer
from tests.e2e.conftest import close_to, eventually

MAGENTA = (255, 0, 255)


def screen_centre(display: str) -> tuple[int, int, int]:
    with mss.MSS(display=display) as grabber:
        shot = np.asarray(grabber.grab(grabber.monitors[1]))  # BGRA
    h, w = shot.shape[:2]
    b, g, r = (int(v) for v in shot[h // 2, w // 2, :3])
    return r, g, b


async def test_the_room_window_shows_a_share_full_screen_and_returns_to_idle(
    xvfb: XServer, video_file: Callable[..., Path], tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coalesce_receiver",
        "--name",
        "Display Room",
        "--pin",
        "4821",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-mdns",
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE,
        env={**xvfb.env(), "COALESCE_ICE_HOST_ADDRESSES": "127.0.0.1"},
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("listening on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        idle = await asyncio.to_thread(screen_centre, xvfb.display)
        assert not close_to(idle, MAGENTA)
        options = ShareOptions(
            sender_name="Ada", pin="4821", screen=None, camera=str(video_file(colour=MAGENTA))
        )
        async with Share(ShareTarget("127.0.0.1", port), options):
            await eventually(
                lambda: close_to(screen_centre(xvfb.display), MAGENTA), 20, "the share fills the room screen"
            )
        await eventually(
            lambda: not close_to(screen_centre(xvfb.display), MAGENTA), 10, "the idle screen comes back"
        )
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)
    assert proc.returncode == 0
