"""TrackSink measures and keeps the newest frame; StatsWriter and SnapshotWriter write what they promise."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from coalesce_receiver.models.room import RoomModel, ShareView, fit_size
from coalesce_receiver.services.sink import SnapshotWriter, StatsWriter, TrackSink, snapshot_filename
from coalesce_testing.frames import FakeSource

WAIT = 10.0


class QueueTrack(MediaStreamTrack):
    """A remote track stand-in: frames come from a queue; ``None`` ends it."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[av.VideoFrame | None] = asyncio.Queue()

    async def recv(self) -> av.VideoFrame:
        frame = await self.queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame


def rgb_frame(rgb: tuple[int, int, int], width: int = 64, height: int = 48) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(
        np.full((height, width, 3), rgb, dtype=np.uint8), format="rgb24"
    ).reformat(format="yuv420p")


async def test_track_sink_counts_frames_and_keeps_the_newest() -> None:
    track = QueueTrack()
    sink = TrackSink(track, "screen")
    running = asyncio.create_task(sink.run())
    assert sink.latest_rgb() is None
    assert sink.stats() == {"kind": "screen", "frames": 0, "width": 0, "height": 0, "fps": 0.0, "held_ms": 0}
    frames = [rgb_frame((200, 30, 30)), rgb_frame((30, 200, 30))]
    for frame in frames:
        track.queue.put_nowait(frame)
    assert await asyncio.wait_for(sink.wait_for_frames(2), WAIT)
    assert sink.latest_frame is frames[-1]
    rgb = sink.latest_rgb()
    assert rgb is not None and rgb.shape == (48, 64, 3)
    assert np.abs(rgb.astype(int) - (30, 200, 30)).max() <= 4
    assert sink.latest_rgb() is rgb, "converted once per frame"
    stats = sink.stats()
    assert {k: stats[k] for k in ("kind", "frames", "width", "height")} == {
        "kind": "screen",
        "frames": 2,
        "width": 64,
        "height": 48,
    }
    assert isinstance(stats["fps"], float)
    track.queue.put_nowait(None)
    await asyncio.wait_for(running, WAIT)
    assert sink.ended.is_set()
    assert not await sink.wait_for_frames(3), "an ended track never reaches more frames"


async def test_a_watched_sink_delivers_each_frame_scaled_to_the_box_from_another_thread() -> None:
    track = QueueTrack()
    sink = TrackSink(track, "screen")
    running = asyncio.create_task(sink.run())
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[bool] = asyncio.Queue()
    threads: set[int] = set()

    def on_picture() -> None:
        threads.add(threading.get_ident())
        loop.call_soon_threadsafe(ready.put_nowait, True)

    sink.watch((30, 30), on_picture)  # a 64x48 frame fits at 30x22 (FFmpeg pads such rows)
    track.queue.put_nowait(rgb_frame((200, 30, 30)))
    await asyncio.wait_for(ready.get(), WAIT)
    picture = sink.latest_picture()
    assert picture is not None and picture.number == 1 and picture.frame_size == (64, 48)
    assert picture.pixels.shape == (22, 30, 4) and picture.pixels.flags.c_contiguous
    assert np.abs(picture.pixels[11, 15, :3].astype(int) - (30, 30, 200)).max() <= 4  # B, G, R
    assert threads and threading.get_ident() not in threads, "converted off the event loop"

    sink.watch((128, 128), on_picture)  # a bigger box: the newest frame again, at once
    await asyncio.wait_for(ready.get(), WAIT)
    bigger = sink.latest_picture()
    assert bigger is not None and bigger.number == 1 and bigger.pixels.shape == (96, 128, 4)

    sink.clear()  # the sender stopped this source: the watcher hears of it, and sees nothing
    await asyncio.wait_for(ready.get(), WAIT)
    assert sink.latest_picture() is None
    track.queue.put_nowait(None)
    await asyncio.wait_for(running, WAIT)
    assert not any(t.name == "coalesce-screen-pictures" for t in threading.enumerate()), (
        "ended with the track"
    )


