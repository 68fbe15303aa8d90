"""Glass-to-glass benchmark of Coalesce against its rivals (sides) on the same machine and screen.

``python -m benchmarks`` runs the standard matrix; ``--sizes``, ``--content``, ``--codecs`` and
``--senders`` (comma-separated) run their product instead. For every size it starts two Xvfb screens of
that size, the senders' and the room's; for every content a pattern window (:mod:`benchmarks.pattern`) on
the senders' screen that paints a timestamp strip every frame. For every case it runs each side of
:data:`SIDES` (``--sides``) in turn, the order rotating over the runs (:func:`run_order`). A side is a
function ``(case, xserver, pattern, settings, stage) -> result dict`` (:data:`SideRun`); its result has
the shape :func:`_combine` builds.

Coalesce's side is a receiver process with its real room window full screen on the room's screen and N
sender processes. Its headline latency is read at the room's glass: a :mod:`benchmarks.glass` sampler grabs
the strip where the window draws each share, 60 times a second on a fixed schedule, so a frozen picture
counts as it ages. The latency at the decoder (the strip of every decoded frame, read in the receiver) is
a second, labelled figure. Once per case the same sampler reads the senders' screen itself: the "floor",
what the sampling alone costs. The ffmpeg side (:mod:`benchmarks.baseline`) runs on the same screen at the
bitrate Coalesce reached.

Each run measures a window of ``--seconds`` after the first frame has arrived and ``--warmup`` more
seconds have passed (bitrate and encoder settle); after it, five snapshots of the room's glass go into the
run's log folder. The table goes to stdout, the report to ``--json``.

The report's JSON schema is :mod:`benchmarks.report` (dataclasses and a strict parse), described in
benchmarks/README.md. Figures that could not be measured are ``null`` (never NaN) in the JSON and ``-``
in the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import av

from benchmarks import quality, validity
from benchmarks import report as report_module
from benchmarks.baseline import BaselineStream, ffmpeg_path, ffmpeg_version
from benchmarks.procs import (
    BenchmarkError,
    Child,
    PatternChild,
    XServer,
    child_env,
    cpu_seconds,
    memory_mib,
    start_pattern,
    start_xvfb,
)
from benchmarks.samples import latency_summary, summarize_stream

PIN = "4821"
START_TIMEOUT = 30.0
DEFAULT_BITRATE = 4_000_000
MIN_BASELINE_BITRATE = 500_000
DEFAULT_SECONDS = 30.0
"""A window long enough for a p99 of 60 Hz samples to rest on ~18 samples, not one."""
SNAPSHOTS = 5
SNAPSHOT_SPACING = 0.2
"""Seconds between the snapshots of the glass after a run's window (a spacing, not a synchronization)."""
PATTERN_RATE = 0.95
"""The content changes a little slower than capture runs, so the phase between the two sweeps round a few
times a second: latency then averages over every phase, as it would for an event at a random moment. At
the same rate, the phase would stay where the processes happened to start, worth up to a frame interval
of difference from one run to the next."""
RATIO_FIGURES = (
    "glass_latency_median_ms",
    "glass_latency_p95_ms",
    "glass_latency_p99_ms",
    "glass_latency_max_ms",
    "decoder_latency_median_ms",
    "decoder_latency_p95_ms",
    "decoder_latency_max_ms",
    "displayed_fps",
    "fps",
    "sender_cpu",
    "receiver_cpu",
    "bitrate_mbps",
    "first_frame_s",
)


@dataclasses.dataclass(frozen=True)
class Case:
    width: int
    height: int
    content: str
    codec: str
    senders: int

    @property
    def name(self) -> str:
        return f"{self.width}x{self.height} {self.content} {self.codec} x{self.senders}"


@dataclasses.dataclass(frozen=True)
class Settings:
    seconds: float
    warmup: float
    fps: float
    pattern_fps: float
    sides: tuple[str, ...]
    log_dir: Path
    profile_dir: Path | None = None
    runs: int = 5
    max_load: float = validity.MAX_BUSY_FRACTION
    max_steal: float = validity.MAX_STEAL_FRACTION

    def recorded(self) -> report_module.Settings:
        """What a report keeps of these settings (not where this machine put its logs)."""
        return report_module.Settings(
            seconds=self.seconds,
            warmup=self.warmup,
            fps=self.fps,
            pattern_fps=self.pattern_fps,
            sides=self.sides,
            runs=self.runs,
            max_load=self.max_load,
            max_steal=self.max_steal,
        )


