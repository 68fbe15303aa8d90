"""Something worth sharing on the demo's virtual screen: a full-screen window with a title, colour bars,
a running clock and a moving square, so every captured frame differs and a snapshot shows it is live.

Started by scripts/demo.sh on its own Xvfb (QT_QPA_PLATFORM=xcb, the checkout on PYTHONPATH). Prints
``ready`` once the first frame has been painted, and exits when its stdin pipe closes or on SIGTERM
(:mod:`coalesce_testing.pattern`).
"""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QRect, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent

from coalesce_testing.pattern import PatternWindow, run

BARS = ("#ffffff", "#ffff00", "#00ffff", "#00ff00", "#ff00ff", "#ff0000", "#0000ff", "#000000")
FRAME_INTERVAL_MS = 33


class DemoPattern(PatternWindow):
    def __init__(self, caption: str) -> None:
        super().__init__()
        self._caption = caption
        self._started = time.monotonic()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.update)
        self._timer.start(FRAME_INTERVAL_MS)

    def paintEvent(self, event: QPaintEvent) -> None:
        width, height = self.width(), self.height()
        elapsed = time.monotonic() - self._started
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#1b2a3a"))

        bar_top, bar_height = height * 2 // 3, height // 6
        bar_width = width / len(BARS)
        for index, colour in enumerate(BARS):
            left = round(index * bar_width)
            painter.fillRect(
                QRect(left, bar_top, round((index + 1) * bar_width) - left, bar_height), QColor(colour)
            )

        side = height // 10
        travel = max(1, width - side)
        phase = (elapsed * 240) % (2 * travel)
        x = int(phase if phase < travel else 2 * travel - phase)
        painter.fillRect(QRect(x, bar_top - side - height // 40, side, side), QColor("#ffa500"))

        painter.setPen(QColor("#ffffff"))
        painter.setFont(QFont("Sans", max(12, height // 12), QFont.Weight.Bold))
        painter.drawText(
            QRect(0, height // 12, width, height // 6), Qt.AlignmentFlag.AlignCenter, "Coalesce demo"
        )
        painter.setFont(QFont("Sans", max(8, height // 32)))
        painter.drawText(
            QRect(0, height // 4, width, height // 10), Qt.AlignmentFlag.AlignCenter, self._caption
        )
        painter.setFont(QFont("Monospace", max(8, height // 20)))
        clock = f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d}   t+{elapsed:6.2f} s"
        painter.drawText(QRect(0, height * 3 // 8, width, height // 8), Qt.AlignmentFlag.AlignCenter, clock)
        painter.end()

        self.painted()


def main(argv: list[str]) -> int:
    caption = argv[1] if len(argv) > 1 else "This screen is being shared over WebRTC"
    return run(lambda: DemoPattern(caption))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
