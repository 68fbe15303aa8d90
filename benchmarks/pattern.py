"""The benchmark's screen content: a full-screen Qt window repainted every frame with a timestamp strip.

Run as ``python -m benchmarks.pattern static|motion [--fps 60]`` with ``DISPLAY`` set to the benchmark's
Xvfb and ``QT_QPA_PLATFORM=xcb``. ``static`` is a page of text that never changes: only the strip is
repainted, as when someone presents slides or a document. ``motion`` pans a picture of soft colour
blobs, sharp shapes and text across the whole screen every frame, as video does. Either way the strip
(:mod:`benchmarks.timecode`) is painted last, with the time of painting and a frame counter.

Prints ``ready`` once the first full frame has reached the X server; exits when stdin closes (so it never
outlives the benchmark) or on SIGTERM.

With ``--frames-log PATH --background PATH`` it also records what :mod:`benchmarks.quality` needs to rebuild
any frame it painted: the picture it cuts every frame from (the text page, or the motion texture), saved
once as an RGB ``uint8`` array before the first frame, and one line per painted frame,
``counter timestamp_ms dx dy``: the strip's two values (as the strip shows them, wrapped) and the pan's
offset into the picture (``0 0`` for the static page). Each line is flushed as it is written, before the
frame reaches the X server, so a reader sees every frame that anyone can have seen.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QRect, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPixmap

from benchmarks import timecode
from coalesce_testing.pattern import PatternWindow, run

PAN_PIXELS_PER_SECOND = (240.0, 120.0)

TEXT_LINES = (
    "Quarterly review: wireless presentation latency",
    "",
    "1. Glass-to-glass latency is measured from the moment this page paints a frame",
    "   to the moment the receiver has decoded it, with a timestamp strip in the corner.",
    "2. Text must stay sharp: 11 pt body text, thin rules, and small print like this.",
    "3. def encode(frame): return [packet for packet in codec.encode(frame)]  # hot loop",
    "4. The quick brown fox jumps over the lazy dog. 0123456789 !@#$%^&*()_+-=[]{}",
    "5. Colour: red, green, blue, cyan, magenta, yellow stripes follow below.",
)


def _motion_texture(width: int, height: int, seed: int = 6) -> np.ndarray:
    """A picture that compresses like video: soft colour blobs with some hard edges and text on top (RGB)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 48), max(2, width // 48), 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        radius = int(rng.integers(height // 40, height // 8))
        cv2.circle(image, centre, radius, colour, thickness=int(rng.integers(2, 8)), lineType=cv2.LINE_AA)
    for row in range(0, height, max(24, height // 18)):
        cv2.putText(
            image,
            f"motion {row:05d} the quick brown fox",
            (int(rng.integers(0, max(1, width // 2))), row),
            cv2.FONT_HERSHEY_SIMPLEX,
            max(0.4, height / 1080),
            (255, 255, 255),
            max(1, height // 540),
            cv2.LINE_AA,
        )
    return np.ascontiguousarray(image)


def _to_qimage(rgb: np.ndarray) -> QImage:
    height, width = rgb.shape[:2]
    qimage = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return qimage.copy()  # detach from the numpy buffer


def _to_rgb(pixmap: QPixmap) -> np.ndarray:
    image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).copy()


class BenchmarkPattern(PatternWindow):
    def __init__(self, content: str, fps: float, frames_log: TextIO | None, background: Path | None) -> None:
        super().__init__()
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self._content = content
        self._period = 1.0 / fps
        self._counter = 0
        self._started = time.monotonic()
        self._next_due = self._started
        self._background: QPixmap | None = None
        self._geometry: timecode.StripGeometry | None = None
        self._frames_log = frames_log
        self._background_path = background
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    def _prepare(self) -> None:
        width, height = self.width(), self.height()
        self._geometry = timecode.strip_geometry(width, height)
        if self._content == "motion":
            self._background = QPixmap.fromImage(_to_qimage(_motion_texture(width, height)))
        else:
            self._background = self._text_page(width, height)
        if self._background_path is not None:
            np.save(self._background_path, _to_rgb(self._background))

    @staticmethod
    def _text_page(width: int, height: int) -> QPixmap:
        page = QPixmap(width, height)
        page.fill(QColor("#ffffff"))
        painter = QPainter(page)
        painter.setPen(QColor("#202020"))
        size = max(9, height // 48)
        painter.setFont(QFont("Sans", size))
        y = height // 6
        for _ in range(3):
            for line in TEXT_LINES:
                painter.drawText(width // 20, y, line)
                y += int(size * 1.9)
        stripes = ("#ff0000", "#00ff00", "#0000ff", "#00ffff", "#ff00ff", "#ffff00")
        stripe_width = width // (2 * len(stripes))
        for index, colour in enumerate(stripes):
            painter.fillRect(
                QRect(width // 2 + index * stripe_width, 16, stripe_width, height // 10), QColor(colour)
            )
        painter.end()
        return page

    def shown(self) -> None:
        self._prepare()
        self._timer.start(0)

    def _tick(self) -> None:
        geometry = self._geometry
        assert geometry is not None
        if self._content == "motion" or not self.announced:
            self.update()
        else:
            self.update(QRect(geometry.left, geometry.top, geometry.width, geometry.height))
        # A fixed schedule: a late frame is not followed by a burst to catch up.
        self._next_due = max(self._next_due + self._period, time.monotonic())
        self._timer.start(max(0, round((self._next_due - time.monotonic()) * 1000)))

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._background is None or self._geometry is None:
            return
        painter = QPainter(self)
        now = time.monotonic()
        dx = dy = 0
        if self._content == "motion":
            dx = int((now - self._started) * PAN_PIXELS_PER_SECOND[0]) % self.width()
            dy = int((now - self._started) * PAN_PIXELS_PER_SECOND[1]) % self.height()
            painter.drawTiledPixmap(self.rect(), self._background, QPoint(dx, dy))
        else:
            painter.drawPixmap(event.rect(), self._background, event.rect())
        counter = self._counter
        stamp = self._paint_strip(painter, self._geometry)
        painter.end()
        if self._frames_log is not None:
            wrapped = counter % timecode.COUNTER_MODULUS, stamp % timecode.TIMESTAMP_MODULUS
            self._frames_log.write(f"{wrapped[0]} {wrapped[1]} {dx} {dy}\n")
        self.painted()

    def _paint_strip(self, painter: QPainter, geometry: timecode.StripGeometry) -> int:
        """Paint the strip with the time of painting and the next counter; returns that time (ms)."""
        # The time is taken last, just before the strip is drawn; the frame reaches X right after paintEvent.
        stamp = int(time.monotonic() * 1000)
        cells = timecode.strip_cells(stamp, self._counter)
        self._counter += 1
        # One image per frame (a fillRect per cell would be 128 calls into Qt per frame).
        pixels = np.ascontiguousarray(cells.repeat(geometry.cell, axis=0).repeat(geometry.cell, axis=1))
        image = QImage(
            pixels.data, pixels.shape[1], pixels.shape[0], pixels.shape[1], QImage.Format.Format_Grayscale8
        )
        painter.drawImage(geometry.left, geometry.top, image)
        return stamp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("content", choices=("static", "motion"))
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument(
        "--frames-log", type=Path, help="write 'counter timestamp_ms dx dy' here for every painted frame"
    )
    parser.add_argument(
        "--background", type=Path, help="save the picture every frame is cut from here (RGB uint8, .npy)"
    )
    args = parser.parse_args(argv)
    if (args.frames_log is None) != (args.background is None):
        parser.error("--frames-log and --background go together: a frame is rebuilt from both")
    if args.frames_log is None:
        return run(lambda: BenchmarkPattern(args.content, args.fps, None, None))
    # Line-buffered: each frame's line is out before the frame reaches X.
    with args.frames_log.open("w", buffering=1) as frames_log:
        return run(lambda: BenchmarkPattern(args.content, args.fps, frames_log, args.background))


if __name__ == "__main__":
    sys.exit(main())
