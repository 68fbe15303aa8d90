"""The lip-sync pattern: a black screen that flashes a white square and plays a click at the same moment.

Run as ``python -m benchmarks.flash [--seed N]`` with ``DISPLAY`` set to the senders' Xvfb,
``QT_QPA_PLATFORM=xcb`` and ``PULSE_SERVER`` set to the senders' PulseAudio server (whose default sink is
what the senders share). At a random interval of 1.0-1.6 s (random so that no sampling rate locks onto
it, and longer than any latency measured, so a flash seen at the room belongs to exactly one at the
source) it paints a centred white square for :data:`FLASH_SECONDS` and, on the same turn of the loop,
puts a click into its sound stream.

The sound stream is 5 ms blocks of silence played by a thread (:class:`ClickPlayer`), the click going
into the next block. How far apart the two really leave the laptop (the paint reaching X, the click
reaching the sink) is not assumed: :mod:`benchmarks.lipsync` measures it at the source, with the same
probes it uses at the room, and subtracts it per flash.

Prints ``ready`` once the first black frame has reached the X server; exits when stdin closes or on SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import threading
from typing import Any

import numpy as np
from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPaintEvent

from coalesce_testing.pattern import PatternWindow, run

RATE = 48_000
BLOCK = RATE // 200  # 5 ms
FLASH_SECONDS = 0.2
INTERVAL = (1.0, 1.6)
CLICK_HERTZ = 2_000.0
CLICK_SECONDS = 0.02


def click_samples() -> np.ndarray:
    """A 20 ms burst of 2 kHz at three quarters of full scale, faded in and out over 2 ms (mono float):
    loud and short enough to time to a millisecond, and a sound Opus keeps."""
    t = np.arange(int(RATE * CLICK_SECONDS)) / RATE
    burst = np.sin(2 * np.pi * CLICK_HERTZ * t) * 0.75
    fade = int(RATE * 0.002)
    ramp = np.linspace(0.0, 1.0, fade)
    burst[:fade] *= ramp
    burst[-fade:] *= ramp[::-1]
    return burst.astype(np.float32)


class ClickPlayer:
    """A steady stream of silence to the default output, with a click when asked.

    ``soundcard``'s player, 5 ms blocks: ``play`` returns once the server has room for the block, so the
    stream paces itself and holds about a block ahead (a pipe to ``pacat`` held 64 KiB, 0.68 s, of
    silence ahead of every click)."""

    def __init__(self) -> None:
        self._click = click_samples()
        self._pending: np.ndarray | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="clicks", daemon=True)
        self._thread.start()
        if not self._started.wait(10.0):
            raise SystemExit("the sound output did not open")

    def click(self) -> None:
        with self._lock:
            self._pending = self._click.copy()

    def _feed(self) -> None:
        soundcard: Any = importlib.import_module("soundcard")  # connects to the sound server on import
        with soundcard.default_speaker().player(samplerate=RATE, channels=1, blocksize=BLOCK) as player:
            self._started.set()
            while not self._stop.is_set():
                block = np.zeros(BLOCK, dtype=np.float32)
                with self._lock:
                    if self._pending is not None:
                        take = self._pending[:BLOCK]
                        block[: take.size] = take
                        self._pending = self._pending[BLOCK:] if self._pending.size > BLOCK else None
                player.play(block)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


class FlashPattern(PatternWindow):
    def __init__(self, player: ClickPlayer, seed: int) -> None:
        super().__init__()
        self._player = player
        self._random = random.Random(seed)
        self._lit = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._toggle)

    def shown(self) -> None:
        self._timer.start(int(self._random.uniform(*INTERVAL) * 1000))

    def _toggle(self) -> None:
        self._lit = not self._lit
        self.repaint()  # painted now, not on a later turn: the click goes out on this one
        if self._lit:
            self._player.click()
            self._timer.start(int(FLASH_SECONDS * 1000))
        else:
            self._timer.start(int((self._random.uniform(*INTERVAL) - FLASH_SECONDS) * 1000))

    def square(self) -> QRect:
        side = self.height() // 3
        return QRect((self.width() - side) // 2, (self.height() - side) // 2, side, side)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        if self._lit:
            painter.fillRect(self.square(), QColor(255, 255, 255))
        painter.end()
        self.painted()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=1, help="of the random intervals (default 1)")
    args = parser.parse_args(argv)
    player = ClickPlayer()
    try:
        return run(lambda: FlashPattern(player, args.seed))
    finally:
        player.close()


if __name__ == "__main__":
    sys.exit(main())