async def test_a_held_picture_shows_later_in_order_and_a_cleared_one_never() -> None:
    """While its sound is heard the share's picture is held (lip sync): each frame is shown that much
    after it arrived, none overtakes another, and what was held when the source stopped never shows."""
    track = QueueTrack()
    sink = TrackSink(track, "screen")
    running = asyncio.create_task(sink.run())
    loop = asyncio.get_running_loop()
    shown: asyncio.Queue[tuple[int, float]] = asyncio.Queue()

    def on_picture() -> None:
        picture = sink.latest_picture()
        if picture is not None:
            loop.call_soon_threadsafe(shown.put_nowait, (picture.number, loop.time()))

    sink.watch((64, 48), on_picture)
    sink.picture.hold = 0.3
    sent = loop.time()
    track.queue.put_nowait(rgb_frame((200, 30, 30)))
    assert await asyncio.wait_for(sink.wait_for_frames(1), WAIT)
    sink.picture.hold = 0.1  # the sound caught up meanwhile: the next is held less, but not shown first
    track.queue.put_nowait(rgb_frame((30, 200, 30)))
    seen = [await asyncio.wait_for(shown.get(), WAIT)]
    while seen[-1][0] != 2:
        seen.append(await asyncio.wait_for(shown.get(), WAIT))
    assert seen[0][1] - sent >= 0.29  # the first picture shown (the second may replace it unconverted)
    assert [number for number, _ in seen] == sorted(number for number, _ in seen)

    sink.picture.hold = 0.2
    track.queue.put_nowait(rgb_frame((30, 30, 200)))
    assert await asyncio.wait_for(sink.wait_for_frames(3), WAIT)
    sink.clear()  # the sender stopped this source while the frame was held
    sink.picture.hold = 0.0  # a new clock: frames show at once again
    track.queue.put_nowait(rgb_frame((90, 90, 90)))
    numbers = []
    while not numbers or numbers[-1] != 4:
        numbers.append((await asyncio.wait_for(shown.get(), WAIT))[0])
    assert 3 not in numbers
    track.queue.put_nowait(None)
    await asyncio.wait_for(running, WAIT)


def test_fit_size_keeps_the_aspect_inside_the_box() -> None:
    assert fit_size((1920, 1080), (960, 540)) == (960, 540)
    assert fit_size((1920, 1080), (800, 800)) == (800, 450)
    assert fit_size((640, 480), (800, 450)) == (600, 450)
    assert fit_size((1, 10_000), (100, 100)) == (1, 100)
    assert fit_size((0, 0), (100, 50)) == (100, 50)


def test_snapshot_names_are_safe_file_names() -> None:
    assert snapshot_filename("Alice's Laptop/../x", "camera") == "Alice_s_Laptop____x-camera.png"
    assert snapshot_filename("", "screen") == "_-screen.png"
    assert snapshot_filename("bob-2_ok", "screen") == "bob-2_ok-screen.png"


@pytest.fixture
def room() -> RoomModel:
    model = RoomModel("Room 1", pin_required=False)
    model.add_share(ShareView("share-a", "Alice Ö"))
    screen = np.full((40, 60, 3), (250, 10, 10), dtype=np.uint8)
    model.add_track("share-a", FakeSource("screen", screen, frames=7, fps=29.9))
    model.add_track("share-a", FakeSource("camera", None, frames=7, fps=29.9))
    model.add_share(ShareView("share-b", "Bob"))
    return model


async def test_stats_writer_writes_at_start_periodically_and_at_stop(tmp_path: Path, room: RoomModel) -> None:
    path = tmp_path / "stats.json"
    writer = StatsWriter(path, room, interval=0.02)
    async with writer:
        await asyncio.wait_for(writer.wait_for_writes(3), WAIT)
        document = json.loads(await asyncio.to_thread(path.read_text))
        assert document == {
            "shares": [
                {
                    "sender": "Alice Ö",
                    "share_id": "share-a",
                    "tracks": [
                        {"kind": "screen", "frames": 7, "width": 60, "height": 40, "fps": 29.9},
                        {"kind": "camera", "frames": 7, "width": 0, "height": 0, "fps": 29.9},
                    ],
                },
                {"sender": "Bob", "share_id": "share-b", "tracks": []},
            ]
        }
        room.remove_share("share-a")
        writes = writer.writes
    assert writer.writes > writes, "a last write at stop"
    assert json.loads(await asyncio.to_thread(path.read_text))["shares"] == [
        {"sender": "Bob", "share_id": "share-b", "tracks": []}
    ]
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["stats.json"], "no temporary files left behind"
    await writer.aclose()  # idempotent


async def test_snapshot_writer_writes_each_tracks_newest_frame(tmp_path: Path, room: RoomModel) -> None:
    async with SnapshotWriter(tmp_path / "snaps", room, interval=0.02) as writer:
        await asyncio.wait_for(writer.wait_for_writes(2), WAIT)
    assert await asyncio.to_thread(os.listdir, tmp_path / "snaps") == ["Alice__-screen.png"]
    png = tmp_path / "snaps" / "Alice__-screen.png"
    image = await asyncio.to_thread(cv2.imread, str(png), cv2.IMREAD_COLOR)
    assert image is not None
    assert image.shape == (40, 60, 3)
    assert tuple(image[20, 30]) == (10, 10, 250), "PNG holds BGR of the RGB frame"
