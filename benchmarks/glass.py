"""Reading the timestamp strip off a screen: glass to glass at the room's (or a rival's) display.

Run by the orchestrator as ``python -m benchmarks.glass --display :N [--rate 60]``. It prints
``{"width": W, "height": H}`` (the screen's size) once it can grab that X screen, then answers commands on
stdin (one JSON line each):

- ``{"cmd": "begin", "source": [W, H], "rect": [x, y, w, h] | null}``: start a window. ``source`` is the
  size of the picture the pattern paints; ``rect`` is where the viewer shows it on this screen (``null``:
  fitted to the whole screen with its aspect kept, centred, as a full-screen video player shows it).
- ``{"cmd": "end"}``: stop; answers with the window's samples in :meth:`StripSamples.report`'s shape.
- ``{"cmd": "snapshot", "path": P}``: grab the whole picture rect once, scaled back to the source size,
  and save it as an RGB ``uint8`` array (``numpy.save``); answers with the strip it shows
  (``{"counter": n, "timestamp_ms": t}`` or nulls when illegible).

Between ``begin`` and ``end`` a thread grabs the strip's corner of the screen at ``--rate`` per second on
a fixed schedule (a late grab is not followed by a burst) and reads it. Every grab is a sample, whether the
screen changed or not: latency is the grab's time minus the painted time of what the screen shows then, so
a frozen picture counts as it grows old, not only the frames that arrived. "Unique fps" over a window is
then the frames the viewer actually showed per second, as far as ``--rate`` can see them.

The grab's time is the middle of the ``XShmGetImage`` round trip (mss), under a millisecond here for the
strip's corner. Sampling at 60 Hz alone adds half a sampling interval on average, as a camera filming the
room's screen would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import mss
import numpy as np

from benchmarks import timecode
from benchmarks.cases import START_TIMEOUT, Case, Settings
from benchmarks.procs import BenchmarkError, Child, XServer, child_env, commands, emit
from benchmarks.samples import StripSamples, latency_summary, summarize_stream

DEFAULT_RATE = 60.0
STRIP_MARGIN = 16
"""Source pixels around the strip that are grabbed too, so a slightly misplaced rect still holds it."""


@dataclass(frozen=True)
class Placement:
    """Where a ``source``-sized picture is shown on the screen: ``rect`` in screen pixels."""

    source: tuple[int, int]
    rect: tuple[int, int, int, int]

    @classmethod
    def fitted(cls, source: tuple[int, int], screen: tuple[int, int]) -> Placement:
        """The picture scaled to the screen with its aspect kept and centred (letterbox or pillarbox)."""
        scale = min(screen[0] / source[0], screen[1] / source[1])
        width, height = round(source[0] * scale), round(source[1] * scale)
        return cls(source, ((screen[0] - width) // 2, (screen[1] - height) // 2, width, height))

    @property
    def scale(self) -> tuple[float, float]:
        return self.rect[2] / self.source[0], self.rect[3] / self.source[1]

    def strip_corner(self) -> tuple[dict[str, int], tuple[int, int]]:
        """The screen region (mss monitor dict) holding the strip, and its size in source pixels."""
        geometry = timecode.strip_geometry(*self.source)
        width = min(self.source[0], geometry.right + STRIP_MARGIN)
        height = min(self.source[1], geometry.bottom + STRIP_MARGIN)
        sx, sy = self.scale
        region = {
            "left": self.rect[0],
            "top": self.rect[1],
            "width": max(1, round(width * sx)),
            "height": max(1, round(height * sy)),
        }
        return region, (width, height)


def to_source_luma(bgra: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A grabbed BGRA region as grey at ``size`` (w, h) source pixels (the strip is black and white)."""
    grey = cv2.cvtColor(bgra, cv2.COLOR_BGRA2GRAY)
    if (grey.shape[1], grey.shape[0]) != size:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


