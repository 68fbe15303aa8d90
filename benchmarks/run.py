"""Glass-to-glass benchmark of Coalesce against an ffmpeg baseline on the same machine and screen.

``python -m benchmarks`` runs the standard matrix; ``--sizes``, ``--content``, ``--codecs`` and
``--senders`` (comma-separated) run their product instead. For every size it starts an Xvfb, for every
content a pattern window (:mod:`benchmarks.pattern`) that paints a timestamp strip every frame; for
every case a Coalesce receiver and N senders (each its own process, so CPU time is per process), then the
ffmpeg baseline (:mod:`benchmarks.baseline`) on the same screen at the bitrate Coalesce reached. Both
ends read the strip of each decoded frame; latency is the reader's clock minus the painted time.

Each run measures a window of ``--seconds`` after the first frame has arrived and ``--warmup`` more
seconds have passed (bitrate and encoder settle). The table goes to stdout, the report to ``--json``.

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
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import av

from benchmarks import report as report_module
from benchmarks import validity
from benchmarks.baseline import BaselineStream, ffmpeg_path, ffmpeg_version
from benchmarks.procs import (
    BenchmarkError,
    Child,
    XServer,
    child_env,
    cpu_seconds,
    start_pattern,
    start_xvfb,
)
from benchmarks.samples import latency_summary, summarize_stream

PIN = "4821"
START_TIMEOUT = 30.0
DEFAULT_BITRATE = 4_000_000
MIN_BASELINE_BITRATE = 500_000
PATTERN_RATE = 0.95
"""The content changes a little slower than capture runs, so the phase between the two sweeps round a few
times a second: latency then averages over every phase, as it would for an event at a random moment. At
the same rate, the phase would stay where the processes happened to start, worth up to a frame interval
of difference from one run to the next."""
RATIO_FIGURES = (
    "latency_median_ms",
    "latency_p95_ms",
    "latency_max_ms",
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
    baseline: bool
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
            baseline=self.baseline,
            runs=self.runs,
            max_load=self.max_load,
            max_steal=self.max_steal,
        )


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


# -- one run of Coalesce -------------------------------------------------------------------------------


def _failed(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


def _screen_cpu(xserver: XServer, pattern: Child) -> tuple[float, float, float]:
    """CPU seconds so far of the X server and the pattern, and of the whole machine."""
    return cpu_seconds(xserver.pid), pattern.cpu_seconds(), validity.CpuTimes.read().busy_seconds


def _delta(
    after: tuple[float, float, float], before: tuple[float, float, float]
) -> tuple[float, float, float]:
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def _combine(
    windows: list[dict[str, Any]],
    *,
    codec: str,
    elapsed: float,
    sender_cpu: float,
    receiver_cpu: float,
    screen_cpu: tuple[float, float, float],
    bytes_sent: int,
    first_frame: list[float],
    first_frame_from_launch: list[float],
    capture_drops: int | None,
) -> dict[str, Any]:
    streams = [summarize_stream(w) for w in windows]
    latencies = [x for s in streams for x in s["latencies_ms"]]
    shown = sum(s["shown_frames"] for s in streams)
    dropped = sum(s["dropped_frames"] for s in streams)

    def mean(key: str) -> float:
        values = [s[key] for s in streams if not math.isnan(s[key])]
        return statistics.fmean(values) if values else math.nan

    return {
        "ok": bool(streams) and bool(latencies),
        "error": None if latencies else "no frame with a legible timestamp strip arrived in the window",
        "codec": codec,
        "streams": len(streams),
        "frames": sum(s["frames"] for s in streams),
        "latency_ms": latency_summary(latencies),
        "fps": mean("fps"),
        "unique_fps": mean("unique_fps"),
        "source_fps": mean("source_fps"),
        "dropped_frames": dropped,
        "dropped_ratio": dropped / shown if shown else math.nan,
        "capture_drops": capture_drops,
        "unreadable_frames": sum(s["unreadable_frames"] for s in streams),
        "sender_cpu": sender_cpu / elapsed,
        "receiver_cpu": receiver_cpu / elapsed,
        "x_server_cpu": screen_cpu[0] / elapsed,
        "pattern_cpu": screen_cpu[1] / elapsed,
        "other_cpu": max(0.0, screen_cpu[2] - sender_cpu - receiver_cpu - screen_cpu[0] - screen_cpu[1])
        / elapsed,
        "bitrate_mbps": bytes_sent * 8 / elapsed / 1e6,
        "first_frame_s": statistics.fmean(first_frame) if first_frame else math.nan,
        "first_frame_from_launch_s": statistics.fmean(first_frame_from_launch)
        if first_frame_from_launch
        else math.nan,
        "window_s": elapsed,
        "latencies_ms": latencies,
    }


async def run_coalesce(case: Case, xserver: XServer, pattern: Child, settings: Settings) -> dict[str, Any]:
    data_dir = settings.log_dir / "receiver-data"
    receiver = await Child.spawn(
        "receiver",
        "benchmarks.receiver_proc",
        ["--pin", PIN, "--data-dir", str(data_dir)],
        child_env(),
        settings.log_dir,
    )
    senders: list[Child] = []
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

        await asyncio.sleep(settings.warmup)
        stats_before = await asyncio.gather(*(s.request("stats") for s in senders))
        cpu_before = [s.cpu_seconds() for s in senders], receiver.cpu_seconds(), _screen_cpu(xserver, pattern)
        await receiver.request("begin")
        began = time.monotonic()
        profilers = await _start_profilers(case, [receiver, *senders], settings)
        await asyncio.sleep(settings.seconds)
        window = await receiver.request("end")
        elapsed = time.monotonic() - began
        cpu_after = [s.cpu_seconds() for s in senders], receiver.cpu_seconds(), _screen_cpu(xserver, pattern)
        stats_after = await asyncio.gather(*(s.request("stats") for s in senders))
    finally:
        await asyncio.gather(*(s.aclose() for s in senders), receiver.aclose())
    for profiler in profilers:
        await profiler.wait()
    return _combine(
        [s for s in window["streams"] if s["frames"]],
        codec=started[0]["codec"] if started else "",
        elapsed=elapsed,
        sender_cpu=sum(cpu_after[0]) - sum(cpu_before[0]),
        receiver_cpu=cpu_after[1] - cpu_before[1],
        screen_cpu=_delta(cpu_after[2], cpu_before[2]),
        bytes_sent=sum(
            a["bytes_sent"] - b["bytes_sent"] for a, b in zip(stats_after, stats_before, strict=True)
        ),
        first_frame=first_frame,
        first_frame_from_launch=from_launch,
        capture_drops=sum(
            a["capture_drops"] - b["capture_drops"] for a, b in zip(stats_after, stats_before, strict=True)
        ),
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


async def run_baseline(
    case: Case, xserver: XServer, pattern: Child, settings: Settings, bitrate: int
) -> dict[str, Any]:
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
    )


# -- the matrix ----------------------------------------------------------------------------------------


def _figures(result: dict[str, Any] | None) -> dict[str, float]:
    """The figures of one passed run that :data:`SUMMARY_FIGURES` names (NaN where unmeasured)."""
    if not result or not result.get("ok"):
        return {}
    latency = result["latency_ms"]
    dropped = result.get("dropped_ratio")
    return {
        "latency_median_ms": latency["median"],
        "latency_p95_ms": latency["p95"],
        "latency_max_ms": latency["max"],
        "fps": result["fps"],
        "sender_cpu": result["sender_cpu"],
        "receiver_cpu": result["receiver_cpu"],
        "bitrate_mbps": result["bitrate_mbps"],
        "first_frame_s": result["first_frame_s"],
        "unique_fps": result["unique_fps"],
        "dropped_pct": math.nan if dropped is None else 100 * dropped,
        "unreadable_frames": float(result["unreadable_frames"]),
        "other_cpu": result["other_cpu"],
    }


SUMMARY_FIGURES = (
    *RATIO_FIGURES,
    "unique_fps",
    "dropped_pct",
    "unreadable_frames",
    "other_cpu",
)
"""Figures summarized over a case's runs (median, min and max of the runs that passed the checks)."""


