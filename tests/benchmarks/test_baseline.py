"""The ffmpeg baseline on real X servers: its settings, and its picture shown full screen on a viewer screen.

No timing assertions: the viewer has to show the live, legible timestamp strip where a full-screen player
puts it, while the decoder still hands its frames to the pipe.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from blockbuster import BlockBuster

from benchmarks import procs, timecode
from benchmarks.baseline import VIEWER_PROGRAMS, BaselineStream, encoder_args
from benchmarks.glass import GlassSampler, Placement
from coalesce_common.media import encoding

SOURCE = (320, 240)
VIEWER = (640, 400)
"""Another aspect than the source's (16:10 against 4:3), so the picture is pillarboxed on the viewer."""
SHOWN_TIMEOUT = 30.0


@pytest.mark.parametrize("fps", [30, 60])
def test_encoder_keeps_coalesces_key_frame_interval_and_vbv(fps: int) -> None:
    args = encoder_args("h264", 2_000_000, fps)
    option = dict(zip(args[::2], args[1::2], strict=True))
    assert int(option["-g"]) == round(encoding.KEYFRAME_INTERVAL * fps)
    assert option["-maxrate"] == "2000000"
    assert option["-bufsize"] == str(round(2_000_000 * encoding.VBV_BUFFER_SECONDS))
    vp8 = encoder_args("vp8", 1_000_000, fps)
    assert vp8[vp8.index("-g") + 1] == str(2 * fps)
    assert vp8[vp8.index("-minrate") + 1] == vp8[vp8.index("-maxrate") + 1] == "1000000", "CBR, as aiortc"


@pytest.fixture
def orchestrator_io(_no_blocking_calls_on_the_loop: BlockBuster) -> None:
    """The benchmark's orchestrator reads its logs, ``/proc`` and the X screen on its event loop (a tool
    running alone, not the app): the suite's check for blocking calls is off for these tests."""
    _no_blocking_calls_on_the_loop.deactivate()


@pytest.fixture
async def screens(
    tmp_path: Path, orchestrator_io: None
) -> AsyncIterator[tuple[procs.XServer, procs.XServer, procs.Child]]:
    for tool in ("Xvfb", "ffmpeg", "ffplay"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (bash scripts/setup.sh installs it)")
    source = await procs.start_xvfb(*SOURCE, tmp_path / "source-xvfb.log")
    viewer = await procs.start_xvfb(*VIEWER, tmp_path / "viewer-xvfb.log")
    pattern = await procs.start_pattern("motion", 30, source, tmp_path)
    try:
        yield source, viewer, pattern
    finally:
        await pattern.aclose()
        await viewer.aclose()
        await source.aclose()


def shown_strips(sampler: GlassSampler, placement: Placement, count: int) -> list[timecode.Timecode]:
    """The first ``count`` distinct legible strips the viewer screen shows, waiting for each in turn."""
    seen: list[timecode.Timecode] = []
    deadline = time.monotonic() + SHOWN_TIMEOUT
    while len(seen) < count and time.monotonic() < deadline:
        _, code = sampler.snapshot(placement)  # the screen's own state: nothing to be told
        if code is not None and (not seen or code.counter != seen[-1].counter):
            seen.append(code)
    return seen


@pytest.mark.x11
@pytest.mark.parametrize("program", VIEWER_PROGRAMS)
async def test_viewer_shows_the_live_picture_fitted_to_its_screen(
    screens: tuple[procs.XServer, procs.XServer, procs.Child], tmp_path: Path, program: str
) -> None:
    source, viewer, _ = screens
    stream = BaselineStream(0, source, "h264", 500_000, 30, tmp_path, viewer=viewer, viewer_program=program)
    try:
        await stream.start()
        await asyncio.wait_for(stream.first_frame.wait(), SHOWN_TIMEOUT)
        sampler = await asyncio.to_thread(GlassSampler, viewer.display, 30)
        assert sampler.screen == VIEWER
        placement = Placement.fitted(SOURCE, sampler.screen)
        assert placement.rect == (53, 0, 533, 400)
        strips = await asyncio.to_thread(shown_strips, sampler, placement, 3)
        assert len(strips) == 3, f"the viewer showed {strips}:\n{stream.describe_failure()}"
        assert strips[0].counter < strips[1].counter < strips[2].counter, "a live picture"
        # Outside the fitted picture the screen stays black (pillarbox): it is fitted, not stretched.
        full = Placement(VIEWER, (0, 0, *VIEWER))
        screen, _ = await asyncio.to_thread(sampler.snapshot, full)
        assert screen[:, :40].max() < 16 and screen[:, -40:].max() < 16
        assert screen[:, 60:580].max() > 128
        # The decoder-point figure is kept: the pipe still gets each decoded frame's strip.
        assert stream.samples.latencies_ms, stream.describe_failure()
    finally:
        await stream.aclose()
