"""Capture sources on real inputs: a video file read as a camera, and a real X server's screen."""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from coalesce_common.errors import MediaError
from coalesce_common.media.capture import CameraSource, CaptureSource, ScreenSource, list_monitors
from coalesce_common.media.limits import FrameHints, StreamLimits
from coalesce_common.media.tracks import CaptureTrack

from .conftest import ROOT_COLOUR, ROOT_SIZE, VideoFile, write_video

COLOUR_TOLERANCE = 12.0
"""Euclidean RGB distance allowed after MJPG, BGR->I420 and I420->RGB (limited-range BT.601 rounding)."""

FRAME_TIMEOUT = 10.0


def centre_rgb(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    return rgb[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4]


async def started(source: CaptureSource) -> CaptureSource:
    source.start(asyncio.get_running_loop())
    return source


async def test_camera_source_reads_a_video_file_at_its_own_rate(video_file: VideoFile) -> None:
    source = await started(CameraSource(str(video_file.path)))
    try:
        frame = await source.slot.get(timeout=FRAME_TIMEOUT)
        assert (frame.width, frame.height, frame.format.name) == (
            video_file.width,
            video_file.height,
            "yuv420p",
        )
        index, distance = video_file.nearest_index(centre_rgb(frame.to_ndarray(format="rgb24")))
        assert distance < COLOUR_TOLERANCE
        assert index == 0  # the first frame grabbed is the file's first (the next is due 1/30 s later)
        assert source.fps == pytest.approx(video_file.fps)
    finally:
        await source.aclose()
    assert source.error is None
    assert not source.running


async def test_camera_source_loops_a_file_and_keeps_the_frame_order(video_file: VideoFile) -> None:
    source = await started(CameraSource(video_file.path.as_posix(), fps=600))
    indexes: list[int] = []
    try:
        while source.slot.frames_put < 2 * video_file.frames:
            frame = await source.slot.get(timeout=FRAME_TIMEOUT)
            index, distance = video_file.nearest_index(centre_rgb(frame.to_ndarray(format="rgb24")))
            assert distance < COLOUR_TOLERANCE
            indexes.append(index)
    finally:
        await source.aclose()
    assert source.error is None
    steps = [b - a for a, b in itertools.pairwise(indexes)]
    assert any(step < 0 for step in steps), f"never wrapped around: {indexes}"
    # Frames may be dropped in between, but within one pass they come in file order.
    assert sum(step < 0 for step in steps) <= source.slot.frames_put // video_file.frames + 1


@pytest.mark.parametrize(
    ("size", "expected"),
    [((75, 51), (74, 50)), ((160, 122), (160, 122)), ((161, 125), (160, 124))],
    ids=["odd", "height-2-mod-4", "odd-height-0-mod-4"],
)
async def test_camera_source_crops_odd_sizes_to_even_and_keeps_colours_right(
    tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    video = await asyncio.to_thread(write_video, tmp_path / "odd.avi", *size, frames=3, fps=30)
    source = await started(CameraSource(str(video.path)))
    try:
        frame = await source.slot.get(timeout=FRAME_TIMEOUT)
    finally:
        await source.aclose()
    assert (frame.width, frame.height) == expected
    # Every pixel, not just the centre: a chroma plane read from the wrong offset shows in some rows.
    rgb = frame.to_ndarray(format="rgb24")
    for row in (0, frame.height // 2, frame.height - 1):
        index, distance = video.nearest_index(rgb[row : row + 1, 1:-1])
        assert (index, distance < COLOUR_TOLERANCE) == (0, True), row


async def test_camera_source_reports_a_file_it_cannot_open(tmp_path: Path) -> None:
    source = await started(CameraSource(str(tmp_path / "missing.avi")))
    try:
        with pytest.raises(MediaError, match=r"Cannot open video file .*missing\.avi"):
            await source.slot.get(timeout=FRAME_TIMEOUT)
    finally:
        await source.aclose()
    assert isinstance(source.error, MediaError)


def test_camera_spec_digits_mean_a_device_index() -> None:
    assert CameraSource("0").spec == 0
    assert CameraSource("clip.mp4").spec == "clip.mp4"


def test_list_monitors_describes_the_x_screen(red_root_display: str) -> None:
    width, height = ROOT_SIZE
    assert list_monitors(display=red_root_display) == [
        {"index": 1, "width": width, "height": height, "left": 0, "top": 0}
    ]


async def test_screen_source_captures_the_root_window_colour(red_root_display: str) -> None:
    source = await started(ScreenSource(monitor=1, fps=30, display=red_root_display))
    try:
        frame = await source.slot.get(timeout=FRAME_TIMEOUT)
        second = await source.slot.get(timeout=FRAME_TIMEOUT)
    finally:
        await source.aclose()
    assert source.error is None
    assert second is not frame
    assert (frame.width, frame.height, frame.format.name) == (*ROOT_SIZE, "yuv420p")
    rgb = frame.to_ndarray(format="rgb24")
    assert np.abs(rgb.astype(int) - ROOT_COLOUR).max() <= 4, rgb.reshape(-1, 3)[:4]


async def test_screen_source_names_the_monitors_when_the_index_is_wrong(red_root_display: str) -> None:
    source = await started(ScreenSource(monitor=3, display=red_root_display))
    try:
        with pytest.raises(MediaError, match=r"no monitor 3; available monitors: 1 \(640x480 at 0,0\)"):
            await source.slot.get(timeout=FRAME_TIMEOUT)
    finally:
        await source.aclose()


class SlowToReleaseSource(CaptureSource):
    """Releases its "device" only when :attr:`release` is set: a driver slow to let go."""

    kind = "camera"

    def __init__(self) -> None:
        super().__init__(fps=100)
        self.release = threading.Event()
        self.released = threading.Event()

    def _open(self) -> None:
        pass

    def _grab(self) -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(np.zeros((24, 32), dtype=np.uint8), format="yuv420p")

    def _close(self) -> None:
        self.release.wait(STOP_WAIT)
        self.released.set()


STOP_WAIT = 10.0


async def test_aclose_waits_for_the_device_without_blocking_the_loop() -> None:
    source = await started(SlowToReleaseSource())
    await source.slot.get(timeout=FRAME_TIMEOUT)
    # This callback can only run while aclose() waits if the wait leaves the loop free; a join on the loop
    # would hold it until the timeout, with the thread still holding the device.
    asyncio.get_running_loop().call_soon(source.release.set)
    await source.aclose(timeout=STOP_WAIT)
    assert source.released.is_set()
    assert not source.running
    with pytest.raises(MediaError, match="stopped"):
        await source.slot.get(timeout=FRAME_TIMEOUT)
    await source.aclose()  # idempotent


async def test_a_source_is_an_async_context_manager(video_file: VideoFile) -> None:
    async with CameraSource(str(video_file.path)) as source:
        assert source.running
        assert await source.slot.get(timeout=FRAME_TIMEOUT)
    assert not source.running
    assert source.error is None


async def test_the_room_limits_shrink_and_slow_the_capture_from_the_next_frame(red_root_display: str) -> None:
    source = await started(ScreenSource(monitor=1, fps=60, display=red_root_display))
    track = CaptureTrack(source)
    try:
        full = await track.recv()
        assert (full.width, full.height) == ROOT_SIZE and full.opaque is None
        limits = StreamLimits(max_width=ROOT_SIZE[0] // 4, max_height=1000, max_fps=10, max_bitrate=400_000)
        track.set_limits(limits)
        track.request_keyframe()
        shrunk = await track.recv()
        while (shrunk.width, shrunk.height) == ROOT_SIZE:  # one frame may have been grabbed before
            shrunk = await track.recv()
        expected = limits.fit(*ROOT_SIZE)
        assert expected is not None and (shrunk.width, shrunk.height) == expected
        assert shrunk.width % 2 == 0 and shrunk.height % 2 == 0
        rgb = shrunk.to_ndarray(format="rgb24")
        assert np.abs(rgb.astype(int) - ROOT_COLOUR).max() <= 4, "the colours survive the scaling"
        hints = shrunk.opaque
        assert isinstance(hints, FrameHints) and hints.max_bitrate == 400_000
        paced = [await track.recv() for _ in range(4)]
        assert all(isinstance(f.opaque, FrameHints) and not f.opaque.keyframe for f in paced), "asked once"
        # Four frames at 10 fps take at least 0.3 s of frame time (at 60 fps they would take 0.05 s).
        assert float((paced[-1].pts - shrunk.pts) * paced[-1].time_base) >= 0.3
        track.set_limits(None)
        while (frame := await track.recv()).width != ROOT_SIZE[0]:
            pass
        assert frame.opaque is None
    finally:
        track.stop()
        await source.aclose()
    assert source.error is None


def test_stream_limits_fit_keeps_the_aspect_and_even_sizes() -> None:
    limits = StreamLimits(max_width=960, max_height=540, max_fps=30, max_bitrate=1_000_000)
    assert limits.fit(1920, 1080) == (960, 540)
    assert limits.fit(1280, 1024) == (674, 540)
    assert limits.fit(960, 540) is None and limits.fit(640, 480) is None
    assert StreamLimits(16, 16, 1, 50_000).fit(7680, 10) == (16, 2)