async def _measure(
    side: str, case: Case, xserver: XServer, pattern: Child, settings: Settings, bitrate: int
) -> dict[str, Any]:
    """One side's run, refused on a busy machine and failed when :mod:`benchmarks.validity` says so."""
    load = await validity.sample_load(own=lambda: sum(_screen_cpu(xserver, pattern)[:2]))
    problem = validity.load_problem(load, max_busy=settings.max_load, max_steal=settings.max_steal)
    if problem is not None:
        result = _failed(problem)
    else:
        try:
            if side == "coalesce":
                result = await run_coalesce(case, xserver, pattern, settings)
            else:
                per_stream = max(MIN_BASELINE_BITRATE, bitrate // case.senders)
                print(f"#   ffmpeg at {per_stream / 1e6:.1f} Mbps per stream", file=sys.stderr, flush=True)
                result = await run_baseline(case, xserver, pattern, settings, per_stream)
        except BenchmarkError as exc:
            result = _failed(str(exc))
        if result.get("ok"):
            problems = validity.result_problems(
                result, streams=case.senders, pattern_exit=pattern.process.returncode
            )
            if problems:
                result = {**result, "ok": False, "error": "; ".join(problems)}
    result["load_before"] = dataclasses.asdict(load)
    if not result["ok"]:
        print(f"#   {side} failed: {result['error']}", file=sys.stderr, flush=True)
    return result


def run_order(index: int, baseline: bool) -> list[str]:
    """Which side runs first in run ``index``: they alternate, so neither always has the fresher machine."""
    if not baseline:
        return ["coalesce"]
    return ["coalesce", "baseline"] if index % 2 == 0 else ["baseline", "coalesce"]


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
        "samples": sum(r["latency_ms"]["samples"] for r in passed),
        "figures": figures,
    }


