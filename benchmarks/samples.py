"""What a receiving end records per frame, and how a window of records becomes figures.

:class:`StripSamples` is fed the luma of each decoded frame (Coalesce's receiver, or the bytes the ffmpeg
baseline's decoder writes) and keeps, for the current measurement window, the latency of every frame
whose strip it could read and the frame counters it saw. :func:`summarize_stream` turns one window into
the figures the report shows. The same class records the grabs of a :mod:`benchmarks.glass` sampler,
where every grab is a sample whether the screen changed or not.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from benchmarks import timecode


class StripSamples:
    """Per-stream samples of one measurement window (and the stream's first-frame time, kept across)."""

    def __init__(self, geometry: timecode.StripGeometry | None = None) -> None:
        self.first_frame_at: float | None = None
        self._geometry = geometry
        self._size = (0, 0)
        self.reset()

    def reset(self) -> None:
        self.window_started = time.monotonic()
        self.frames = 0
        self.unreadable = 0
        self.latencies_ms: list[float] = []
        self.counters: list[int] = []
        self.stamps: list[int] = []

    def observe(
        self, luma: np.ndarray, full_size: tuple[int, int] | None = None, now_ms: float | None = None
    ) -> None:
        """Record one frame; ``luma`` may be the top-left part of a screen of ``full_size`` (w, h).

        ``now_ms`` is when the frame was seen (``time.monotonic()`` in ms; default: now)."""
        if now_ms is None:
            now_ms = time.monotonic() * 1000.0
        if self.first_frame_at is None:
            self.first_frame_at = now_ms / 1000.0
        self.frames += 1
        size = full_size or (luma.shape[1], luma.shape[0])
        if size != self._size:
            self._size = size
            self._geometry = timecode.strip_geometry(*size)
        code = timecode.decode(luma, self._geometry)
        if code is None:
            self.unreadable += 1
            return
        self.latencies_ms.append(timecode.age_ms(code.timestamp_ms, now_ms))
        self.counters.append(code.counter)
        self.stamps.append(code.timestamp_ms)

    def skip(self) -> None:
        """Record a frame whose strip cannot be read (a pixel format without a luma plane)."""
        self.frames += 1
        self.unreadable += 1

    def report(self) -> dict[str, Any]:
        ended = time.monotonic()
        return {
            "seconds": ended - self.window_started,
            "ended_ms": ended * 1000.0,
            "frames": self.frames,
            "unreadable": self.unreadable,
            "latencies_ms": [round(x, 2) for x in self.latencies_ms],
            "counters": list(self.counters),  # copies: the reader goes on appending after the window
            "stamps": list(self.stamps),
            "width": self._size[0],
            "height": self._size[1],
        }


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _unwrapped(counters: list[int]) -> list[int]:
    """16-bit counters made monotonic across wrap-arounds (frames arrive in order)."""
    result: list[int] = []
    offset = 0
    previous: int | None = None
    for counter in counters:
        if previous is not None and counter + offset < result[-1] - timecode.COUNTER_MODULUS // 2:
            offset += timecode.COUNTER_MODULUS
        result.append(counter + offset)
        previous = counter
    return result


def summarize_stream(window: dict[str, Any]) -> dict[str, Any]:
    """Figures for one stream's window report (:meth:`StripSamples.report`).

    Drops are counted to the window's end: a stream that stopped early also dropped the frames painted
    after its last one, less those still in flight at the end (the window's median latency times the
    pattern's rate, as its counters and timestamps give it). Without that, a stream that froze half-way
    would show no drops at all.
    """
    seconds = max(float(window["seconds"]), 1e-9)
    counters = _unwrapped(list(window["counters"]))
    stamps = list(window["stamps"])
    latencies = list(window["latencies_ms"])
    distinct = len(set(counters))
    shown = counters[-1] - counters[0] + 1 if counters else 0
    source_fps = float("nan")
    if len(counters) >= 2 and stamps[-1] != stamps[0]:
        source_fps = (
            (counters[-1] - counters[0]) / ((stamps[-1] - stamps[0]) % timecode.TIMESTAMP_MODULUS) * 1000
        )
    after_last = 0
    ended_ms = window.get("ended_ms")
    if ended_ms is not None and latencies and source_fps > 0:
        late = timecode.age_ms(stamps[-1], float(ended_ms)) - statistics.median(latencies)
        after_last = max(0, int(late * source_fps / 1000))
    return {
        "frames": int(window["frames"]),
        "fps": window["frames"] / seconds,
        "unique_fps": distinct / seconds,
        "source_fps": source_fps,
        "shown_frames": shown + after_last,
        "dropped_frames": max(0, shown - distinct) + after_last,
        "unreadable_frames": int(window["unreadable"]),
        "latencies_ms": latencies,
    }


def latency_summary(latencies: list[float]) -> dict[str, float | int]:
    return {
        "samples": len(latencies),
        "median": statistics.median(latencies) if latencies else float("nan"),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        "min": min(latencies) if latencies else float("nan"),
    }
