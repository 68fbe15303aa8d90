"""The browser sender side (``--sides web``): Debian's Chromium shares the benchmark's screen from the
cloud's sharing page (``/share/``) to Coalesce's own room window, through a local cloud on 127.0.0.1.

This is what a guest without the app gets: the page as it ships (its capture asks for 30 fps, its
track's ``contentHint`` is ``"detail"``), XMPP over WebSocket through ejabberd, the PIN pairing, media
peer to peer on loopback, received by the room's receiver and window (:mod:`benchmarks.receiver_proc`,
linked to the cloud as a box) and read at the room's glass like the Coalesce side. The first-frame
figure runs from pressing Share (after the screen picker, which ``--auto-select-desktop-capture-source``
answers) to the room's first decoded frame; it includes the guest admission, the XMPP login and the
pairing.

Loopback only: the impaired links put senders in a namespace the local cloud is not in.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import async_playwright

from benchmarks.browser import CHROMIUM, browser_pid, clear_screen, tree_cpu_seconds
from benchmarks.cases import START_TIMEOUT, Case, Settings, Stage
from benchmarks.glass import start_glass, take_snapshots
from benchmarks.links import LOOPBACK
from benchmarks.outcome import combine, cpu_delta, screen_cpu
from benchmarks.procs import BenchmarkError, Child, PatternChild, XServer, child_env, cpu_seconds, pin_sides
from coalesce_cloud.servers.certs import spki_sha256
from coalesce_cloud.stack import LocalCloud
from coalesce_common.cloud.rest import CloudClient

PIN = "4821"
GUEST = "bench-0"
STATS_JS = """async () => {
    const stats = await window.coalesce.share.pc.getStats();
    let out = null;
    stats.forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesSent) out = s; });
    if (!out) return null;
    const codec = out.codecId ? stats.get(out.codecId) : null;
    let available = null;
    stats.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated) available = s.availableOutgoingBitrate || available;
    });
    return {
        target_bitrate: out.targetBitrate || null, limited_by: out.qualityLimitationReason || null,
        available_bitrate: available,
        bytes_sent: out.bytesSent, frames: out.framesSent, width: out.frameWidth, height: out.frameHeight,
        fps: out.framesPerSecond || 0, codec: codec ? codec.mimeType : '', encoder: out.encoderImplementation,
    };
}"""


async def _enroll_box(cloud: LocalCloud) -> dict[str, Any]:
    """A box's credentials from the local cloud, as ``coalesce-receiver --enroll`` gets them."""
    headers = {"Authorization": f"Bearer {cloud.admin_token}"}
    async with httpx.AsyncClient(verify=cloud.ca_file, base_url=cloud.api_url + "/api/v1") as http:
        answer = await http.post(
            "/admin/enrollment-codes", json={"org": "bench", "uses": 1, "ttl_seconds": 600}, headers=headers
        )
        answer.raise_for_status()
    async with CloudClient(cloud.api_url, ca_file=cloud.ca_file) as api:
        credentials = await api.enroll(answer.json()["code"], "Bench room", "box", ca_file=cloud.ca_file)
    return credentials.to_json()