def summary_ratios(ours: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, float | None]:
    """Coalesce's median over the baseline's, per figure in :data:`RATIO_FIGURES`."""
    result: dict[str, float | None] = {}
    for key in RATIO_FIGURES:
        a = (ours["figures"].get(key) or {}).get("median")
        b = ((baseline or {}).get("figures", {}).get(key) or {}).get("median")
        result[key] = a / b if a is not None and b else None
    return result


async def run_case(case: Case, xserver: XServer, pattern: Child, settings: Settings) -> dict[str, Any]:
    case_dir = settings.log_dir / case.name.replace(" ", "-")
    runs: list[dict[str, Any]] = []
    bitrate = DEFAULT_BITRATE * case.senders  # the baseline's until a Coalesce run has reached one
    for index in range(settings.runs):
        order = run_order(index, settings.baseline)
        run: dict[str, Any] = {"order": order, "coalesce": None, "baseline": None}
        for side in order:
            print(f"# {case.name}: run {index + 1}/{settings.runs}, {side} ...", file=sys.stderr, flush=True)
            log_dir = case_dir / f"run-{index + 1}-{side}"
            log_dir.mkdir(parents=True, exist_ok=True)
            result = await _measure(
                side, case, xserver, pattern, dataclasses.replace(settings, log_dir=log_dir), bitrate
            )
            if side == "coalesce" and result.get("ok") and result["bitrate_mbps"] > 0:
                bitrate = int(result["bitrate_mbps"] * 1e6)
            run[side] = result
        runs.append(run)
    ours = summarize_runs([r["coalesce"] for r in runs])
    baseline = summarize_runs([r["baseline"] for r in runs]) if settings.baseline else None
    return {
        **dataclasses.asdict(case),
        "name": case.name,
        "coalesce": ours,
        "baseline": baseline,
        "ratios": summary_ratios(ours, baseline),
        "runs": runs,
    }


async def run_matrix(cases: Sequence[Case], settings: Settings) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    by_size = itertools.groupby(
        sorted(cases, key=lambda c: (c.width, c.height, c.content)), lambda c: (c.width, c.height)
    )
    for (width, height), size_cases in by_size:
        xserver = await start_xvfb(width, height, settings.log_dir / f"xvfb-{width}x{height}.log")
        try:
            for content, content_cases in itertools.groupby(size_cases, lambda c: c.content):
                pattern = await start_pattern(content, settings.pattern_fps, xserver, settings.log_dir)
                try:
                    for case in content_cases:
                        results.append(await run_case(case, xserver, pattern, settings))
                finally:
                    await pattern.aclose()
        finally:
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
    """NaN and infinities become None, recursively, so the JSON is standard."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
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
        description="Glass-to-glass latency, fps, CPU and time to first frame of Coalesce, beside ffmpeg.",
    )
    parser.add_argument("--sizes", type=_list(_size), help="e.g. 1280x720,1920x1080,3840x2160")
    parser.add_argument("--content", type=_list(str, ("static", "motion")), help="static,motion")
    parser.add_argument("--codecs", type=_list(str, ("h264", "vp8")), help="h264,vp8")
    parser.add_argument("--senders", type=_list(int), help="e.g. 1,4")
    parser.add_argument("--seconds", type=float, default=None, help="measurement window per run (default 8)")
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
    parser.add_argument("--no-baseline", action="store_true", help="skip the ffmpeg baseline")
    parser.add_argument("--profile", type=Path, help="py-spy each sender and receiver into this folder")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs (printed path)")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per case, alternating who goes first (default 5)"
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
    seconds = args.seconds if args.seconds is not None else 2.0 if args.quick else 8.0
    warmup = args.warmup if args.warmup is not None else 1.0 if args.quick else 2.0
    baseline = not args.no_baseline
    if baseline:
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
        baseline=baseline,
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
        failed = not results or any(
            not c[side]["ok"] for c in results for side in ("coalesce", "baseline") if c[side]
        )
        if args.keep_logs or failed:
            print(f"# logs kept in {log_dir}" + (" (a run failed)" if failed else ""), file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    for result in results:
        for run_ in result["runs"]:
            for side in ("coalesce", "baseline"):
                if run_[side] and run_[side].get("ok"):
                    run_[side]["latencies_ms"] = [round(x, 1) for x in run_[side]["latencies_ms"]]
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
    failed = [
        c["name"]
        for c in report["cases"]
        if not c["coalesce"]["ok"] or not (c["baseline"] or {"ok": True})["ok"]
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
