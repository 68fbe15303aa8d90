"""The browser baseline: one Chromium shares the benchmark's screen over WebRTC to a second Chromium.

This is what a user of Meet, Teams or Jitsi gets: Debian's ``/usr/bin/chromium``, headful on the
benchmark's Xvfb, captures the whole screen with ``getDisplayMedia`` (``benchmarks/web/sender.html``) and
sends it over an ``RTCPeerConnection`` on 127.0.0.1 (or across the case's impaired link, the sending
browser then in the senders' namespace) to a second Chromium in kiosk mode on its own Xvfb of
the same size, which shows the video full screen (``receiver.html``). The timecode is read off that second
screen by a :mod:`benchmarks.glass` child, so the latency is glass to glass as the room would see it.

Playwright for Python drives both browsers (``executable_path``: its own browser download is never used);
the pages are served from ``benchmarks/web/`` by Playwright's request routing (nothing listens, nothing
leaves the machine). Signaling is one offer and one answer moved by ``page.evaluate``, with every ICE
candidate gathered first and only those on each end's own address kept (127.0.0.1, or its end of the
veth).

What this Chromium (156) needed, found by trying:

- ``--auto-select-desktop-capture-source="Entire screen"`` alone picks the screen without a prompt.
  Adding ``--use-fake-ui-for-media-stream`` breaks it on Xvfb: the fake picker asks for screen id 0, which
  the X11 capturer refuses when RandR is on ("Could not start video source").
- Chromium gathers a 127.0.0.1 candidate only with ``--allow-loopback-in-peer-connection`` *and* the
  camera and microphone permissions granted to the page's origin (without them it enumerates only the
  default route's address, 192.0.2.2 here).
- Chromium shows its "... is sharing your screen" bar on the shared screen, and on X11 the bar is captured.
  A user clicks "Hide"; here ``xdotool`` moves the sender browser's windows off the screen, and the
  pointer to the bottom-right corner (Chromium captures the cursor, Coalesce and ffmpeg do not).
- Without a window manager the kiosk window comes out one pixel short of the screen on two edges:
  ``xdotool`` sizes it to the screen (:func:`fill_screen`).
- The sender encodes H.264 with OpenH264 (``encoderImplementation``), so the case's codec is used as is.

Settings, as the best user of a browser would set them:

- ``contentHint`` ``"detail"`` for a static page and ``"motion"`` for full-screen motion: the content is
  known per case, and each hint tunes the encoder for it (screen-content mode for text, motion otherwise).
- ``degradationPreference`` ``"maintain-resolution"``: the comparison is at full resolution (Coalesce
  drops frames rather than scale); with ``"motion"`` Chromium would otherwise lower the resolution first.
- ``maxBitrate`` ``bitrate`` (default Coalesce's 4 Mbit/s) and ``maxFramerate`` the case's fps on the one
  encoding; the codec first through ``setCodecPreferences``.
- ``jitterBufferTarget = 0`` on the receiver: the lowest target the API allows (a hint; Chromium keeps the
  delay its jitter estimate needs). ``--disable-gpu`` on both: this machine has no GPU; without the flag
  Chromium's GPU process fails to start before Chromium composites in software all the same.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, Playwright, Route, async_playwright
from playwright.async_api import Error as PlaywrightError

from benchmarks.cases import DEFAULT_BITRATE, PATTERN_RATE, START_TIMEOUT, Case, Settings, Stage
from benchmarks.glass import start_glass, take_snapshots
from benchmarks.outcome import clean, combine, cpu_delta, screen_cpu
from benchmarks.procs import (
    BenchmarkError,
    Child,
    PatternChild,
    XServer,
    child_env,
    cpu_seconds,
    descendants,
    memory_mib,
    pin_sides,
    start_pattern,
    start_xvfb,
)

CHROMIUM = Path("/usr/bin/chromium")
WEB_DIR = Path(__file__).resolve().parent / "web"
ORIGIN = "http://127.0.0.1"
"""The pages' origin: a secure context (getDisplayMedia needs one) that Playwright serves from WEB_DIR."""
JITTER_BUFFER_TARGET_MS = 0
RAMP_TIMEOUT = 10.0
RAMPED = 0.9
"""Share of ``maxBitrate`` the encoder's target must reach before the warm-up starts."""
STATS_INTERVAL = 0.25