class GlassSampler:
    """Grabs the strip corner of one X screen on a fixed schedule, in a thread, into :class:`StripSamples`."""

    def __init__(self, display: str, rate: float) -> None:
        self._display = display
        self._period = 1.0 / rate
        self._lock = threading.Lock()
        self._samples = StripSamples()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with mss.MSS(display=display) as grabber:
            monitor = grabber.monitors[0]
            self.screen = (int(monitor["width"]), int(monitor["height"]))

    def begin(self, placement: Placement) -> None:
        self.end()
        self._samples = StripSamples()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(placement,), name="glass", daemon=True)
        self._thread.start()

    def end(self) -> dict[str, Any] | None:
        if self._thread is None:
            return None
        self._stop.set()
        self._thread.join()
        self._thread = None
        with self._lock:
            return self._samples.report()

    def _run(self, placement: Placement) -> None:
        region, size = placement.strip_corner()
        with mss.MSS(display=self._display) as grabber:
            with self._lock:
                self._samples.reset()
            due = time.monotonic()
            while not self._stop.is_set():
                before = time.monotonic()
                shot = grabber.grab(region)
                after = time.monotonic()
                luma = to_source_luma(np.asarray(shot), size)
                with self._lock:
                    self._samples.observe(luma, full_size=placement.source, now_ms=(before + after) * 500.0)
                due = max(due + self._period, time.monotonic())
                self._stop.wait(max(0.0, due - time.monotonic()))

    def snapshot(self, placement: Placement) -> tuple[np.ndarray, timecode.Timecode | None]:
        """The whole picture once, as RGB at the source size, and the strip it shows."""
        x, y, width, height = placement.rect
        with mss.MSS(display=self._display) as grabber:
            shot = np.asarray(grabber.grab({"left": x, "top": y, "width": width, "height": height}))
        rgb = cv2.cvtColor(shot, cv2.COLOR_BGRA2RGB)
        if (width, height) != placement.source:
            rgb = cv2.resize(rgb, placement.source, interpolation=cv2.INTER_AREA)
        code = timecode.decode(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        return rgb, code


# -- the orchestrator's side ----------------------------------------------------------------------

SNAPSHOTS = 5


SNAPSHOT_SPACING = 0.2
"""Seconds between the snapshots of the glass after a run's window (a spacing, not a synchronization)."""


async def start_glass(name: str, display: str, log_dir: Path) -> Child:
    """A :mod:`benchmarks.glass` sampler on ``display``, once it can grab that screen."""
    child = await Child.spawn(name, "benchmarks.glass", ["--display", display], child_env(), log_dir)
    try:
        await child.read(START_TIMEOUT)
    except BenchmarkError:
        await child.aclose()
        raise
    return child


async def take_snapshots(
    glass: Child,
    log_dir: Path,
    label: str,
    *,
    source: tuple[int, int] | None = None,
    rect: Sequence[int] | None = None,
    covered: Sequence[Sequence[int]] = (),
) -> list[dict[str, Any]]:
    """:data:`SNAPSHOTS` pictures of the glass, :data:`SNAPSHOT_SPACING` apart, saved in ``log_dir``.

    Each is the picture rect scaled back to the source size as an RGB ``.npy`` array, listed with the
    strip it shows (``None`` when illegible), for :mod:`benchmarks.quality` to score. ``covered``: screen
    rects the viewer draws captions in over the picture at ``rect`` (shown at ``source`` size), listed
    in source pixels so the scores leave them out."""
    in_source = [_to_source(box, rect, source) for box in covered] if rect and source else []
    shots = []
    for index in range(SNAPSHOTS):
        if index:
            await asyncio.sleep(SNAPSHOT_SPACING)
        path = log_dir / f"glass-{label}-{index + 1}.npy"
        answer = await glass.request("snapshot", path=str(path))
        shots.append(
            {
                "path": answer["path"],
                "counter": answer["counter"],
                "timestamp_ms": answer["timestamp_ms"],
                "covered": in_source,
            }
        )
    return shots


def _to_source(box: Sequence[int], rect: Sequence[int], source: tuple[int, int]) -> list[int]:
    """A screen rect over the picture at ``rect`` in pixels of the ``source``-sized picture (rounded out)."""
    sx, sy = source[0] / rect[2], source[1] / rect[3]
    left, top = math.floor((box[0] - rect[0]) * sx), math.floor((box[1] - rect[1]) * sy)
    right = math.ceil((box[0] + box[2] - rect[0]) * sx)
    bottom = math.ceil((box[1] + box[3] - rect[1]) * sy)
    return [left, top, right - left, bottom - top]


async def measure_floor(case: Case, xserver: XServer, settings: Settings) -> dict[str, Any]:
    """The glass sampler reading the senders' screen itself for a window: what sampling alone costs."""
    glass = await start_glass("glass-floor", xserver.display, settings.log_dir)
    try:
        await glass.request("begin", source=[case.width, case.height], rect=None)
        await asyncio.sleep(settings.seconds)  # the measurement window
        window = await glass.request("end")
    finally:
        await glass.aclose()
    stream = summarize_stream(window)
    return {
        "latency_ms": latency_summary(stream["latencies_ms"]),
        "displayed_fps": stream["unique_fps"],
        "samples": stream["frames"],
        "unreadable": stream["unreadable_frames"],
    }


# -- the child's side --------------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    sampler = GlassSampler(args.display, args.rate)
    emit({"width": sampler.screen[0], "height": sampler.screen[1]})
    placement: Placement | None = None
    stdin = await commands()
    while line := await stdin.readline():
        request = json.loads(line)
        command = request["cmd"]
        if command == "begin":
            source = (int(request["source"][0]), int(request["source"][1]))
            rect = request.get("rect")
            placement = (
                Placement(source, tuple(int(v) for v in rect))  # type: ignore[arg-type]
                if rect
                else Placement.fitted(source, sampler.screen)
            )
            sampler.begin(placement)
            emit({"ok": True, "rect": list(placement.rect)})
        elif command == "end":
            report = sampler.end()
            emit(report if report is not None else {"error": "end without begin"})
        elif command == "snapshot":
            if placement is None:
                emit({"error": "snapshot before begin: the picture's place is not known"})
                continue
            rgb, code = await asyncio.to_thread(sampler.snapshot, placement)
            np.save(request["path"], rgb)
            emit(
                {
                    "path": request["path"],
                    "counter": None if code is None else code.counter,
                    "timestamp_ms": None if code is None else code.timestamp_ms,
                }
            )
        else:
            emit({"error": f"unknown command {command!r}"})
    sampler.end()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Glass sampler (started by benchmarks.run)")
    parser.add_argument("--display", required=True, help="the X display to read, e.g. :42")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="grabs per second (default 60)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