async def run_web(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    if case.senders != 1:
        raise BenchmarkError("the browser sender side shares one screen (senders = 1)")
    if stage.network != LOOPBACK:
        raise BenchmarkError("the browser sender side runs on loopback only")
    log_dir = settings.log_dir
    async with LocalCloud(log_dir / "cloud") as cloud:
        credentials = await _enroll_box(cloud)
        ca_hash = spki_sha256(await asyncio.to_thread(Path(cloud.ca_file).read_bytes))
        args = ["--pin", PIN, "--data-dir", str(log_dir / "receiver-data"), "--window"]
        args += ["--source", f"{case.width}x{case.height}"]
        env = child_env(stage.room.display)
        receiver = await Child.spawn("receiver", "benchmarks.receiver_proc", args, env, log_dir)
        glass: Child | None = None
        try:
            await receiver.read(START_TIMEOUT)
            meeting_id = (await receiver.request("link", START_TIMEOUT, credentials=credentials))[
                "meeting_id"
            ]
            if not meeting_id:
                raise BenchmarkError("the room got no meeting ID from the local cloud")
            glass = await start_glass("glass-web", stage.room.display, log_dir)
            async with async_playwright() as playwright:
                profile = (log_dir / "chromium-web").resolve()
                browser_env: dict[str, str | float | bool] = {**child_env(xserver.display)}
                context = await playwright.chromium.launch_persistent_context(
                    str(profile),
                    executable_path=str(CHROMIUM),
                    headless=False,
                    env=browser_env,
                    args=[
                        "--disable-gpu",
                        "--allow-loopback-in-peer-connection",
                        "--auto-select-desktop-capture-source=Entire screen",
                        f"--window-position={xserver.width},0",
                        "--window-size=640,600",
                        f"--ignore-certificate-errors-spki-list={ca_hash}",
                    ],
                    no_viewport=True,
                    timeout=START_TIMEOUT * 1000,
                )
                try:
                    await context.grant_permissions(["camera", "microphone"], origin=cloud.api_url)
                    page = context.pages[0] if context.pages else await context.new_page()
                    await page.goto(cloud.share_page_url)
                    await page.fill("#meeting", meeting_id)
                    await page.fill("#pin", PIN)
                    await page.fill("#name", GUEST)
                    await page.uncheck("#sound")
                    pressed = time.monotonic()
                    await page.click("#share")
                    first = await receiver.request("wait", START_TIMEOUT + 5, count=1, timeout=START_TIMEOUT)
                    if "error" in first:
                        raise BenchmarkError(f"the page's share did not reach the room: {first['error']}")
                    first_frame = [s["first_frame_at"] - pressed for s in first["streams"]]
                    pid = browser_pid(profile)
                    await clear_screen(xserver, pid)
                    return await _measure(
                        case, xserver, pattern, settings, stage, receiver, glass, page, pid, first_frame
                    )
                finally:
                    await context.close()
        finally:
            if glass is not None:
                await glass.aclose()
            await receiver.aclose()


async def _measure(
    case: Case,
    xserver: XServer,
    pattern: PatternChild,
    settings: Settings,
    stage: Stage,
    receiver: Child,
    glass: Child,
    page: Any,
    pid: int,
    first_frame: list[float],
) -> dict[str, Any]:
    if settings.pin:
        pin_sides([pid, xserver.pid, pattern.pid], [receiver.pid, stage.room.pid, glass.pid])
    await asyncio.sleep(settings.warmup)
    placements = (await receiver.request("placements"))["placements"]
    placed = {p["sender"]: p for p in placements}
    if GUEST not in placed:
        raise BenchmarkError("the room window shows no picture for the browser's share")

    def cpu() -> tuple[float, float, tuple[float, float, float], float, float]:
        return (
            tree_cpu_seconds(pid),
            receiver.cpu_seconds(),
            screen_cpu(xserver, pattern),
            glass.cpu_seconds(),
            cpu_seconds(stage.room.pid),
        )

    before, cpu_before = await page.evaluate(STATS_JS), cpu()
    await receiver.request("begin")
    await glass.request("begin", source=[case.width, case.height], rect=placed[GUEST]["rect"])
    began = time.monotonic()
    await asyncio.sleep(settings.seconds)  # the measurement window
    window = await receiver.request("end")
    glass_window = await glass.request("end")
    elapsed = time.monotonic() - began
    after, cpu_after = await page.evaluate(STATS_JS), cpu()
    snapshots = await take_snapshots(
        glass,
        settings.log_dir,
        GUEST,
        source=(case.width, case.height),
        rect=placed[GUEST]["rect"],
        covered=placed[GUEST]["covered"],
    )
    result = combine(
        [s for s in window["streams"] if s["frames"]],
        glass=[glass_window] if glass_window["frames"] else [],
        codec=(after or {}).get("codec", "").removeprefix("video/").lower(),
        elapsed=elapsed,
        sender_cpu=cpu_after[0] - cpu_before[0],
        receiver_cpu=cpu_after[1] - cpu_before[1],
        screen_cpu=cpu_delta(cpu_after[2], cpu_before[2]),
        glass_cpu=cpu_after[3] - cpu_before[3],
        room_x_cpu=cpu_after[4] - cpu_before[4],
        bytes_sent=int((after or {}).get("bytes_sent", 0)) - int((before or {}).get("bytes_sent", 0)),
        first_frame=first_frame,
        first_frame_from_launch=first_frame,
        capture_drops=None,
        snapshots=snapshots,
    )
    result["browser_sends"] = after
    return result