COMMON_ARGS = (  # beside Playwright's own (no background throttling, no first-run UI, ...)
    "--disable-gpu",
    "--allow-loopback-in-peer-connection",
    "--enable-logging",  # to chrome_debug.log in the profile folder, kept with the run's logs
    "--v=0",
)


def chromium_version(executable: Path = CHROMIUM) -> str:
    """The installed Chromium's version ("156.0.8078.114"), for the report's machine line; '' if absent."""
    if not executable.exists():
        return ""
    result = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    found = re.search(r"(\d+(?:\.\d+){3})", result.stdout)
    return found.group(1) if found else ""


def content_hint(content: str) -> str:
    """The ``MediaStreamTrack.contentHint`` a careful user sets for the case's content."""
    return "detail" if content == "static" else "motion"


# -- the browsers' processes ---------------------------------------------------------------------------


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root``'s process tree (processes that have exited no longer count)."""
    return sum(cpu_seconds(pid) for pid in descendants(root))


def browser_pid(user_data_dir: Path) -> int:
    """The browser process (not a renderer or helper) running with ``user_data_dir`` as its profile."""
    flag = f"--user-data-dir={user_data_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if flag in argv and not any(arg.startswith(b"--type=") for arg in argv):
            return int(entry.name)
    raise BenchmarkError(f"no Chromium runs with the profile {user_data_dir}")


# -- one browser ---------------------------------------------------------------------------------------


async def _serve(route: Route) -> None:
    """Answers the pages' requests from WEB_DIR (and nothing else: other paths are 404)."""
    name = route.request.url.removeprefix(ORIGIN + "/").split("?", 1)[0]
    path = WEB_DIR / name
    if "/" in name or not path.is_file():
        await route.fulfill(status=404, body="not found")
    else:
        await route.fulfill(path=str(path))


@dataclasses.dataclass
class Browser:
    """One Chromium with one page of ``benchmarks/web`` open, and the pid of its browser process."""

    name: str
    context: BrowserContext
    page: Page
    pid: int
    console: list[str]

    @classmethod
    async def launch(
        cls,
        playwright: Playwright,
        name: str,
        display: str,
        page: str,
        log_dir: Path,
        args: Sequence[str],
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> Browser:
        """``prefix`` (``ip netns exec NAME``) runs the browser in the senders' namespace: Playwright starts
        a two-line script that execs it, so the pipes it talks to the browser over pass through. ``env``
        adds to its environment (the lip-sync benchmark's PulseAudio server)."""
        profile = (log_dir / f"chromium-{name}").resolve()  # as it appears in the browser's command line
        environment: dict[str, str | float | bool] = {**child_env(display), **(env or {})}
        executable = CHROMIUM
        if prefix:
            executable = log_dir / f"chromium-{name}.sh"
            command = " ".join(shlex.quote(word) for word in [*prefix, str(CHROMIUM)])
            executable.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
            executable.chmod(0o755)
        try:
            context = await playwright.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(executable),
                headless=False,
                env=environment,
                args=[*COMMON_ARGS, *args],
                no_viewport=True,
                timeout=START_TIMEOUT * 1000,
            )
        except PlaywrightError as exc:
            raise BenchmarkError(f"Chromium ({name}) did not start: {exc.message}") from exc
        await context.grant_permissions(["camera", "microphone"], origin=ORIGIN)
        await context.route(f"{ORIGIN}/**", _serve)
        tab = context.pages[0] if context.pages else await context.new_page()
        console: list[str] = []
        tab.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        tab.on("pageerror", lambda error: console.append(f"error: {error}"))
        await tab.goto(f"{ORIGIN}/{page}")
        return cls(name, context, tab, browser_pid(profile), console)

    async def call(self, expression: str, arg: Any = None, timeout: float = START_TIMEOUT) -> Any:
        """``expression`` (a function of one argument) evaluated in the page; errors name the browser."""
        try:
            async with asyncio.timeout(timeout):
                return await self.page.evaluate(expression, arg)
        except TimeoutError:
            raise BenchmarkError(
                f"{self.name} Chromium did not answer {expression!r} in {timeout:.0f} s"
            ) from None
        except PlaywrightError as exc:
            raise BenchmarkError(f"{self.name} Chromium: {exc.message}") from exc

    async def stats(self) -> dict[str, Any]:
        """The page's ``stats()``: its video stream's ``getStats()`` figures (see the pages)."""
        stats: dict[str, Any] | None = await self.call("() => stats()")
        if stats is None:
            raise BenchmarkError(f"{self.name} Chromium has no video stream in its getStats()")
        return stats

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    async def aclose(self, log_dir: Path) -> None:
        (log_dir / f"chromium-{self.name}-console.log").write_text("\n".join(self.console) + "\n")
        with contextlib.suppress(PlaywrightError):
            await self.context.close()


