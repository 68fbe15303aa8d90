"""LAN sharing end to end: real TLS signaling, SPAKE2 pairing, DTLS-SRTP media, Xvfb capture."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_receiver.services.receiver import Receiver
from tests.conftest import PatternWindowFactory, XServer
from tests.e2e.conftest import ReceiverFactory, close_to, eventually

PIN = "4821"


def frames_of(receiver: Receiver, sender: str, kind: str) -> int:
    for share in receiver.model.shares:
        if share.sender_name == sender and kind in share.tracks:
            return int(share.tracks[kind].stats()["frames"])  # type: ignore[call-overload]
    return 0


async def test_screen_share_shows_what_is_on_the_x_screen(
    xvfb: XServer, pattern_window: PatternWindowFactory, make_receiver: ReceiverFactory, tmp_path: Path
) -> None:
    pattern = pattern_window()
    snapshots = tmp_path / "snapshots"
    receiver = await make_receiver(pin=PIN, snapshot_dir=snapshots)
    target = ShareTarget("127.0.0.1", receiver.port)
    async with Share(target, ShareOptions(sender_name="Ada", pin=PIN, display=xvfb.display)) as share:
        assert share.receiver_name == "Room 1"
        await receiver.wait_for_shares(1, timeout=20)
        [shown] = receiver.model.shares
        assert shown.sender_name == "Ada"
        frame = shown.tracks["screen"].latest_rgb()
        assert frame is not None
        assert frame.shape == (xvfb.height, xvfb.width, 3)
        for quadrant, (x, y) in pattern.centres().items():
            assert close_to(frame[y, x], pattern.quadrants[quadrant]), (quadrant, frame[y, x])
        png = snapshots / "Ada-screen.png"
        await eventually(png.exists, 5, "the snapshot PNG is written")
        bgr = cv2.imread(str(png))
        assert bgr is not None
        psnr = cv2.PSNR(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), _expected_image(pattern, bgr.shape))
        assert psnr > 25, f"received picture differs from the screen (PSNR {psnr:.1f} dB)"
    await eventually(lambda: not receiver.model.shares, 5, "the receiver removes the tile after bye")


def _expected_image(pattern: Any, shape: tuple[int, ...]) -> Any:
    import numpy as np

    h, w = shape[:2]
    image = np.zeros((h, w, 3), np.uint8)
    image[: h // 2, : w // 2] = pattern.quadrants["top_left"]
    image[: h // 2, w // 2 :] = pattern.quadrants["top_right"]
    image[h // 2 :, : w // 2] = pattern.quadrants["bottom_left"]
    image[h // 2 :, w // 2 :] = pattern.quadrants["bottom_right"]
    return image


async def test_webcam_share_from_a_video_file(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    path = video_file(colour=(255, 0, 255))
    options = ShareOptions(sender_name="Cam", screen=None, camera=str(path))
    async with Share(ShareTarget("127.0.0.1", receiver.port), options):
        await receiver.wait_for_shares(1, timeout=20)
        [shown] = receiver.model.shares
        assert list(shown.tracks) == ["camera"]
        frame = shown.tracks["camera"].latest_rgb()
        assert frame is not None and frame.shape == (240, 320, 3)
        assert close_to(frame[120, 160], (255, 0, 255))


async def test_two_senders_at_once_and_one_leaving_does_not_disturb_the_other(
    xvfb: XServer,
    pattern_window: PatternWindowFactory,
    make_receiver: ReceiverFactory,
    video_file: Callable[..., Path],
    tmp_path: Path,
) -> None:
    pattern_window()
    stats_file = tmp_path / "stats.json"
    receiver = await make_receiver(pin=PIN, stats_file=stats_file)
    target = ShareTarget("127.0.0.1", receiver.port)
    screen = Share(target, ShareOptions(sender_name="Screen", pin=PIN, display=xvfb.display))
    camera = Share(target, ShareOptions(sender_name="Camera", pin=PIN, screen=None, camera=str(video_file())))
    async with screen:
        async with camera:
            await receiver.wait_for_shares(2, timeout=30)
            assert sorted(s.sender_name for s in receiver.model.shares) == ["Camera", "Screen"]

            def stats_show_both() -> bool:
                try:
                    data = json.loads(stats_file.read_text())
                except (OSError, ValueError):
                    return False
                frames = {s["sender"]: s["tracks"][0]["frames"] for s in data["shares"] if s["tracks"]}
                return len(frames) == 2 and all(n > 0 for n in frames.values())

            await eventually(stats_show_both, 5, "the stats file lists both shares with frames")
        before = frames_of(receiver, "Screen", "screen")
        await eventually(
            lambda: [s.sender_name for s in receiver.model.shares] == ["Screen"], 5, "camera left"
        )
        await eventually(lambda: frames_of(receiver, "Screen", "screen") > before + 5, 10, "screen continues")


async def test_sender_name_collisions_get_distinct_labels(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    target, path = ShareTarget("127.0.0.1", receiver.port), str(video_file())
    options = ShareOptions(sender_name="Laptop", screen=None, camera=path)
    async with Share(target, options), Share(target, options):
        assert sorted(s.sender_name for s in receiver.model.shares) == ["Laptop", "Laptop (2)"]


async def test_a_fifth_share_is_refused_when_four_are_shown(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    from coalesce_common.errors import ShareRefused

    receiver = await make_receiver(max_shares=1)
    target, path = ShareTarget("127.0.0.1", receiver.port), str(video_file())
    async with Share(target, ShareOptions(screen=None, camera=path)):
        with pytest.raises(ShareRefused, match="already showing"):
            await Share(target, ShareOptions(screen=None, camera=path)).start()
        assert len(receiver.model.shares) == 1


async def test_a_receiver_shutdown_ends_the_share_at_the_sender(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    share = Share(
        ShareTarget("127.0.0.1", receiver.port), ShareOptions(screen=None, camera=str(video_file()))
    )
    await share.start()
    try:
        await receiver.aclose()
        assert await asyncio.wait_for(share.wait_ended(), 10) == "receiver-shutdown"
    finally:
        await share.stop()


async def test_a_sender_that_vanishes_without_bye_is_removed(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    share = Share(
        ShareTarget("127.0.0.1", receiver.port), ShareOptions(screen=None, camera=str(video_file()))
    )
    await share.start()
    try:
        await receiver.wait_for_shares(1, timeout=20)
        assert share._channel is not None
        await share._channel.aclose()  # the laptop lid closes: no bye
        await eventually(lambda: not receiver.model.shares, 10, "the receiver drops the silent share")
    finally:
        await share.stop()
