"""Glass-to-glass benchmark of Coalesce against its rivals (sides) on the same machine and screen.

``python -m benchmarks`` runs the standard matrix; ``--sizes``, ``--content``, ``--codecs`` and
``--senders`` (comma-separated) run their product instead. For every size it starts two Xvfb screens of
that size, the senders' and the room's; for every content a pattern window (:mod:`benchmarks.pattern`) on
the senders' screen that paints a timestamp strip every frame. For every case it runs each side of
:data:`SIDES` (``--sides``) in turn, the order rotating over the runs (:func:`run_order`). A side is a
function ``(case, xserver, pattern, settings, stage) -> result dict`` (:data:`SideRun`); its result has
the shape :func:`combine` builds.

Coalesce's side is a receiver process with its real room window full screen on the room's screen and N
sender processes. Its headline latency is read at the room's glass: a :mod:`benchmarks.glass` sampler grabs
the strip where the window draws each share, 60 times a second on a fixed schedule, so a frozen picture
counts as it ages. The latency at the decoder (the strip of every decoded frame, read in the receiver) is
a second, labelled figure. Once per case the same sampler reads the senders' screen itself: the "floor",
what the sampling alone costs. The rivals run on the same screen at the bitrate Coalesce reached: ffmpeg
over RTP (:mod:`benchmarks.baseline`) and Chromium over WebRTC (:mod:`benchmarks.browser`, read at the
glass of the room's screen, where a second Chromium shows the video full screen).

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
import dataclasses
import datetime
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import links, quality, validity
from benchmarks import report as report_module
from benchmarks.baseline import ffmpeg_path, run_ffmpeg
from benchmarks.browser import run_chromium
from benchmarks.cases import (
    DEFAULT_BITRATE,
    DEFAULT_SECONDS,
    PATTERN_RATE,
    QUICK_CASES,
    STANDARD_CASES,
    Case,
    Settings,
    SideRun,
    Stage,
)
from benchmarks.coalesce_side import run_coalesce
from benchmarks.glass import measure_floor
from benchmarks.machine import machine
from benchmarks.outcome import (
    clean,
    failed,
    screen_cpu,
    summarize_runs,
    summary_ratios,
)
from benchmarks.procs import (
    BenchmarkError,
    PatternChild,
    XServer,
    start_pattern,
    start_xvfb,
)
from benchmarks.web_side import run_web

# -- what one run yields -------------------------------------------------------------------------------


# -- the glass -----------------------------------------------------------------------------------------


# -- one run of Coalesce -------------------------------------------------------------------------------


# -- one run of the baseline ---------------------------------------------------------------------------


# -- the matrix ----------------------------------------------------------------------------------------

LOAD_SAMPLES = 60
"""Seconds of load sampled, one at a time, before a run is refused: a minute of steal or of someone else's
work must not cost a run (on 2026-12-01 the host's steal stayed above 5 % for half a minute at a time and
5 s of patience refused 6 runs of a case), a busy machine still does (a run that was let start is never
retried)."""

SIDES: dict[str, SideRun] = {
    "coalesce": run_coalesce,
    "ffmpeg": run_ffmpeg,
    "chromium": run_chromium,
    "web": run_web,
}
"""Every side by name; Coalesce is the one the others are compared with. ``web`` (the browser sharing page
into Coalesce's room, :mod:`benchmarks.web_side`) is not a rival but our own second sender: only run when
``--sides`` names it."""
DEFAULT_SIDES = ("coalesce", "ffmpeg", "chromium")
OURS = "coalesce"


async def _measure(
    side: str, case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    """One side's run, refused on a busy machine and failed when :mod:`benchmarks.validity` says so."""
    for _ in range(LOAD_SAMPLES):  # a busy second before the run: look again before refusing it
        load = await validity.sample_load(own=lambda: sum(screen_cpu(xserver, pattern)[:2]))
        problem = validity.load_problem(load, max_busy=settings.max_load, max_steal=settings.max_steal)
        if problem is None:
            break
    if problem is not None:
        result = failed(problem)
    else:
        try:
            result = await SIDES[side](case, xserver, pattern, settings, stage)
        except BenchmarkError as exc:
            result = failed(str(exc))
        if result.get("ok"):
            problems = validity.result_problems(
                result,
                streams=case.senders,
                pattern_exit=pattern.process.returncode,
                lossy=stage.network.name != "loopback",
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


async def run_case(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, room: XServer
) -> dict[str, Any]:
    with links.network(case.link) as network:
        if network.name != "loopback":
            print(f"# {case.name}: senders behind {network.description}", file=sys.stderr, flush=True)
        stage = Stage(room=room, bitrate=(case.bitrate or DEFAULT_BITRATE) * case.senders, network=network)
        return await _run_case(case, xserver, pattern, settings, stage)


async def _run_case(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    """``stage.bitrate`` is the rivals' until a Coalesce run has reached one."""
    case_dir = settings.log_dir / case.name.replace(" ", "-")
    case_dir.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
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
    case_sides = [side for side in settings.sides if side != "chromium" or case.senders == 1]
    for index in range(settings.runs):
        order = run_order(index, case_sides)
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
    sides = {side: summarize_runs([r["results"][side] for r in runs]) for side in case_sides}
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
    fields = [field.name for field in dataclasses.fields(Case)]
    results.sort(key=lambda r: order[Case(**{name: r[name] for name in fields})])
    return results


# -- the report ----------------------------------------------------------------------------------------


# -- command line --------------------------------------------------------------------------------------


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) % 2 or int(height) % 2:
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT with even numbers, got {text!r}")
    return int(width), int(height)


def _mbps(text: str) -> float:
    try:
        mbps = float(text)
    except ValueError:
        mbps = 0.0
    if not 0.1 <= mbps <= 50:
        raise argparse.ArgumentTypeError(f"a bitrate is Mbit/s between 0.1 and 50, got {text!r}")
    return mbps


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
    parser.add_argument(
        "--links",
        type=_list(str, tuple(links.LINKS)),
        help=f"the network between senders and receivers: {','.join(links.LINKS)} (default loopback)",
    )
    parser.add_argument(
        "--bitrates",
        type=_list(_mbps),
        help="Mbit/s each sender is held at, e.g. 2,4,8, for quality per bitrate (default: Coalesce adapts)",
    )
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
    parser.add_argument(
        "--pin",
        action="store_true",
        help="receiving side on CPU 0, sending side on the other CPUs (for multi-share sweeps)",
    )
    parser.add_argument("--quick", action="store_true", help="one tiny, short case (for the test suite)")
    parser.add_argument(
        "--sides",
        type=_list(str, tuple(SIDES)),
        help=f"the sides to run, Coalesce first (default {','.join(DEFAULT_SIDES)}; also: web)",
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
    chosen = (args.sizes, args.content, args.codecs, args.senders, args.links, args.bitrates)
    if args.quick and not any(chosen):
        return list(QUICK_CASES)
    if not any(chosen):
        return list(STANDARD_CASES)
    return [
        Case(w, h, content, codec, senders, link, None if mbps is None else round(mbps * 1e6))
        for (w, h) in args.sizes or [(1920, 1080)]
        for content in args.content or ["motion"]
        for codec in args.codecs or ["h264"]
        for senders in args.senders or [1]
        for link in args.links or ["loopback"]
        for mbps in args.bitrates or [None]
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cases = cases_from(args)
    seconds = args.seconds if args.seconds is not None else 2.0 if args.quick else DEFAULT_SECONDS
    warmup = args.warmup if args.warmup is not None else 1.0 if args.quick else 2.0
    sides = (OURS,) if args.no_baseline else tuple(dict.fromkeys([OURS, *(args.sides or DEFAULT_SIDES)]))
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
        pin=args.pin,
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
    report: dict[str, Any] = clean(
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