# -- the sender's screen -------------------------------------------------------------------------------


async def _xdotool(display: str, *args: str) -> str:
    xdotool = shutil.which("xdotool")
    if xdotool is None:
        raise BenchmarkError("xdotool is not installed (bash scripts/setup.sh installs it)")
    process = await asyncio.create_subprocess_exec(
        xdotool, *args, env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, _ = await process.communicate()
    return out.decode()


async def clear_screen(xserver: XServer, sender_pid: int) -> None:
    """Moves the sending browser's windows (its page and its sharing bar) off the shared screen.

    The bar appears once capture has started; this waits until a window of the browser that is on the
    screen has been seen and moved, as a user's "Hide" click would. The pointer goes to the bottom-right
    corner, where the captured cursor covers the fewest pixels of the picture.
    """
    await _xdotool(xserver.display, "mousemove", str(xserver.width - 1), str(xserver.height - 1))
    deadline = time.monotonic() + START_TIMEOUT
    while not await _move_off_screen(xserver, sender_pid):
        if time.monotonic() > deadline:
            raise BenchmarkError(f"Chromium showed no sharing bar within {START_TIMEOUT:.0f} s")
        await asyncio.sleep(0.05)  # polling for the bar, which Chromium maps on its own schedule


async def fill_screen(screen: XServer, browser: Browser) -> None:
    """Makes the kiosk window cover exactly the whole screen, and waits until its page is that size.

    Without a window manager, Chromium 156 on X11 makes its kiosk window one pixel narrower and shorter
    than ``--window-size`` asks when that is the screen's size (1279x719 on a 1280x720 screen), which
    scales the video and leaves a black line at the right and bottom edges.
    """
    found = await _xdotool(screen.display, "search", "--onlyvisible", "--pid", str(browser.pid))
    for window in found.split():
        await _xdotool(screen.display, "windowsize", window, str(screen.width), str(screen.height))
        await _xdotool(screen.display, "windowmove", window, "0", "0")
    size = [screen.width, screen.height]
    try:
        await browser.page.wait_for_function(
            "([w, h]) => innerWidth === w && innerHeight === h", arg=size, timeout=START_TIMEOUT * 1000
        )
    except PlaywrightError as exc:
        got = await browser.call("() => [innerWidth, innerHeight]")
        raise BenchmarkError(f"the receiving page is {got[0]}x{got[1]}, not the screen's {size}") from exc


async def _move_off_screen(xserver: XServer, pid: int) -> bool:
    """Moves ``pid``'s mapped windows that are on the screen to just right of it; whether there were any."""
    moved = False
    found = await _xdotool(xserver.display, "search", "--onlyvisible", "--pid", str(pid))
    for window in found.split():
        geometry = await _xdotool(xserver.display, "getwindowgeometry", "--shell", window)
        values = dict(line.split("=", 1) for line in geometry.split() if "=" in line)
        if int(values.get("X", xserver.width)) < xserver.width:
            await _xdotool(xserver.display, "windowmove", window, str(xserver.width), "0")
            moved = True
    return moved


async def _ramped(sender: Browser, bitrate: int) -> float | None:
    """Waits until the sender's encoder target has reached ``bitrate``; the seconds that took, or None.

    Chromium's bandwidth estimate starts at 300 kbit/s and ramps up over a few seconds (about 3 s after the
    first frame at 720p here); the harness's warm-up starts once it is there, so the window measures the
    steady state, as for Coalesce, whose H.264 encoder starts at its 4 Mbit/s default. A sender whose
    content needs less (a static page) may never ask for more: then the wait ends after RAMP_TIMEOUT.
    """
    began = time.monotonic()
    while time.monotonic() - began < RAMP_TIMEOUT:
        stats = await sender.stats()
        if (stats.get("targetBitrate") or 0) >= RAMPED * bitrate:
            return time.monotonic() - began
        await asyncio.sleep(STATS_INTERVAL)  # polling getStats: Chromium has no event for a new estimate
    return None


# -- one run -------------------------------------------------------------------------------------------


async def run_chromium(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    """One run of the browser baseline on ``xserver``'s screen, received full screen on ``stage.room``, at
    the bitrate Coalesce reached (``stage.bitrate``): the result dict of :func:`benchmarks.outcome.combine`,
    with five snapshots of the receiving screen after the window."""
    if case.senders != 1:
        raise BenchmarkError("the browser baseline shares one screen to one receiver (senders = 1)")
    log_dir = settings.log_dir
    receiver_screen = stage.room
    glass: Child | None = None
    browsers: list[Browser] = []
    try:
        glass = await start_glass("glass-chromium", receiver_screen.display, log_dir)
        async with async_playwright() as playwright:
            try:
                launched_at = time.time()
                sender = await Browser.launch(
                    playwright,
                    "sender",
                    xserver.display,
                    "sender.html",
                    log_dir,
                    [
                        "--auto-select-desktop-capture-source=Entire screen",
                        f"--window-position={xserver.width},0",
                        "--window-size=640,480",
                    ],
                    prefix=stage.network.sender_prefix,
                )
                browsers.append(sender)
                receiver = await Browser.launch(
                    playwright,
                    "receiver",
                    receiver_screen.display,
                    "receiver.html",
                    log_dir,
                    ["--kiosk", "--window-position=0,0", f"--window-size={case.width},{case.height}"],
                )
                browsers.append(receiver)
                await fill_screen(receiver_screen, receiver)
                return await _measure(
                    case, xserver, pattern, settings, stage, sender, receiver, glass, launched_at
                )
            finally:
                for browser in browsers:
                    await browser.aclose(log_dir)
    finally:
        if glass is not None:
            await glass.aclose()


async def _measure(
    case: Case,
    xserver: XServer,
    pattern: PatternChild,
    settings: Settings,
    stage: Stage,
    sender: Browser,
    receiver: Browser,
    glass: Child,
    launched_at: float,
) -> dict[str, Any]:
    bitrate = stage.bitrate
    options = {
        "fps": settings.fps,
        "width": case.width,
        "height": case.height,
        "codec": case.codec,
        "maxBitrate": bitrate,
        "contentHint": content_hint(case.content),
        "degradationPreference": "maintain-resolution",
        "address": stage.network.sender_ip,
    }
    share_started = time.time()  # the page reports its first frame on this clock
    offer = await sender.call("options => offer(options)", options)
    answer = await receiver.call(
        "([sdp, target, address]) => answer(sdp, target, address)",
        [offer["sdp"], JITTER_BUFFER_TARGET_MS, stage.network.receiver_ip],
    )
    await sender.call("sdp => accept(sdp)", answer)
    await clear_screen(xserver, sender.pid)
    shown = await receiver.call("() => shown()")
    first_frame_at = shown["paintedAt"] / 1000
    if (shown["width"], shown["height"]) != (case.width, case.height):
        print(f"#   chromium sends {shown['width']}x{shown['height']}", file=sys.stderr, flush=True)
    ramp_s = await _ramped(sender, bitrate)
    if settings.pin:
        pin_sides([sender.pid, xserver.pid, pattern.pid], [receiver.pid, stage.room.pid, glass.pid])
    await asyncio.sleep(settings.warmup)

    def cpu() -> tuple[float, float, tuple[float, float, float], float, float]:
        return (
            sender.cpu_seconds(),
            receiver.cpu_seconds(),
            screen_cpu(xserver, pattern),
            glass.cpu_seconds(),
            cpu_seconds(stage.room.pid),
        )

    stats_before = await sender.stats()
    received_before = await receiver.stats()
    cpu_before = cpu()
    await glass.request("begin", source=[case.width, case.height], rect=None)
    began = time.monotonic()
    await asyncio.sleep(settings.seconds)
    window = await glass.request("end")
    elapsed = time.monotonic() - began
    cpu_after = cpu()
    stats_after = await sender.stats()
    received = await receiver.stats()
    kept = {
        "ramp_s": ramp_s,
        "sender": [stats_before, stats_after],
        "receiver": [received_before, received],
        "window_s": elapsed,
    }
    (settings.log_dir / "chromium-stats.json").write_text(json.dumps(kept, indent=1) + "\n")
    memory = memory_mib(descendants(sender.pid)), memory_mib(descendants(receiver.pid))
    snapshots = await take_snapshots(glass, settings.log_dir, "chromium")
    codec = stats_after["codec"] or ""
    if stats_after["encoderImplementation"]:
        codec = f"{codec.removeprefix('video/')} ({stats_after['encoderImplementation']})"
    return combine(
        [],
        glass=[window] if window["frames"] else [],
        codec=codec,
        elapsed=elapsed,
        sender_cpu=cpu_after[0] - cpu_before[0],
        receiver_cpu=cpu_after[1] - cpu_before[1],
        screen_cpu=cpu_delta(cpu_after[2], cpu_before[2]),
        glass_cpu=cpu_after[3] - cpu_before[3],
        room_x_cpu=cpu_after[4] - cpu_before[4],
        bytes_sent=stats_after["bytesSent"] - stats_before["bytesSent"],
        first_frame=[first_frame_at - share_started],
        first_frame_from_launch=[first_frame_at - launched_at],
        capture_drops=None,
        snapshots=snapshots,
        memory=memory,
    )


# -- command line (one run on its own, as the tests do it) ---------------------------------------------


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"a size is WIDTHxHEIGHT, got {text!r}")
    return int(width), int(height)


async def _run_once(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    width, height = args.size
    case = Case(width, height, args.content, args.codec, 1)
    settings = Settings(
        seconds=args.seconds,
        warmup=args.warmup,
        fps=args.fps,
        pattern_fps=PATTERN_RATE * args.fps,
        sides=("chromium",),
        log_dir=log_dir,
    )
    xserver = await start_xvfb(width, height, log_dir / f"xvfb-{width}x{height}.log")
    room = await start_xvfb(width, height, log_dir / "xvfb-room.log")
    try:
        pattern = await start_pattern(case.content, settings.pattern_fps, xserver, log_dir)
        try:
            result = await run_chromium(case, xserver, pattern, settings, Stage(room, args.bitrate))
        finally:
            await pattern.aclose()
    finally:
        await room.aclose()
        await xserver.aclose()
    return {"chromium": chromium_version(), "case": case.name, "result": result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.browser",
        description="One run of the browser baseline (Chromium to Chromium over WebRTC); prints its result.",
    )
    parser.add_argument("--size", type=_size, default=(640, 360), help="screen size (default 640x360)")
    parser.add_argument("--content", choices=("static", "motion"), default="motion")
    parser.add_argument("--codec", choices=("h264", "vp8"), default="h264")
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement window (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds after the first frame (default 1)")
    parser.add_argument("--bitrate", type=int, default=DEFAULT_BITRATE, help="maxBitrate in bit/s")
    parser.add_argument(
        "--log-dir", type=Path, help="keep the logs and snapshots there (default: a temp dir)"
    )
    args = parser.parse_args(argv)

    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="coalesce-browser-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        report = asyncio.run(_run_once(args, log_dir))
    except BenchmarkError as exc:
        print(f"benchmark: {exc}\n# logs in {log_dir}", file=sys.stderr)
        return 2
    print(json.dumps(clean(report), indent=1))
    print(f"# logs in {log_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
