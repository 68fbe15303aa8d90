"""One run of Coalesce: a receiver under its real room window on the room's own Xvfb, N sender processes
sharing the senders' screen through the real signaling, PIN pairing, ICE and DTLS, and a glass sampler per
share on the room's screen."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.cases import PIN, ROOM_NAME, START_TIMEOUT, Case, Settings, Stage
from benchmarks.glass import start_glass, take_snapshots
from benchmarks.outcome import combine, cpu_delta, screen_cpu
from benchmarks.procs import (
    BenchmarkError,
    Child,
    PatternChild,
    XServer,
    child_env,
    cpu_seconds,
    memory_mib,
    pin_sides,
)


async def run_coalesce(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    data_dir = settings.log_dir / "receiver-data"
    network = stage.network
    source = f"{case.width}x{case.height}"
    args = [
        "--pin",
        PIN,
        "--data-dir",
        str(data_dir),
        "--window",
        "--source",
        source,
        "--host",
        network.receiver_ip,
        "--mdns",
    ]
    env = child_env(stage.room.display, address=network.receiver_ip)
    receiver = await Child.spawn("receiver", "benchmarks.receiver_proc", args, env, settings.log_dir)
    senders: list[Child] = []
    glasses: list[Child] = []
    profilers: list[asyncio.subprocess.Process] = []
    try:
        await receiver.read(START_TIMEOUT)  # it listens, and announces itself over mDNS
        for index in range(case.senders):
            # Each sender finds the room by name over mDNS, as the app's room list does, then pairs.
            args = [
                "--discover", ROOM_NAME, "--mdns-interface", network.sender_ip, "--pin", PIN,
                "--display", xserver.display, "--codec", case.codec, "--fps", f"{settings.fps:g}",
                "--name", f"bench-{index}",
            ]  # fmt: skip
            if case.bitrate is not None:
                args += ["--bitrate", str(case.bitrate)]
            env = child_env(xserver.display, address=network.sender_ip)
            senders.append(
                await Child.spawn(
                    f"sender-{index}",
                    "benchmarks.sender_proc",
                    args,
                    env,
                    settings.log_dir,
                    prefix=network.sender_prefix,
                )
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

        if settings.pin:
            pin_sides(
                [*(s.pid for s in senders), xserver.pid, pattern.pid],
                [receiver.pid, stage.room.pid, *(g.pid for g in glasses)],
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
            screen_cpu(xserver, pattern),
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
            screen_cpu(xserver, pattern),
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
    return combine(
        [s for s in window["streams"] if s["frames"]],
        glass=[w for w in glass_windows if w["frames"]],
        codec=started[0]["codec"] if started else "",
        elapsed=elapsed,
        sender_cpu=sum(cpu_after[0]) - sum(cpu_before[0]),
        receiver_cpu=cpu_after[1] - cpu_before[1],
        screen_cpu=cpu_delta(cpu_after[2], cpu_before[2]),
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