@dataclasses.dataclass
class Stage:
    """What the sides of one case share besides the senders' screen and its pattern.

    ``room`` is the room's own screen (the same size), where a side shows what it received; ``bitrate`` is
    the rate the rivals are matched to, the one Coalesce last reached in this case (bits per second,
    all streams together)."""

    room: XServer
    bitrate: int


SideRun = Callable[[Case, XServer, PatternChild, Settings, Stage], Awaitable[dict[str, Any]]]
"""One run of one side: ``(case, the senders' screen, its pattern, settings, stage) -> result``."""

STANDARD_CASES = (
    Case(1280, 720, "static", "h264", 1),
    Case(1280, 720, "motion", "h264", 1),
    Case(1920, 1080, "static", "h264", 1),
    Case(1920, 1080, "motion", "h264", 1),
    Case(1920, 1080, "motion", "vp8", 1),
    Case(1280, 720, "motion", "h264", 4),
    Case(3840, 2160, "motion", "h264", 1),
)
QUICK_CASES = (Case(320, 240, "motion", "h264", 1),)


# -- what one run yields -------------------------------------------------------------------------------


def _failed(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


def _screen_cpu(xserver: XServer, pattern: Child) -> tuple[float, float, float]:
    """CPU seconds so far of the X server and the pattern, and of the whole machine."""
    return cpu_seconds(xserver.pid), pattern.cpu_seconds(), validity.CpuTimes.read().busy_seconds


def _delta(
    after: tuple[float, float, float], before: tuple[float, float, float]
) -> tuple[float, float, float]:
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def _mean(streams: list[dict[str, Any]], key: str) -> float:
    values = [s[key] for s in streams if not math.isnan(s[key])]
    return statistics.fmean(values) if values else math.nan


def _combine(
    windows: list[dict[str, Any]],
    *,
    glass: list[dict[str, Any]] | None = None,
    codec: str,
    elapsed: float,
    sender_cpu: float,
    receiver_cpu: float,
    screen_cpu: tuple[float, float, float],
    bytes_sent: int,
    first_frame: list[float],
    first_frame_from_launch: list[float],
    capture_drops: int | None,
    glass_cpu: float = 0.0,
    room_x_cpu: float = 0.0,
    snapshots: list[dict[str, Any]] | None = None,
    memory: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """One side's run as the report keeps it.

    ``windows`` are the decoder point's per-stream windows (:meth:`StripSamples.report`), ``glass`` the
    glass sampler's per-stream windows on the side's viewing screen, or ``None`` where the side has no
    glass yet. Every CPU figure is CPU seconds over the window; ``glass_cpu`` (the samplers') and
    ``room_x_cpu`` (the X server of the screen the side shows its picture on) are left out of "other CPU".
    ``memory``: the sending and the receiving side's PSS at the window's end (:func:`procs.memory_mib`).
    """
    own = glass_cpu + room_x_cpu
    streams = [summarize_stream(w) for w in windows]
    decoder = [x for s in streams for x in s["latencies_ms"]]
    seen = [summarize_stream(w) for w in glass] if glass is not None else []
    at_glass = [x for s in seen for x in s["latencies_ms"]]
    # Drops and shown frames at the glass where it is read: what the room saw; else at the decoder.
    counted = seen if glass is not None else streams
    shown = sum(s["shown_frames"] for s in counted)
    dropped = sum(s["dropped_frames"] for s in counted)
    headline = at_glass if glass is not None else decoder
    error = None
    if not decoder and not at_glass:
        error = "no frame with a legible timestamp strip arrived in the window"
    elif glass is not None and not at_glass:
        error = "the room's screen never showed a legible timestamp strip in the window"
    return {
        "ok": error is None and bool(streams or seen),
        "error": error,
        "codec": codec,
        "streams": len(streams) if streams else len(seen),
        "frames": sum(s["frames"] for s in streams),
        "glass_latency_ms": latency_summary(at_glass) if glass is not None else None,
        "decoder_latency_ms": latency_summary(decoder) if windows else None,
        "fps": _mean(streams, "fps"),
        "unique_fps": _mean(streams, "unique_fps"),
        "displayed_fps": _mean(seen, "unique_fps") if glass is not None else None,
        "source_fps": _mean(seen or streams, "source_fps"),
        "dropped_frames": dropped,
        "dropped_ratio": dropped / shown if shown else math.nan,
        "capture_drops": capture_drops,
        "unreadable_frames": sum(s["unreadable_frames"] for s in streams),
        "glass_samples": sum(s["frames"] for s in seen) if glass is not None else None,
        "glass_unreadable": sum(s["unreadable_frames"] for s in seen) if glass is not None else None,
        "sender_cpu": sender_cpu / elapsed,
        "receiver_cpu": receiver_cpu / elapsed,
        "x_server_cpu": screen_cpu[0] / elapsed,
        "pattern_cpu": screen_cpu[1] / elapsed,
        "glass_cpu": glass_cpu / elapsed,
        "room_x_cpu": room_x_cpu / elapsed,
        "other_cpu": max(0.0, screen_cpu[2] - sender_cpu - receiver_cpu - sum(screen_cpu[:2]) - own)
        / elapsed,
        "bitrate_mbps": bytes_sent * 8 / elapsed / 1e6,
        "first_frame_s": statistics.fmean(first_frame) if first_frame else math.nan,
        "first_frame_from_launch_s": statistics.fmean(first_frame_from_launch)
        if first_frame_from_launch
        else math.nan,
        "window_s": elapsed,
        "latencies_ms": headline,
        "decoder_latencies_ms": decoder,
        "snapshots": snapshots or [],
        "sender_memory_mib": None if memory is None else memory[0],
        "receiver_memory_mib": None if memory is None else memory[1],
    }


# -- the glass -----------------------------------------------------------------------------------------


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


# -- one run of Coalesce -------------------------------------------------------------------------------


async def run_coalesce(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    data_dir = settings.log_dir / "receiver-data"
    receiver = await Child.spawn(
        "receiver",
        "benchmarks.receiver_proc",
        ["--pin", PIN, "--data-dir", str(data_dir), "--window", "--source", f"{case.width}x{case.height}"],
        child_env(stage.room.display),
        settings.log_dir,
    )
    senders: list[Child] = []
    glasses: list[Child] = []
    profilers: list[asyncio.subprocess.Process] = []
    try:
        port = (await receiver.read(START_TIMEOUT))["port"]
        for index in range(case.senders):
            args = [
                "--port", str(port), "--pin", PIN, "--display", xserver.display, "--codec", case.codec,
                "--fps", f"{settings.fps:g}", "--name", f"bench-{index}",
            ]  # fmt: skip
            env = child_env(xserver.display)
            senders.append(
                await Child.spawn(f"sender-{index}", "benchmarks.sender_proc", args, env, settings.log_dir)
            )
        started = await asyncio.gather(*(s.read(START_TIMEOUT) for s in senders))
        first = await receiver.request("wait", START_TIMEOUT + 5, count=case.senders, timeout=START_TIMEOUT)
        first_at = {s["sender"]: s["first_frame_at"] for s in first["streams"]}
        first_frame, from_launch = [], []
        for index, (sender, info) in enumerate(zip(senders, started, strict=True)):
            at = first_at.get(f"bench-{index}")
            if at is not None:
                first_frame.append(at - info["share_started_at"])
                from_launch.append(at - sender.spawned_at)
        glasses = list(
            await asyncio.gather(
                *(
                    start_glass(f"glass-{i}", stage.room.display, settings.log_dir)
                    for i in range(case.senders)
                )
            )
        )

        await asyncio.sleep(settings.warmup)
        placements = (await receiver.request("placements"))["placements"]
        placed = {p["sender"]: p["rect"] for p in placements}
        captions = {p["sender"]: p["covered"] for p in placements}
        missing = [f"bench-{i}" for i in range(case.senders) if f"bench-{i}" not in placed]
        if missing:
            raise BenchmarkError(f"the room window shows no picture for {', '.join(missing)}")
        stats_before = await asyncio.gather(*(s.request("stats") for s in senders))
        cpu_before = (
            [s.cpu_seconds() for s in senders],
            receiver.cpu_seconds(),
            _screen_cpu(xserver, pattern),
            sum(g.cpu_seconds() for g in glasses),
            cpu_seconds(stage.room.pid),
        )
        await receiver.request("begin")
        await asyncio.gather(
            *(
                g.request("begin", source=[case.width, case.height], rect=placed[f"bench-{i}"])
                for i, g in enumerate(glasses)
            )
        )
        began = time.monotonic()
        profilers = await _start_profilers(case, [receiver, *senders], settings)
        await asyncio.sleep(settings.seconds)  # the measurement window
        window = await receiver.request("end")
        glass_windows = list(await asyncio.gather(*(g.request("end") for g in glasses)))
        elapsed = time.monotonic() - began
        cpu_after = (
            [s.cpu_seconds() for s in senders],
            receiver.cpu_seconds(),
            _screen_cpu(xserver, pattern),
            sum(g.cpu_seconds() for g in glasses),
            cpu_seconds(stage.room.pid),
        )
        stats_after = await asyncio.gather(*(s.request("stats") for s in senders))
        memory = memory_mib([s.pid for s in senders]), memory_mib([receiver.pid])
        snapshots = await take_snapshots(
            glasses[0],
            settings.log_dir,
            "bench-0",
            source=(case.width, case.height),
            rect=placed["bench-0"],
            covered=captions["bench-0"],
        )
    finally:
        await asyncio.gather(
            *(g.aclose() for g in glasses), *(s.aclose() for s in senders), receiver.aclose()
        )
    for profiler in profilers:
        await profiler.wait()
    return _combine(
        [s for s in window["streams"] if s["frames"]],
        glass=[w for w in glass_windows if w["frames"]],
        codec=started[0]["codec"] if started else "",
        elapsed=elapsed,
        sender_cpu=sum(cpu_after[0]) - sum(cpu_before[0]),
        receiver_cpu=cpu_after[1] - cpu_before[1],
        screen_cpu=_delta(cpu_after[2], cpu_before[2]),
        glass_cpu=cpu_after[3] - cpu_before[3],
        room_x_cpu=cpu_after[4] - cpu_before[4],
        bytes_sent=sum(
            a["bytes_sent"] - b["bytes_sent"] for a, b in zip(stats_after, stats_before, strict=True)
        ),
        first_frame=first_frame,
        first_frame_from_launch=from_launch,
        capture_drops=sum(
            a["capture_drops"] - b["capture_drops"] for a, b in zip(stats_after, stats_before, strict=True)
        ),
        snapshots=snapshots,
        memory=memory,
    )


async def _start_profilers(
    case: Case, children: list[Child], settings: Settings
) -> list[asyncio.subprocess.Process]:
    """py-spy on every child for the window, when ``--profile`` asked for it (collapsed stacks per thread).

    Python frames only, sampled without pausing the process: native stacks need a pause per sample, which
    slowed a 1080p share from 55 to 12 fps here. Time in C (x264, swscale, the decoder) shows as the Python
    call that entered it.
    """
    if settings.profile_dir is None:
        return []
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    settings.profile_dir.mkdir(parents=True, exist_ok=True)
    profilers = []
    for child in children:
        output = settings.profile_dir / f"{case.name.replace(' ', '-')}-{child.name}.txt"
        args = [
            "record", "--pid", str(child.pid), "--duration", str(max(1, int(settings.seconds))),
            "--rate", "100",
            "--threads", "--format", "raw", "--nonblocking", "--output", str(output),
        ]  # fmt: skip
        with output.with_suffix(".log").open("wb") as log:
            profilers.append(
                await asyncio.create_subprocess_exec(
                    py_spy, *args, stdout=asyncio.subprocess.DEVNULL, stderr=log
                )
            )
    return profilers


# -- one run of the baseline ---------------------------------------------------------------------------


async def run_ffmpeg(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    """The ffmpeg/RTP baseline at the bitrate Coalesce reached (per stream, at least 0.5 Mbps).

    TODO(glass): its glass column stays ``null`` until :mod:`benchmarks.baseline` shows its decoded
    picture in an ffmpeg viewer window on ``stage.room``; then a glass sampler reads it there as for
    Coalesce. Until then its only latency is at the decoder (the bytes its decoder writes)."""
    bitrate = max(MIN_BASELINE_BITRATE, stage.bitrate // case.senders)
    print(f"#   ffmpeg at {bitrate / 1e6:.1f} Mbps per stream", file=sys.stderr, flush=True)
    streams = [
        BaselineStream(index, xserver, case.codec, bitrate, settings.fps, settings.log_dir)
        for index in range(case.senders)
    ]
    try:
        for stream in streams:
            await stream.start()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await asyncio.gather(*(s.first_frame.wait() for s in streams))
        except TimeoutError:
            raise BenchmarkError(
                "the ffmpeg baseline decoded no frame:\n" + "\n".join(s.describe_failure() for s in streams)
            ) from None
        first_frame = [s.samples.first_frame_at - s.started_at for s in streams if s.samples.first_frame_at]
        await asyncio.sleep(settings.warmup)

        def snapshot() -> tuple[float, float, int, tuple[float, float, float]]:
            cpus = [s.cpu() for s in streams]
            return (
                sum(c[0] for c in cpus),
                sum(c[1] for c in cpus),
                sum(s.bytes_written() for s in streams),
                _screen_cpu(xserver, pattern),
            )

        before = snapshot()
        for stream in streams:
            stream.samples.reset()
        began = time.monotonic()
        await asyncio.sleep(settings.seconds)
        windows = [s.samples.report() for s in streams]
        elapsed = time.monotonic() - began
        after = snapshot()
        memory = (
            memory_mib([s.encoder.pid for s in streams if s.encoder is not None]),
            memory_mib([s.decoder.pid for s in streams if s.decoder is not None]),
        )
    finally:
        await asyncio.gather(*(s.aclose() for s in streams))
    return _combine(
        [w for w in windows if w["frames"]],
        codec={"h264": "libx264", "vp8": "libvpx"}[case.codec],
        elapsed=elapsed,
        sender_cpu=after[0] - before[0],
        receiver_cpu=after[1] - before[1],
        screen_cpu=_delta(after[3], before[3]),
        bytes_sent=after[2] - before[2],
        first_frame=first_frame,
        first_frame_from_launch=first_frame,
        capture_drops=None,
        memory=memory,
    )


# -- the matrix ----------------------------------------------------------------------------------------

SIDES: dict[str, SideRun] = {"coalesce": run_coalesce, "ffmpeg": run_ffmpeg}
"""Every side by name; Coalesce is the one the others are compared with. The integrator adds
``"chromium"`` from :mod:`benchmarks.browser`."""
OURS = "coalesce"


def _spread_figures(prefix: str, latency: dict[str, Any] | None) -> dict[str, float]:
    keys = ("median", "p95", "p99", "max")
    if latency is None:
        return {f"{prefix}_{k}_ms": math.nan for k in keys}
    return {f"{prefix}_{k}_ms": latency.get(k, math.nan) for k in keys}


def _figures(result: dict[str, Any] | None) -> dict[str, float]:
    """The figures of one passed run that :data:`SUMMARY_FIGURES` names (NaN where unmeasured)."""
    if not result or not result.get("ok"):
        return {}
    dropped = result.get("dropped_ratio")
    displayed = result.get("displayed_fps")
    return {
        **_spread_figures("glass_latency", result.get("glass_latency_ms")),
        **_spread_figures("decoder_latency", result.get("decoder_latency_ms")),
        "displayed_fps": math.nan if displayed is None else displayed,
        "fps": result["fps"],
        "sender_cpu": result["sender_cpu"],
        "receiver_cpu": result["receiver_cpu"],
        "bitrate_mbps": result["bitrate_mbps"],
        "first_frame_s": result["first_frame_s"],
        "unique_fps": result["unique_fps"],
        "dropped_pct": math.nan if dropped is None else 100 * dropped,
        "unreadable_frames": float(result["unreadable_frames"]),
        "glass_unreadable": math.nan
        if result.get("glass_unreadable") is None
        else result["glass_unreadable"],
        "other_cpu": result["other_cpu"],
        "psnr_db": _or_nan(result.get("psnr_db")),
        "ssim": _or_nan(result.get("ssim")),
        "sender_memory_mib": _or_nan(result.get("sender_memory_mib")),
        "receiver_memory_mib": _or_nan(result.get("receiver_memory_mib")),
    }


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


SUMMARY_FIGURES = (
    *RATIO_FIGURES,
    "psnr_db",
    "ssim",
    "sender_memory_mib",
    "receiver_memory_mib",
    "decoder_latency_p99_ms",
    "unique_fps",
    "dropped_pct",
    "unreadable_frames",
    "glass_unreadable",
    "other_cpu",
)
"""Figures summarized over a case's runs (median, min and max of the runs that passed the checks)."""


async def _measure(
    side: str, case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    """One side's run, refused on a busy machine and failed when :mod:`benchmarks.validity` says so."""
    load = await validity.sample_load(own=lambda: sum(_screen_cpu(xserver, pattern)[:2]))
    problem = validity.load_problem(load, max_busy=settings.max_load, max_steal=settings.max_steal)
    if problem is not None:
        result = _failed(problem)
    else:
        try:
            result = await SIDES[side](case, xserver, pattern, settings, stage)
        except BenchmarkError as exc:
            result = _failed(str(exc))
        if result.get("ok"):
            problems = validity.result_problems(
                result, streams=case.senders, pattern_exit=pattern.process.returncode
            )
            if problems:
                result = {**result, "ok": False, "error": "; ".join(problems)}
        if result.get("snapshots"):
            scores = await asyncio.to_thread(quality.score_snapshots, result["snapshots"], pattern.record)
            result.update(psnr_db=scores.psnr_db, ssim=scores.ssim, quality_frames=scores.frames)
    result["load_before"] = dataclasses.asdict(load)
    if not result["ok"]:
        print(f"#   {side} failed: {result['error']}", file=sys.stderr, flush=True)
    return result


def run_order(index: int, sides: Sequence[str]) -> list[str]:
    """The order of the sides in run ``index``: every rotation of ``sides``, then every rotation of their
    reverse (A B C, B C A, C A B, A C B, C B A, B A C, ...), so each side goes first, and follows each
    other side, as often as the number of runs allows, and none always has the fresher machine."""
    forward = list(sides)
    backward = forward[:1] + forward[:0:-1]
    rotations = [order[k:] + order[:k] for order in (forward, backward) for k in range(len(order))]
    unique = list(dict.fromkeys(tuple(r) for r in rotations))
    return list(unique[index % len(unique)])


def summarize_runs(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of each figure over the runs that passed; the failures' reasons beside them."""
    passed = [r for r in results if r.get("ok")]
    figures: dict[str, dict[str, float] | None] = {}
    for key in SUMMARY_FIGURES:
        values = [v for r in passed if not math.isnan(v := _figures(r).get(key, math.nan))]
        figures[key] = (
            {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None
        )
    return {
        "ok": bool(passed) and len(passed) == len(results),
        "runs": len(results),
        "ok_runs": len(passed),
        "errors": [r["error"] for r in results if not r.get("ok")],
        "codec": passed[0]["codec"] if passed else None,
        "samples": sum(len(r["latencies_ms"]) for r in passed),
        "figures": figures,
    }


def summary_ratios(ours: dict[str, Any], rival: dict[str, Any]) -> dict[str, float | None]:
    """Coalesce's median over the rival's, per figure in :data:`RATIO_FIGURES`."""
    result: dict[str, float | None] = {}
    for key in RATIO_FIGURES:
        a = (ours["figures"].get(key) or {}).get("median")
        b = (rival["figures"].get(key) or {}).get("median")
        result[key] = a / b if a is not None and b else None
    return result


async def run_case(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, room: XServer
) -> dict[str, Any]:
    case_dir = settings.log_dir / case.name.replace(" ", "-")
    case_dir.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    stage = Stage(room=room, bitrate=DEFAULT_BITRATE * case.senders)  # until a Coalesce run reached one
    print(
        f"# {case.name}: the floor (the glass sampler on the senders' screen) ...",
        file=sys.stderr,
        flush=True,
    )
    try:
        floor: dict[str, Any] | None = await measure_floor(
            case, xserver, dataclasses.replace(settings, log_dir=case_dir)
        )
    except BenchmarkError as exc:
        print(f"#   the floor failed: {exc}", file=sys.stderr, flush=True)
        floor = None
    for index in range(settings.runs):
        order = run_order(index, settings.sides)
        results: dict[str, Any] = {}
        for side in order:
            print(f"# {case.name}: run {index + 1}/{settings.runs}, {side} ...", file=sys.stderr, flush=True)
            log_dir = case_dir / f"run-{index + 1}-{side}"
            log_dir.mkdir(parents=True, exist_ok=True)
            result = await _measure(
                side, case, xserver, pattern, dataclasses.replace(settings, log_dir=log_dir), stage
            )
            if side == OURS and result.get("ok") and result["bitrate_mbps"] > 0:
                stage.bitrate = int(result["bitrate_mbps"] * 1e6)
            results[side] = result
        runs.append({"order": order, "results": results})
    sides = {side: summarize_runs([r["results"][side] for r in runs]) for side in settings.sides}
    return {
        **dataclasses.asdict(case),
        "name": case.name,
        "sides": sides,
        "ratios": {
            rival: summary_ratios(sides[OURS], summary)
            for rival, summary in sides.items()
            if rival != OURS and OURS in sides
        },
        "floor": floor,
        "runs": runs,
    }


async def run_matrix(cases: Sequence[Case], settings: Settings) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    by_size = itertools.groupby(
        sorted(cases, key=lambda c: (c.width, c.height, c.content)), lambda c: (c.width, c.height)
    )
    for (width, height), size_cases in by_size:
        xserver = await start_xvfb(width, height, settings.log_dir / f"xvfb-{width}x{height}.log")
        room: XServer | None = None
        try:
            room = await start_xvfb(width, height, settings.log_dir / f"xvfb-room-{width}x{height}.log")
            for content, content_cases in itertools.groupby(size_cases, lambda c: c.content):
                pattern = await start_pattern(content, settings.pattern_fps, xserver, settings.log_dir)
                try:
                    for case in content_cases:
                        results.append(await run_case(case, xserver, pattern, settings, room))
                finally:
                    await pattern.aclose()
        finally:
            if room is not None:
                await room.aclose()
            await xserver.aclose()
    order = {case: index for index, case in enumerate(cases)}
    results.sort(key=lambda r: order[Case(r["width"], r["height"], r["content"], r["codec"], r["senders"])])
    return results


# -- the report ----------------------------------------------------------------------------------------


def _sysctl(name: str) -> int | None:
    try:
        return int(Path("/proc/sys", *name.split(".")).read_text())
    except (OSError, ValueError):
        return None


def _soname(library: str) -> str:
    """The installed shared library's file name ("libx264.so.164": its ABI is x264's build number)."""
    found = sorted(Path("/lib/x86_64-linux-gnu").glob(f"{library}.so.*")) + sorted(
        Path("/usr/lib").glob(f"{library}.so.*")
    )
    return found[0].name if found else ""


def machine(load: validity.MachineLoad | None = None) -> dict[str, Any]:
    """What a reader needs to judge the figures: the CPU, its load, the kernel's buffers, every version."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = math.nan
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024**2
                break

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return ""

    return {
        "cpu": cpu,
        "cpus": os.cpu_count() or 0,
        "memory_gib": round(memory, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiortc": version("aiortc"),
        "av": version("av"),
        "av_ffmpeg": str(getattr(av, "ffmpeg_version_info", "")),
        "ffmpeg": ffmpeg_version() if shutil.which("ffmpeg") else "",
        "x264": _soname("libx264"),
        "qt": version("PySide6") or version("PySide6-Essentials"),
        "rmem_max": _sysctl("net.core.rmem_max"),
        "busy_before": None if load is None else load.busy,
        "steal_before": None if load is None else load.steal,
        "loadavg_before": None if load is None else load.loadavg,
    }


def _clean(value: Any) -> Any:
    """NaN and infinities become None and tuples lists, recursively, so the JSON is standard (and is what
    parsing it back gives)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


# -- command line --------------------------------------------------------------------------------------


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) % 2 or int(height) % 2:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT with even numbers, got {text!r}")
    return int(width), int(height)


def _list(kind: Callable[[str], Any], choices: Sequence[str] | None = None) -> Any:
    def parse(text: str) -> list[Any]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if choices is not None and (bad := [i for i in items if i not in choices]):
            raise argparse.ArgumentTypeError(f"{', '.join(bad)} not among {', '.join(choices)}")
        return [kind(i) for i in items]

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Glass-to-glass latency, fps, CPU and first frame of Coalesce, beside its rivals.",
    )
    parser.add_argument("--sizes", type=_list(_size), help="e.g. 1280x720,1920x1080,3840x2160")
    parser.add_argument("--content", type=_list(str, ("static", "motion")), help="static,motion")
    parser.add_argument("--codecs", type=_list(str, ("h264", "vp8")), help="h264,vp8")
    parser.add_argument("--senders", type=_list(int), help="e.g. 1,4")
    parser.add_argument("--seconds", type=float, default=None, help="measurement window per run (default 30)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds after the first frame (default 2)"
    )
    parser.add_argument("--fps", type=float, default=60.0, help="capture frame rate (default 60)")
    parser.add_argument(
        "--pattern-fps",
        type=float,
        help="frame rate of the screen content (default 0.95 x --fps, see README)",
    )
    parser.add_argument("--json", type=Path, help="write the report there")
    parser.add_argument("--quick", action="store_true", help="one tiny, short case (for the test suite)")
    parser.add_argument(
        "--sides",
        type=_list(str, tuple(SIDES)),
        help=f"the sides to run, Coalesce first (default {','.join(SIDES)})",
    )
    parser.add_argument("--no-baseline", action="store_true", help="Coalesce alone (no rival)")
    parser.add_argument("--profile", type=Path, help="py-spy each sender and receiver into this folder")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs (printed path)")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per case, rotating who goes first (default 5)"
    )
    parser.add_argument(
        "--max-load",
        type=float,
        default=validity.MAX_BUSY_FRACTION,
        help="refuse a run when other programs keep more than this share of the CPUs busy (default 0.25)",
    )
    parser.add_argument(
        "--max-steal",
        type=float,
        default=validity.MAX_STEAL_FRACTION,
        help="refuse a run when the hypervisor steals more than this share of CPU time (default 0.05)",
    )
    return parser


def cases_from(args: argparse.Namespace) -> list[Case]:
    if args.quick and not any((args.sizes, args.content, args.codecs, args.senders)):
        return list(QUICK_CASES)
    if not any((args.sizes, args.content, args.codecs, args.senders)):
        return list(STANDARD_CASES)
    return [
        Case(w, h, content, codec, senders)
        for (w, h) in args.sizes or [(1920, 1080)]
        for content in args.content or ["motion"]
        for codec in args.codecs or ["h264"]
        for senders in args.senders or [1]
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cases = cases_from(args)
    seconds = args.seconds if args.seconds is not None else 2.0 if args.quick else DEFAULT_SECONDS
    warmup = args.warmup if args.warmup is not None else 1.0 if args.quick else 2.0
    sides = (OURS,) if args.no_baseline else tuple(dict.fromkeys([OURS, *(args.sides or SIDES)]))
    if "ffmpeg" in sides:
        ffmpeg_path()  # fail early, with the install hint
    log_dir = Path(tempfile.mkdtemp(prefix="coalesce-bench-"))
    pattern_fps = args.pattern_fps or PATTERN_RATE * args.fps
    runs = args.runs if args.runs is not None else 1 if args.quick else 5
    if runs < 1:
        raise BenchmarkError(f"--runs must be at least 1, got {runs}")
    settings = Settings(
        seconds=seconds,
        warmup=warmup,
        fps=args.fps,
        pattern_fps=pattern_fps,
        sides=sides,
        log_dir=log_dir,
        profile_dir=args.profile,
        runs=runs,
        max_load=args.max_load,
        max_steal=args.max_steal,
    )
    load = await validity.sample_load()
    started = datetime.datetime.now(datetime.UTC)
    clock = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        results = await run_matrix(cases, settings)
    finally:
        failed = not results or any(not summary["ok"] for c in results for summary in c["sides"].values())
        if args.keep_logs or failed:
            print(f"# logs kept in {log_dir}" + (" (a run failed)" if failed else ""), file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    for result in results:
        for run_ in result["runs"]:
            for side_result in run_["results"].values():
                for key in ("latencies_ms", "decoder_latencies_ms"):
                    if side_result.get("ok"):
                        side_result[key] = [round(x, 1) for x in side_result[key]]
    report: dict[str, Any] = _clean(
        {
            "schema": report_module.SCHEMA,
            "started": started.isoformat(timespec="seconds"),
            "wall_seconds": time.monotonic() - clock,
            "machine": machine(load),
            "settings": dataclasses.asdict(settings.recorded()),
            "cases": results,
        }
    )
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = asyncio.run(run(args))
    except BenchmarkError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        return 2
    print(report_module.format_tables(report_module.Report.parse(report)))
    print(f"{report['wall_seconds']:.0f} s in all")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    failed = [c["name"] for c in report["cases"] if not all(s["ok"] for s in c["sides"].values())]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
