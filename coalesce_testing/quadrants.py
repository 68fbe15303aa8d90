"""Four solid quadrants over the whole screen, for capture tests (the ``pattern_window`` fixture).

python -m coalesce_testing.quadrants [TOP_LEFT TOP_RIGHT BOTTOM_LEFT BOTTOM_RIGHT]   (colours as #rrggbb)
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QPainter, QPaintEvent

from coalesce_testing.pattern import PatternWindow, run

DEFAULT_COLOURS = ("#ff0000", "#00ff00", "#0000ff", "#ffffff")


class Quadrants(PatternWindow):
    def __init__(self, colours: tuple[QColor, QColor, QColor, QColor]) -> None:
        super().__init__()
        self._colours = colours

    def paintEvent(self, event: QPaintEvent) -> None:
        width, height = self.width(), self.height()
        half_w, half_h = width // 2, height // 2
        painter = QPainter(self)
        top_left, top_right, bottom_left, bottom_right = self._colours
        painter.fillRect(QRect(0, 0, half_w, half_h), top_left)
        painter.fillRect(QRect(half_w, 0, width - half_w, half_h), top_right)
        painter.fillRect(QRect(0, half_h, half_w, height - half_h), bottom_left)
        painter.fillRect(QRect(half_w, half_h, width - half_w, height - half_h), bottom_right)
        painter.end()
        self.painted()


def main(argv: list[str]) -> int:
    names = argv[1:] or list(DEFAULT_COLOURS)
    colours = [QColor(name) for name in names]
    if len(colours) != 4 or not all(colour.isValid() for colour in colours):
        print(f"{__doc__}\n(got {names})", file=sys.stderr)
        return 2
    return run(lambda: Quadrants((colours[0], colours[1], colours[2], colours[3])))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
