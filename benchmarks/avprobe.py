"""Where and when a flash shows on a screen and a click sounds on an output: the lip-sync benchmark's eyes
and ears.

Run by :mod:`benchmarks.lipsync` as ``python -m benchmarks.avprobe --display :N --monitor SINK.monitor``
with ``PULSE_SERVER`` set to the PulseAudio server whose sink it listens to. It prints ``{"ready": true}``
once it can grab the screen and the recording delivers sound, then answers JSON-line commands:

- ``{"cmd": "begin", "rect": [x, y, w, h]}``: start looking at the middle of ``rect`` (where the picture
  of the flash pattern is shown) and keep what the output plays from now on.
- ``{"cmd": "end"}``: stop; answers ``{"flashes": [t, ...], "clicks": [t, ...]}``, the moments (monotonic
  seconds) each flash appeared and each click began.

Eyes: a thread grabs 16 x 16 pixels at the middle of the rect :data:`GRAB_RATE` times a second (mss; the
grab's time is the middle of its round trip) and a flash begins halfway between the last dark grab and
the first light one.

Ears: ``parec`` of the sink's monitor, in 5 ms fragments. A null sink renders ahead in blocks as long as
the shortest latency any of its clients asks for, and its monitor is one of those clients: asking for
5 ms keeps every sample within 5 ms of the moment the sink plays it, whatever latency the player of that
sink asked for (the room's speaker asks for 40 ms). A sample's moment is then the recording's start on
the monotonic clock plus its index over the rate (the null sink keeps the system clock), the start being
the earliest that every fragment's arrival allows. A click begins at the first sample above
:data:`CLICK_LEVEL` after :data:`QUIET_SECONDS` below it.

The probe at the source and the probe at the room work alike, so what either way of timing adds is the
same at both ends and drops out of the offsets :mod:`benchmarks.lipsync` reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import mss
import numpy as np

from benchmarks.procs import commands, emit

RATE = 48_000
GRAB_RATE = 250.0
GRAB_SIDE = 16
LIGHT = 128
CLICK_LEVEL = 4_000
"""Of 32,767: the click is 24,500 at the source; silence between clicks is 0, Opus noise far below this."""
QUIET_SECONDS = 0.3
FRAGMENT = RATE // 200 * 2  # 5 ms of mono s16


def flash_onsets(
    times: Sequence[float], levels: Sequence[float], quiet: float = QUIET_SECONDS
) -> list[float]:
    """The moments the picture turned light: halfway between the last dark grab and the first light one,
    at most one per ``quiet`` seconds (a flash's own flicker is not a second flash)."""
    onsets: list[float] = []
    for index in range(1, len(levels)):
        if levels[index - 1] < LIGHT <= levels[index]:
            at = (times[index - 1] + times[index]) / 2
            if not onsets or at - onsets[-1] >= quiet:
                onsets.append(at)
    return onsets


def click_onsets(samples: np.ndarray, start: float, quiet: float = QUIET_SECONDS) -> list[float]:
    """The moments clicks begin in mono ``samples`` whose first plays at ``start`` (monotonic seconds)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) >= CLICK_LEVEL)
    onsets: list[float] = []
    previous: float = -np.inf
    for index in loud:
        if (index - previous) / RATE >= quiet:
            onsets.append(start + float(index) / RATE)
        previous = float(index)
    return onsets


def recording_start(arrivals: Sequence[tuple[float, int]]) -> float:
    """When the recording's first sample played, from ``(arrival time, samples received by then)`` per
    fragment: no sample plays after it arrives, and the tightest of those bounds is the one kept."""
    return min(at - count / RATE for at, count in arrivals)


class Eyes:
    """Grabs the middle of a rect at :data:`GRAB_RATE` on a fixed schedule, in a thread."""

    def __init__(self, display: str) -> None:
        self._display = display
        self.times: list[float] = []
        self.levels: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with mss.mss(display=display) as grabber:
            monitor = grabber.monitors[0]
            self.screen = (monitor["width"], monitor["height"])

    def begin(self, rect: Sequence[int]) -> None:
        x, y, w, h = rect
        region = {
            "left": x + w // 2 - GRAB_SIDE // 2,
            "top": y + h // 2 - GRAB_SIDE // 2,
            "width": GRAB_SIDE,
            "height": GRAB_SIDE,
        }
        self._thread = threading.Thread(target=self._grab, args=(region,), name="eyes", daemon=True)
        self._thread.start()

    def _grab(self, region: dict[str, int]) -> None:
        with mss.mss(display=self._display) as grabber:
            due = time.monotonic()
            while not self._stop.is_set():
                before = time.monotonic()
                shot = np.asarray(grabber.grab(region))
                after = time.monotonic()
                self.times.append((before + after) / 2)
                self.levels.append(float(shot[:, :, :3].mean()))
                due += 1 / GRAB_RATE
                self._stop.wait(max(0.0, due - time.monotonic()))

    def end(self) -> list[float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        return flash_onsets(self.times, self.levels)


class Ears:
    """``parec`` of a monitor from now on, each fragment's arrival noted, in a thread."""

    def __init__(self, monitor: str) -> None:
        parec = shutil.which("parec")
        if parec is None:
            raise SystemExit("parec is not installed (bash scripts/setup.sh installs pulseaudio-utils)")
        self._process = subprocess.Popen(
            [parec, f"--device={monitor}", "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1",
             "--latency-msec=5"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        self._chunks: list[bytes] = []
        self._arrivals: list[tuple[float, int]] = []
        self._keep = threading.Event()
        self.flowing = threading.Event()
        """Set once the recording delivers sound: until then the server has not started the stream."""
        self._received = 0
        self._thread = threading.Thread(target=self._read, name="ears", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        while chunk := self._process.stdout.read1(FRAGMENT):  # type: ignore[attr-defined]
            now = time.monotonic()
            self.flowing.set()
            if not self._keep.is_set():
                continue
            self._chunks.append(chunk)
            self._received += len(chunk)
            if self._received % 2 == 0:
                self._arrivals.append((now, self._received // 2))

    def begin(self) -> None:
        self._keep.set()

    def end(self) -> list[float]:
        self._process.terminate()
        self._thread.join(5.0)
        self._process.wait(5)
        if not self._arrivals:
            return []
        data = b"".join(self._chunks)
        samples = np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16)
        return click_onsets(samples, recording_start(self._arrivals))


async def serve(args: argparse.Namespace) -> None:
    eyes = Eyes(args.display)
    ears = Ears(args.monitor)
    if not await asyncio.to_thread(ears.flowing.wait, 10.0):
        emit({"error": f"the recording of {args.monitor} delivered nothing in 10 s"})
        return
    emit({"ready": True, "screen": list(eyes.screen)})
    stdin = await commands()
    while line := await stdin.readline():
        request = json.loads(line)
        if request["cmd"] == "begin":
            eyes.begin(request.get("rect") or [0, 0, *eyes.screen])
            ears.begin()
            emit({"ok": True})
        elif request["cmd"] == "end":
            flashes = await asyncio.to_thread(eyes.end)
            clicks = await asyncio.to_thread(ears.end)
            emit({"flashes": flashes, "clicks": clicks})
        else:
            emit({"error": f"unknown command {request['cmd']!r}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--display", required=True)
    parser.add_argument("--monitor", required=True, help="the monitor source to record (SINK.monitor)")
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
