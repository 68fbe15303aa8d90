"""Picture quality scores: the rebuilt reference is the pattern's real screen, and the scores rank damage.

The pattern runs on a private Xvfb and its screen is grabbed the way the benchmark grabs a viewer's
(``benchmarks.glass``), so the reference is checked against what X really holds, pixel for pixel.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import procs, quality, timecode
from benchmarks.glass import GlassSampler, Placement

WIDTH, HEIGHT = 1280, 720
CAPTURES = 3
CAPTURE_TIMEOUT = 20.0


@dataclass(frozen=True)
class Capture:
    rgb: np.ndarray
    code: timecode.Timecode


@dataclass(frozen=True)
class PatternScreen:
    record: procs.PatternRecord
    captures: list[Capture]


def _grab_distinct_frames(display: str, count: int) -> list[Capture]:
    """``count`` grabs of the whole screen that show different frames, as glass snapshots them."""
    sampler = GlassSampler(display, rate=60.0)
    placement = Placement.fitted((WIDTH, HEIGHT), sampler.screen)
    captures: dict[timecode.Timecode, Capture] = {}
    deadline = time.monotonic() + CAPTURE_TIMEOUT
    while len(captures) < count:
        assert time.monotonic() < deadline, f"only {len(captures)} distinct frames in {CAPTURE_TIMEOUT} s"
        rgb, code = sampler.snapshot(placement)
        assert code is not None, "the pattern's own screen shows an illegible strip"
        again, _ = sampler.snapshot(placement)
        if np.array_equal(rgb, again):  # else the grab may have caught the pattern half-way through a paint
            captures.setdefault(code, Capture(rgb, code))
    return list(captures.values())


async def _run_pattern(content: str, log_dir: Path) -> PatternScreen:
    xserver = await procs.start_xvfb(WIDTH, HEIGHT, log_dir / f"xvfb-{content}.log")
    try:
        pattern = await procs.start_pattern(content, 57.0, xserver, log_dir)
        try:
            captures = await asyncio.to_thread(_grab_distinct_frames, xserver.display, CAPTURES)
        finally:
            await pattern.aclose()
        return PatternScreen(pattern.record, captures)
    finally:
        await asyncio.to_thread(xserver.stop)


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PatternScreen]]:
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (bash scripts/setup.sh installs it)")
    log_dir = tmp_path_factory.mktemp("pattern")
    yield {content: asyncio.run(_run_pattern(content, log_dir)) for content in ("motion", "static")}


def _reference(screen: PatternScreen, code: timecode.Timecode) -> np.ndarray:
    reference = quality.PaintedFrames.load(screen.record).reference(code)
    assert reference is not None, f"{code} is not in the frames log"
    return reference


def _jpeg(rgb: np.ndarray, quality_: int) -> np.ndarray:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality_]
    )
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.x11
@pytest.mark.parametrize("content", ["motion", "static"])
def test_the_rebuilt_frame_is_the_pattern_screen_pixel_for_pixel(
    screens: dict[str, PatternScreen], content: str
) -> None:
    screen = screens[content]
    for capture in screen.captures:
        reference = _reference(screen, capture.code)
        assert reference.shape == (HEIGHT, WIDTH, 3)
        different = int(np.count_nonzero((reference != capture.rgb).any(axis=2)))
        assert different == 0, f"{different} pixels differ from the screen at {capture.code}"
        scored = quality.score(capture.rgb, reference)
        assert scored.psnr_db == math.inf and scored.ssim == pytest.approx(1.0)


@pytest.mark.x11
def test_the_frames_log_has_every_painted_frame(screens: dict[str, PatternScreen]) -> None:
    for content, screen in screens.items():
        lines = [line.split() for line in screen.record.frames_log.read_text().splitlines()]
        counters = [int(fields[0]) for fields in lines]
        assert len(counters) > CAPTURES
        assert counters == list(range(len(counters)))  # one line per frame, none missing
        offsets = {(fields[2], fields[3]) for fields in lines}
        if content == "motion":
            assert len(offsets) > CAPTURES
        else:
            assert offsets == {("0", "0")}  # the static page never moves


@pytest.mark.x11
@pytest.mark.parametrize("content", ["motion", "static"])
def test_heavier_damage_scores_lower(screens: dict[str, PatternScreen], content: str) -> None:
    capture = screens[content].captures[0]
    reference = _reference(screens[content], capture.code)
    for light, heavy in (
        (_jpeg(capture.rgb, 90), _jpeg(capture.rgb, 30)),
        (cv2.GaussianBlur(capture.rgb, (0, 0), 0.6), cv2.GaussianBlur(capture.rgb, (0, 0), 2.0)),
    ):
        lighter, heavier = quality.score(light, reference), quality.score(heavy, reference)
        assert math.isfinite(heavier.psnr_db) and heavier.psnr_db < lighter.psnr_db < math.inf
        assert heavier.ssim < lighter.ssim < 1.0


@pytest.mark.x11
def test_what_the_viewer_drew_over_the_picture_is_left_out(screens: dict[str, PatternScreen]) -> None:
    capture = screens["motion"].captures[0]
    reference = _reference(screens["motion"], capture.code)
    labelled = capture.rgb.copy()
    label = (40, HEIGHT - 120, 300, 80)  # a white caption over the picture, as a room's name label
    labelled[label[1] : label[1] + label[3], label[0] : label[0] + label[2]] = 255
    clean = quality.score(capture.rgb, reference)
    assert quality.score(labelled, reference).psnr_db < 30  # the caption dominates the error
    masked = quality.score(labelled, reference, covered=[label])
    assert masked.psnr_db == clean.psnr_db == math.inf
    assert masked.ssim > 0.999


@pytest.mark.x11
def test_the_frame_is_looked_up_by_its_strip(screens: dict[str, PatternScreen]) -> None:
    screen = screens["motion"]
    first, *others = screen.captures
    right = quality.score(first.rgb, _reference(screen, first.code))
    for other in others:  # a few frames later: the pan has moved on by a few pixels
        wrong = quality.score(first.rgb, _reference(screen, other.code))
        assert wrong.psnr_db < 25 and wrong.ssim < 0.8 * right.ssim, (wrong, other.code, first.code)


@pytest.mark.x11
def test_snapshots_without_a_painted_frame_are_skipped_and_counted(
    screens: dict[str, PatternScreen], tmp_path: Path
) -> None:
    screen = screens["motion"]
    capture = screen.captures[0]
    path = tmp_path / "shown.npy"
    np.save(path, _jpeg(capture.rgb, 50))
    code = capture.code
    snapshots = [
        {"path": str(path), "counter": code.counter, "timestamp_ms": code.timestamp_ms},
        {"path": str(path), "counter": None, "timestamp_ms": None},  # illegible strip
        {"path": str(path), "counter": code.counter, "timestamp_ms": code.timestamp_ms + 1},  # never painted
    ]
    summary = quality.score_snapshots(snapshots, screen.record)
    expected = quality.score(_jpeg(capture.rgb, 50), _reference(screen, code))
    assert (summary.frames, summary.skipped) == (1, 2)
    assert summary.psnr_db == pytest.approx(expected.psnr_db) and summary.ssim == pytest.approx(expected.ssim)
    assert quality.score_snapshots(snapshots[1:], screen.record) == quality.QualitySummary(None, None, 0, 2)
