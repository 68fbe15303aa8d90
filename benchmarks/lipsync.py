"""Lip sync at the room: how far apart a share's sound and picture reach the room, against two rivals.

``python -m benchmarks lipsync [--sides coalesce,ffmpeg,chromium] [--runs 5] [--seconds 20]`` (see
``--help``). Each side carries the same laptop's screen and sound to the room's screen and output:

- the senders' Xvfb shows :mod:`benchmarks.flash`, a black screen that flashes a white square and plays a
  click into the senders' PulseAudio server at the same moment, every 1.0-1.6 s;
- **coalesce**: ``sender_proc --audio`` shares that screen and what that server plays to
  ``receiver_proc --window``, the real room window on the room's Xvfb, whose speaker plays on the room's
  PulseAudio server;
- **ffmpeg**: one ffmpeg grabs the screen (x11grab) and the sink's monitor (pulse), sends H.264 and Opus
  as two RTP streams (with RTCP sender reports), and ffplay plays both full screen, keeping the picture on
  the sound's clock (``-sync audio``, its default and its answer to lip sync);
- **chromium**: Debian's Chromium sends its screen (``getDisplayMedia``) and the monitor (remapped as its
  default microphone, processing off) in one ``MediaStream`` to a second Chromium, which plays the two in one
  ``<video>``, in sync as WebRTC keeps a stream's tracks.

Two probes (:mod:`benchmarks.avprobe`) time each flash and each click: one at the source (the senders'
screen and the monitor of their sink), one at the room (the middle of the picture on the room's screen,
and the monitor of the room's sink). A flash at the room is matched to the one at the source
whose latency is nearest the run's typical one (:func:`typical_latency`), a click likewise, and per
flash the **offset** is how much later than its picture the sound reached the room, less how much later
it left the laptop (so the pattern's own offset, a few ms, is not counted). Positive: the sound is late.
The Open Screen Protocol's bound is ±45 ms.

Also per side: the picture's and the sound's latency (source to room) and, for Coalesce, the CPU of the
sender and the receiver over the window, to set beside the same share without sound (``coalesce-silent``,
which has no offset).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from benchmarks.baseline import (
    DECODER_INPUT,
    RTP_PACKET_SIZE,
    RTP_PAYLOAD_TYPE,
    VIEWER_ENV,
    encoder_args,
    ffmpeg_path,
    ffplay_path,
    free_rtp_port,
    port_bound,
)
from benchmarks.browser import Browser, clear_screen, fill_screen, tree_cpu_seconds
from benchmarks.cases import DEFAULT_BITRATE, PIN, START_TIMEOUT
from benchmarks.procs import BenchmarkError, Child, XServer, child_env, start_xvfb, stop_process
from benchmarks.run import run_order
from coalesce_testing.pulse import PulseError, PulseServer, start_pulse

MAX_LATENCY = 3.0
"""Longest a flash or click may take from the source to the room and still be matched."""
MATCH_WINDOW = 0.4
"""How far from the run's typical latency a flash's or a click's own may be (flashes are at least 1 s
apart, so no other is as near)."""
HISTOGRAM_BIN = 0.02
SOURCE_PAIRING = 0.1
"""A flash and a click at the source belong together when this close (they are a few ms apart)."""
LIP_SYNC_BOUND = 0.045
AUDIO_PAYLOAD_TYPE = 97
SIDES = ("coalesce", "ffmpeg", "chromium")
EXTRA_SIDES = ("coalesce-silent",)


@dataclasses.dataclass(frozen=True)
class Bench:
    """What every side shares: the two screens, the two sound servers, the logs."""

    senders: XServer
    room: XServer
    sender_pulse: PulseServer
    room_pulse: PulseServer
    log_dir: Path
    fps: float


@dataclasses.dataclass
class Shown:
    """A side that shows the picture at the room: where (``rect`` on the room's screen) and, when it can
    tell, the CPU seconds so far of its sending and its receiving processes."""

    rect: list[int]
    cpu: Callable[[], tuple[float, float]] | None = None


Side = Callable[[Bench], AbstractAsyncContextManager[Shown]]


# -- the sides ---------------------------------------------------------------------------------------


def _coalesce(sound: bool) -> Side:
    @asynccontextmanager
    async def side(bench: Bench) -> AsyncIterator[Shown]:
        screen = f"{bench.senders.width}x{bench.senders.height}"
        receiver = await Child.spawn(
            "receiver",
            "benchmarks.receiver_proc",
            [
                "--pin",
                PIN,
                "--data-dir",
                str(bench.log_dir / "receiver-data"),
                "--window",
                "--source",
                screen,
            ],
            child_env(bench.room.display, **bench.room_pulse.client_env()),
            bench.log_dir,
        )
        sender: Child | None = None
        try:
            port = (await receiver.read(START_TIMEOUT))["port"]
            args = [
                "--host", "127.0.0.1", "--port", str(port), "--pin", PIN, "--display", bench.senders.display,
                "--fps", f"{bench.fps:g}", "--name", "bench-0", *(["--audio"] if sound else []),
            ]  # fmt: skip
            sender = await Child.spawn(
                "sender",
                "benchmarks.sender_proc",
                args,
                child_env(bench.senders.display, **bench.sender_pulse.client_env()),
                bench.log_dir,
            )
            await sender.read(START_TIMEOUT)
            await receiver.request("wait", START_TIMEOUT + 5, count=1, timeout=START_TIMEOUT)
            deadline = time.monotonic() + START_TIMEOUT
            while not (placements := (await receiver.request("placements"))["placements"]):
                if time.monotonic() > deadline:
                    raise BenchmarkError("the room window shows no picture")
                await asyncio.sleep(0.1)  # the window places a tile on its next frame timer
            sending = sender
            yield Shown(placements[0]["rect"], lambda: (sending.cpu_seconds(), receiver.cpu_seconds()))
        finally:
            if sender is not None:
                await sender.aclose()
            await receiver.aclose()

    return side


def av_sdp(video_port: int, audio_port: int) -> str:
    """ffplay's session: H.264 on ``video_port`` and stereo Opus on ``audio_port`` of 127.0.0.1."""
    return "\r\n".join(
        [
            "v=0",
            "o=- 0 0 IN IP4 127.0.0.1",
            "s=coalesce-benchmark-lipsync",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            f"m=video {video_port} RTP/AVP {RTP_PAYLOAD_TYPE}",
            f"a=rtpmap:{RTP_PAYLOAD_TYPE} H264/90000",
            f"a=fmtp:{RTP_PAYLOAD_TYPE} packetization-mode=1",
            f"m=audio {audio_port} RTP/AVP {AUDIO_PAYLOAD_TYPE}",
            f"a=rtpmap:{AUDIO_PAYLOAD_TYPE} opus/48000/2",
            "",
        ]
    )


@asynccontextmanager
async def _ffmpeg(bench: Bench) -> AsyncIterator[Shown]:
    """ffmpeg sends the screen and the sound as two RTP streams; ffplay plays both on the room's side.

    The encoder is the glass benchmark's (:func:`benchmarks.baseline.encoder_args`, 4 Mbit/s); Opus is
    set for low delay (``-application lowdelay -frame_duration 10``); the pulse input reads 10 ms
    fragments. ffplay takes the decoder's low-delay input options and drops late frames; its picture
    follows the sound's clock."""
    x = bench.senders
    video_port = free_rtp_port()
    audio_port = free_rtp_port()
    while audio_port in (video_port, video_port + 1):
        audio_port = free_rtp_port()
    sdp_path = bench.log_dir / "lipsync.sdp"
    sdp_path.write_text(av_sdp(video_port, audio_port))
    common = ["-hide_banner", "-loglevel", "warning", "-nostats"]
    with (bench.log_dir / "ffplay.log").open("wb") as log:
        player = await asyncio.create_subprocess_exec(
            ffplay_path(), *common, *DECODER_INPUT, "-framedrop", "-sync", "audio",
            "-noborder", "-left", "0", "-top", "0", "-x", str(bench.room.width), "-y", str(bench.room.height),
            "-window_title", "coalesce-lipsync", "-f", "sdp", "-i", str(sdp_path),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            env=child_env(
                bench.room.display, SDL_AUDIODRIVER="pulseaudio", **VIEWER_ENV,
                **bench.room_pulse.client_env(),
            ),
        )  # fmt: skip
    encoder: asyncio.subprocess.Process | None = None
    try:
        for port in (video_port, audio_port):
            if not await port_bound(port, player):
                raise BenchmarkError("ffplay did not open its RTP ports; see ffplay.log")
        with (bench.log_dir / "ffmpeg.log").open("wb") as log:
            encoder = await asyncio.create_subprocess_exec(
                ffmpeg_path(), *common, "-nostdin",
                "-probesize", "32", "-analyzeduration", "1",
                "-f", "x11grab", "-draw_mouse", "0", "-framerate", f"{bench.fps:g}",
                "-video_size", f"{x.width}x{x.height}", "-i", f"{x.display}+0,0",
                "-thread_queue_size", "64",
                "-f", "pulse", "-fragment_size", "1920", "-i", "alpha.monitor",
                "-map", "0:v", *encoder_args("h264", DEFAULT_BITRATE, bench.fps), "-fps_mode", "passthrough",
                "-f", "rtp", "-payload_type", str(RTP_PAYLOAD_TYPE),
                f"rtp://127.0.0.1:{video_port}?pkt_size={RTP_PACKET_SIZE}",
                "-map", "1:a", "-c:a", "libopus", "-application", "lowdelay", "-frame_duration", "10",
                "-b:a", "128k", "-f", "rtp", "-payload_type", str(AUDIO_PAYLOAD_TYPE),
                f"rtp://127.0.0.1:{audio_port}",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                env=child_env(x.display, **bench.sender_pulse.client_env()),
            )  # fmt: skip
        sending = encoder

        def cpu() -> tuple[float, float]:
            return tree_cpu_seconds(sending.pid), tree_cpu_seconds(player.pid)

        yield Shown([0, 0, bench.room.width, bench.room.height], cpu)
    finally:
        if encoder is not None:
            await stop_process(encoder)
        await stop_process(player)


@asynccontextmanager
async def _chromium(bench: Bench) -> AsyncIterator[Shown]:
    """Chromium to Chromium, as :mod:`benchmarks.browser` sets them up, with the sound in the stream."""
    from playwright.async_api import async_playwright

    width, height = bench.senders.width, bench.senders.height
    browsers: list[Browser] = []
    async with async_playwright() as playwright:
        try:
            sender = await Browser.launch(
                playwright, "sender", bench.senders.display, "sender.html", bench.log_dir,
                ["--auto-select-desktop-capture-source=Entire screen", f"--window-position={width},0",
                 "--window-size=640,480"],
                env=bench.sender_pulse.client_env(),
            )  # fmt: skip
            browsers.append(sender)
            receiver = await Browser.launch(
                playwright, "receiver", bench.room.display, "receiver.html", bench.log_dir,
                ["--kiosk", "--window-position=0,0", f"--window-size={width},{height}",
                 "--autoplay-policy=no-user-gesture-required"],
                env=bench.room_pulse.client_env(),
            )  # fmt: skip
            browsers.append(receiver)
            await fill_screen(bench.room, receiver)
            options = {
                "fps": bench.fps, "width": width, "height": height, "codec": "h264",
                "maxBitrate": DEFAULT_BITRATE, "contentHint": "motion",
                "degradationPreference": "maintain-resolution", "address": "127.0.0.1", "audio": True,
            }  # fmt: skip
            offer = await sender.call("options => offer(options)", options)
            answer = await receiver.call(
                "([sdp, target, address]) => answer(sdp, target, address)", [offer["sdp"], 0, "127.0.0.1"]
            )
            await sender.call("sdp => accept(sdp)", answer)
            await clear_screen(bench.senders, sender.pid)
            await receiver.call("() => shown()")
            yield Shown(
                [0, 0, bench.room.width, bench.room.height],
                lambda: (sender.cpu_seconds(), receiver.cpu_seconds()),
            )
        finally:
            for browser in browsers:
                await browser.aclose(bench.log_dir)


SIDE_RUNNERS: dict[str, Side] = {
    "coalesce": _coalesce(sound=True),
    "coalesce-silent": _coalesce(sound=False),
    "ffmpeg": _ffmpeg,
    "chromium": _chromium,
}


# -- matching flashes and clicks ---------------------------------------------------------------------


def typical_latency(source: Sequence[float], room: Sequence[float]) -> float | None:
    """The latency most pairs of a source and a later room moment share (to :data:`HISTOGRAM_BIN`), up
    to :data:`MAX_LATENCY`: the true pairs agree, the others spread over the random intervals."""
    bins: dict[int, list[float]] = {}
    for at in room:
        for moment in source:
            if 0 <= at - moment <= MAX_LATENCY:
                bins.setdefault(round((at - moment) / HISTOGRAM_BIN), []).append(at - moment)
    if not bins:
        return None
    # A bin and its two neighbours, so a latency on a bin's edge is not split in two.
    best = max(bins, key=lambda b: sum(len(bins.get(b + d, [])) for d in (-1, 0, 1)))
    return statistics.median([v for d in (-1, 0, 1) for v in bins.get(best + d, [])])


def _matches(source: Sequence[float], room: Sequence[float]) -> dict[int, float]:
    """Per source moment, the latency of the room moment that is its (nearest the typical latency)."""
    typical = typical_latency(source, room)
    found: dict[int, float] = {}
    if typical is None:
        return found
    for at in room:
        candidates = [(abs(at - m - typical), i) for i, m in enumerate(source)]
        distance, index = min(candidates)
        if distance <= MATCH_WINDOW and (index not in found or distance < abs(found[index] - typical)):
            found[index] = at - source[index]
    return found


def source_events(flashes: Sequence[float], clicks: Sequence[float]) -> list[tuple[float, float]]:
    """The source's (flash, click) pairs: each flash with the click nearest it, within
    :data:`SOURCE_PAIRING`."""
    events = []
    for flash in flashes:
        nearest = min(clicks, key=lambda click: abs(click - flash), default=None)
        if nearest is not None and abs(nearest - flash) <= SOURCE_PAIRING:
            events.append((flash, nearest))
    return events


def matched_events(
    source: Sequence[tuple[float, float]], room_flashes: Sequence[float], room_clicks: Sequence[float]
) -> list[dict[str, float]]:
    """Per source event that reached the room both as a flash and as a click: the picture's and the
    sound's latency and the offset (sound's latency less picture's), in seconds."""
    flashes = [flash for flash, _ in source]
    clicks = [click for _, click in source]
    shown = _matches(flashes, room_flashes)
    heard = _matches(clicks, room_clicks)
    return [
        {
            "video_latency": shown[index],
            "audio_latency": heard[index],
            "offset": heard[index] - shown[index],
            "source_offset": clicks[index] - flashes[index],
        }
        for index in sorted(shown.keys() & heard.keys())
    ]


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarize(events: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Median and spread of a run's (or a side's) events, in ms."""
    if not events:
        return {"events": 0}
    offsets = [e["offset"] for e in events]
    return {
        "events": len(events),
        "offset_median_ms": statistics.median(offsets) * 1000,
        "offset_p5_ms": _percentile(offsets, 0.05) * 1000,
        "offset_p95_ms": _percentile(offsets, 0.95) * 1000,
        "abs_offset_p95_ms": _percentile([abs(o) for o in offsets], 0.95) * 1000,
        "within_bound": sum(abs(o) <= LIP_SYNC_BOUND for o in offsets) / len(offsets),
        "video_latency_median_ms": statistics.median(e["video_latency"] for e in events) * 1000,
        "audio_latency_median_ms": statistics.median(e["audio_latency"] for e in events) * 1000,
        "source_offset_median_ms": statistics.median(e["source_offset"] for e in events) * 1000,
    }


# -- one run of one side -----------------------------------------------------------------------------


async def _probe(name: str, display: str, monitor: str, pulse: PulseServer, log_dir: Path) -> Child:
    probe = await Child.spawn(
        name, "benchmarks.avprobe", ["--display", display, "--monitor", monitor],
        child_env(display, **pulse.client_env()), log_dir,
    )  # fmt: skip
    await probe.read(START_TIMEOUT)
    return probe


async def run_side(name: str, bench: Bench, seconds: float, warmup: float) -> dict[str, Any]:
    """One run: the side shares for ``warmup`` + ``seconds``; the events of the last ``seconds``."""
    log_dir = bench.log_dir
    async with SIDE_RUNNERS[name](bench) as shown:
        await asyncio.sleep(warmup)
        probes = [
            await _probe("probe-source", bench.senders.display, "alpha.monitor", bench.sender_pulse, log_dir),
            await _probe("probe-room", bench.room.display, "room.monitor", bench.room_pulse, log_dir),
        ]
        try:
            cpu_before = shown.cpu() if shown.cpu else None
            await probes[0].request("begin", rect=None)
            await probes[1].request("begin", rect=shown.rect)
            began = time.monotonic()
            await asyncio.sleep(seconds)  # the measurement window
            source, room = [await p.request("end", answer_within=30.0) for p in probes]
            elapsed = time.monotonic() - began
            cpu_after = shown.cpu() if shown.cpu else None
        finally:
            for probe in probes:
                await probe.aclose()
    pairs = source_events(source["flashes"], source["clicks"])
    events = matched_events(pairs, room["flashes"], room["clicks"])
    result: dict[str, Any] = {
        "side": name,
        "source_flashes": len(source["flashes"]),
        "source_clicks": len(source["clicks"]),
        "source_events": len(pairs),
        "room_flashes": len(room["flashes"]),
        "room_clicks": len(room["clicks"]),
        "events": events,
        "onsets": {"source": source, "room": room},
        **{k: v for k, v in summarize(events).items() if k != "events"},
    }
    if cpu_before is not None and cpu_after is not None:
        result["sender_cpu"] = (cpu_after[0] - cpu_before[0]) / elapsed
        result["receiver_cpu"] = (cpu_after[1] - cpu_before[1]) / elapsed
    return result


# -- the whole benchmark -----------------------------------------------------------------------------


@asynccontextmanager
async def bench_stage(width: int, height: int, fps: float, log_dir: Path) -> AsyncIterator[Bench]:
    """Two screens, two sound servers (the laptop's and the room's) and the flash pattern on the senders'
    screen.

    The laptop's default microphone is what it plays: a remap of its sink's monitor, as a Linux user
    gives a browser the system's sound (Chromium lists no monitor source as a microphone)."""
    senders = await start_xvfb(width, height, log_dir / "xvfb-senders.log")
    room = await start_xvfb(width, height, log_dir / "xvfb-room.log")
    pulses: list[PulseServer] = []
    flash: Child | None = None
    try:
        try:
            sender_pulse = start_pulse(log_dir / "pulse-sender", {"alpha": "CoalesceAlpha"})
            pulses.append(sender_pulse)
            room_pulse = start_pulse(log_dir / "pulse-room", {"room": "CoalesceRoom"})
            pulses.append(room_pulse)
        except PulseError as exc:
            raise BenchmarkError(str(exc)) from exc
        for command in (
            ["load-module", "module-remap-source", "master=alpha.monitor", "source_name=played",
             "source_properties=device.description=WhatThisComputerPlays"],
            ["set-default-source", "played"],
        ):  # fmt: skip
            await asyncio.to_thread(
                subprocess.run, ["pactl", *command], env=sender_pulse.env(), check=True, timeout=10
            )
        flash = await Child.spawn(
            "flash", "benchmarks.flash", [], child_env(senders.display, **sender_pulse.client_env()), log_dir
        )
        assert flash.process.stdout is not None
        if (await asyncio.wait_for(flash.process.stdout.readline(), START_TIMEOUT)).strip() != b"ready":
            raise BenchmarkError("the flash pattern did not start; see flash.log")
        yield Bench(senders, room, sender_pulse, room_pulse, log_dir, fps)
    finally:
        if flash is not None:
            await flash.aclose()
        for pulse in pulses:
            pulse.stop()
        senders.stop()
        room.stop()


async def run_all(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in args.sides}
    async with bench_stage(args.size[0], args.size[1], args.fps, log_dir) as bench:
        for number, order in enumerate((run_order(i, args.sides) for i in range(args.runs)), 1):
            for side in order:
                side_dir = log_dir / f"run{number}-{side}"
                side_dir.mkdir()
                try:
                    result = await run_side(
                        side, dataclasses.replace(bench, log_dir=side_dir), args.seconds, args.warmup
                    )
                except BenchmarkError as exc:
                    result = {"side": side, "error": str(exc)}
                print(f"# run {number} {side}: {_line(result)}", file=sys.stderr, flush=True)
                runs[side].append(result)
    sides = {}
    for side, results in runs.items():
        events = [e for r in results if "error" not in r for e in r["events"]]
        cpu = [r for r in results if "sender_cpu" in r]
        sides[side] = {
            **summarize(events),
            "runs": len(results),
            "failed": sum("error" in r for r in results),
            "sender_cpu": statistics.median(r["sender_cpu"] for r in cpu) if cpu else None,
            "receiver_cpu": statistics.median(r["receiver_cpu"] for r in cpu) if cpu else None,
        }
    return {
        "kind": "lipsync",
        "date": time.strftime("%Y-%m-%d"),
        "size": list(args.size),
        "fps": args.fps,
        "seconds": args.seconds,
        "runs_per_side": args.runs,
        "sides": sides,
        "runs": runs,
    }


def _line(result: dict[str, Any]) -> str:
    if "error" in result:
        return "failed: " + str(result["error"]).splitlines()[0]
    if not result.get("events"):
        return (
            f"no matched events (source {result['source_events']}, room flashes {result['room_flashes']}, "
            f"room clicks {result['room_clicks']})"
        )
    return (
        f"{len(result['events'])} events, offset median {result['offset_median_ms']:+.0f} ms, "
        f"picture {result['video_latency_median_ms']:.0f} ms, "
        f"sound {result['audio_latency_median_ms']:.0f} ms"
    )


def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one row per side."""
    rows = [
        "| side | flashes | offset median | p5 to p95 | within ±45 ms | picture latency | sound latency "
        "| sender CPU | receiver CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for side, s in report["sides"].items():
        failed = f" ({s['failed']}/{s['runs']} runs failed)" if s["failed"] else ""
        cpu = [f"{s[k] * 100:.0f} %" if s.get(k) is not None else "-" for k in ("sender_cpu", "receiver_cpu")]
        if not s["events"]:
            rows.append(f"| {side}{failed} | 0 | - | - | - | - | - | {cpu[0]} | {cpu[1]} |")
            continue
        rows.append(
            f"| {side}{failed} | {s['events']} | {s['offset_median_ms']:+.0f} ms "
            f"| {s['offset_p5_ms']:+.0f} to {s['offset_p95_ms']:+.0f} ms | {s['within_bound'] * 100:.0f} % "
            f"| {s['video_latency_median_ms']:.0f} ms | {s['audio_latency_median_ms']:.0f} ms "
            f"| {cpu[0]} | {cpu[1]} |"
        )
    return "\n".join(rows)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def _sides(text: str) -> list[str]:
    sides = [s for s in text.split(",") if s]
    unknown = [s for s in sides if s not in SIDE_RUNNERS]
    if unknown or not sides:
        raise argparse.ArgumentTypeError(f"sides are {', '.join(SIDE_RUNNERS)}")
    return sides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks lipsync", description=__doc__.split("\n")[0])
    parser.add_argument("--sides", type=_sides, default=list(SIDES), help="default coalesce,ffmpeg,chromium")
    parser.add_argument("--size", type=_size, default=(1280, 720), help="screen size (default 1280x720)")
    parser.add_argument("--fps", type=float, default=30.0, help="capture rate (default 30)")
    parser.add_argument("--runs", type=int, default=5, help="runs per side (default 5)")
    parser.add_argument("--seconds", type=float, default=20.0, help="window per run (default 20)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window (default 5)")
    parser.add_argument("--json", type=Path, help="write the report there")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="coalesce-lipsync-"))
    report = asyncio.run(run_all(args, log_dir))
    print(table(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    failed = any(
        s["failed"] or not s["events"] for name, s in report["sides"].items() if name not in EXTRA_SIDES
    )
    if args.keep_logs or failed:
        print(f"# logs: {log_dir}", file=sys.stderr)
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
