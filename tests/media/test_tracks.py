"""CaptureTrack stamps frames with the wall clock, never hands out a frame twice, and keeps a still
picture streaming."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from coalesce_common.errors import MediaError
from coalesce_common.media.capture import CaptureSource
from coalesce_common.media.tracks import CaptureTrack


class ManualSource(CaptureSource):
    """A source without a thread: the test puts frames into its slot."""

    kind = "screen"

    def __init__(self) -> None:
        super().__init__(fps=30)
        self.stop_calls = 0

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.slot.bind(loop or asyncio.get_running_loop())

    def request_stop(self) -> None:
        self.stop_calls += 1
        self.slot.close()

    def _open(self) -> None:
        raise NotImplementedError

    def _grab(self) -> av.VideoFrame:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


def solid_frame(value: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((24, 32), value, dtype=np.uint8), format="yuv420p")


async def test_frames_get_increasing_wall_clock_pts_on_a_90khz_clock() -> None:
    source = ManualSource()
    track = CaptureTrack(source)
    assert track.kind == "video" and track.source is not None and track.source.kind == "screen"
    pts: list[int] = []
    for value in (10, 20, 30):
        frame = solid_frame(value)
        source.slot.put(frame)
        received = await track.recv()
        assert received is frame
        assert received.time_base == fractions.Fraction(1, 90000)
        assert received.pts is not None
        pts.append(received.pts)
    assert pts[0] == 0
    assert pts[0] < pts[1] < pts[2]
    track.stop()


async def test_a_stalled_capture_resends_a_copy_of_the_last_frame_with_a_new_pts() -> None:
    source = ManualSource()
    track = CaptureTrack(source, stall_resend_after=0.05)
    original = solid_frame(99)
    source.slot.put(original)
    first = await track.recv()
    repeat = await track.recv()
    again = await track.recv()
    assert first is original
    assert repeat is not first and again is not repeat
    assert np.array_equal(repeat.to_ndarray(), original.to_ndarray())
    assert first.pts is not None and repeat.pts is not None and again.pts is not None
    assert first.pts < repeat.pts < again.pts
    # At least the stall time apart, in 90 kHz ticks.
    assert repeat.pts - first.pts >= 0.05 * 90000 * 0.9
    track.stop()


async def test_no_frame_is_repeated_before_the_first_one_arrives() -> None:
    source = ManualSource()
    track = CaptureTrack(source, stall_resend_after=0.01)
    receiving = asyncio.create_task(track.recv())
    done, _ = await asyncio.wait({receiving}, timeout=0.1)
    assert not done
    frame = solid_frame(1)
    source.slot.put(frame)
    assert await asyncio.wait_for(receiving, 5) is frame
    track.stop()


async def test_stop_ends_the_track_and_stops_the_source_once_per_call() -> None:
    source = ManualSource()
    track = CaptureTrack(source)
    receiving = asyncio.create_task(track.recv())
    await asyncio.sleep(0)  # a yield: let recv() start waiting
    track.stop()
    assert source.stop_calls == 1
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(receiving, 5)
    assert track.readyState == "ended"
    # The pending recv() saw the closed slot and ended the track itself; each stop() stops the source once
    # more (a source's stop() is idempotent), so a track stopped twice never leaves its capture running.
    calls = source.stop_calls
    track.stop()
    assert source.stop_calls == calls + 1
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert source.stop_calls == calls + 1  # recv() on an ended track touches nothing


async def test_a_failing_source_ends_the_track() -> None:
    source = ManualSource()
    track = CaptureTrack(source)
    source.slot.close(MediaError("display went away"))
    with pytest.raises(MediaStreamError, match="display went away"):
        await track.recv()
    assert track.readyState == "ended"
