"""The glass sampler (:mod:`benchmarks.glass`) on a real Xvfb with the real pattern window.

It must read the strip off the screen as the screen shows it: small positive latencies, the pattern's
rate as the displayed rate, nothing illegible, and, the point of sampling over time, a frozen screen
counted as it ages. The child processes are driven by their own JSON lines, with plain blocking pipes (a
sync test: no event loop runs here).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

from benchmarks import timecode
from benchmarks.glass import Placement
from benchmarks.samples import summarize_stream
from coalesce_testing.xvfb import XServer, start_xvfb

ROOT = Path(__file__).resolve().parents[2]
SIZE = (320, 240)
PATTERN_FPS = 20.0
"""Well under the sampler's 60 Hz, so every painted frame is seen even on a loaded machine."""
READY_TIMEOUT = 30.0


def test_a_wider_picture_is_letterboxed_and_a_taller_one_pillarboxed() -> None:
    letterbox = Placement.fitted((1920, 1080), (1280, 1024))
    assert letterbox.rect == (0, 152, 1280, 720)
    assert letterbox.scale == pytest.approx((2 / 3, 2 / 3))
    pillarbox = Placement.fitted((1280, 1024), (1920, 1080))
    assert pillarbox.rect == (285, 0, 1350, 1080)
    exact = Placement.fitted((1280, 720), (1280, 720))
    assert exact.rect == (0, 0, 1280, 720)
    region, size = letterbox.strip_corner()
    geometry = timecode.strip_geometry(1920, 1080)
    assert (region["left"], region["top"]) == (0, 152)
    assert size == (geometry.right + 16, geometry.bottom + 16)
    assert region["width"] == round(size[0] * 2 / 3)


class _Child:
    """A benchmark child speaking JSON lines over blocking pipes."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], log: IO[bytes]) -> None:
        env = {**env, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )

    def line(self) -> bytes:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the child exited ({self.process.wait()})"
        return line

    def request(self, command: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": command, **fields}) + "\n").encode())
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.line())
        assert "error" not in answer, answer
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a test may have stopped it
            self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def screen(tmp_path: Path) -> Iterator[XServer]:
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (bash scripts/setup.sh installs it)")
    with start_xvfb(*SIZE, log_path=tmp_path / "xvfb.log") as xserver:
        yield xserver


@pytest.fixture
def pattern(screen: XServer, tmp_path: Path) -> Iterator[_Child]:
    with (tmp_path / "pattern.log").open("wb") as log:
        child = _Child("benchmarks.pattern", ["motion", "--fps", f"{PATTERN_FPS:g}"], screen.env(), log)
    try:
        assert child.line().strip() == b"ready"
        yield child
    finally:
        child.close()


@pytest.fixture
def glass(screen: XServer, pattern: _Child, tmp_path: Path) -> Iterator[_Child]:
    with (tmp_path / "glass.log").open("wb") as log:
        child = _Child("benchmarks.glass", ["--display", screen.display], dict(os.environ), log)
    try:
        assert json.loads(child.line()) == {"width": SIZE[0], "height": SIZE[1]}
        yield child
    finally:
        child.close()


@pytest.mark.x11
def test_the_sampler_reads_the_pattern_off_the_screen(glass: _Child, tmp_path: Path) -> None:
    assert glass.request("begin", source=list(SIZE), rect=None) == {"ok": True, "rect": [0, 0, *SIZE]}
    time.sleep(2.0)  # the measurement window
    window = glass.request("end")
    stream = summarize_stream(window)
    assert stream["frames"] > 30  # a grab every 1/60 s, even on a busy machine at least half of them
    assert stream["unreadable_frames"] == 0
    latencies = stream["latencies_ms"]
    assert len(latencies) == stream["frames"]
    # Every grab is a sample: a screen painted 20 times a second is at most a few frames old when grabbed.
    assert all(0 < x < 1000 for x in latencies)
    # Each painted frame is seen (the pattern's own counters say how fast it painted).
    assert stream["source_fps"] == pytest.approx(PATTERN_FPS, rel=0.3)
    assert stream["unique_fps"] == pytest.approx(stream["source_fps"], rel=0.3)
    snapshot = glass.request("snapshot", path=str(tmp_path / "shot.npy"))
    picture = np.load(snapshot["path"])
    assert picture.shape == (SIZE[1], SIZE[0], 3) and picture.dtype == np.uint8
    assert snapshot["counter"] is not None
    grey = picture.mean(axis=2).astype(np.uint8)
    code = timecode.decode(grey)
    assert code is not None and code.counter == snapshot["counter"]


@pytest.mark.x11
def test_a_frozen_screen_counts_as_it_ages(glass: _Child, pattern: _Child) -> None:
    """What a per-delivered-frame reading would miss: while nothing new is painted, latency grows."""
    glass.request("begin", source=list(SIZE), rect=None)
    time.sleep(0.5)  # the scenario: half a second of motion,
    os.kill(pattern.process.pid, signal.SIGSTOP)
    try:
        time.sleep(1.0)  # a second frozen,
    finally:
        os.kill(pattern.process.pid, signal.SIGCONT)
    time.sleep(0.5)  # and half a second of motion again
    stream = summarize_stream(glass.request("end"))
    latencies = stream["latencies_ms"]
    assert max(latencies) > 800  # the frozen frame, still on screen near the end of the freeze
    assert sorted(latencies)[len(latencies) // 10] < 300  # while it moved, frames were fresh
