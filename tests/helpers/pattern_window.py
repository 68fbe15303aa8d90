"""A frameless full-screen Qt window painted with four solid quadrants, for capture tests.

Run by the ``pattern_window`` fixture in tests/conftest.py on the real xcb platform (DISPLAY set to the
fixture's Xvfb). Prints ``ready`` on stdout once the window is mapped at full-screen size and its first
full paint has been flushed to the X server. Exits when its stdin pipe closes, so it never outlives its
test run.

Usage: pattern_window.py [TOP_LEFT TOP_RIGHT BOTTOM_LEFT BOTTOM_RIGHT]   (colours as #rrggbb)
"""

from __future__ import annotations

import os
import stat
import sys

from PySide6.QtCore import QRect, QSocketNotifier, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPaintEvent
from PySide6.QtWidgets import QApplication, QWidget

DEFAULT_COLOURS = ("#ff0000", "#00ff00", "#0000ff", "#ffffff")


class PatternWindow(QWidget):
    def __init__(self, colours: tuple[QColor, QColor, QColor, QColor]) -> None:
        super().__init__(
            None,
            Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.X11BypassWindowManagerHint,
        )
        self._colours = colours
        self._announced = False
        self.setCursor(Qt.CursorShape.BlankCursor)

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
        if not self._announced and self._fills_screen():
            self._announced = True
            # The backing store is flushed to X after paintEvent returns; announce on the next loop turn.
            QTimer.singleShot(0, self._announce)

    def _fills_screen(self) -> bool:
        screen = self.screen()
        handle = self.windowHandle()
        return (
            screen is not None
            and handle is not None
            and handle.isExposed()
            and self.geometry() == screen.geometry()
        )

    def _announce(self) -> None:
        QGuiApplication.sync()
        print("ready", flush=True)


def main(argv: list[str]) -> int:
    names = argv[1:] or list(DEFAULT_COLOURS)
    if len(names) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    colours = tuple(QColor(name) for name in names)
    if not all(colour.isValid() for colour in colours):
        print(f"invalid colour in {names}", file=sys.stderr)
        return 2

    app = QApplication(argv[:1])
    window = PatternWindow((colours[0], colours[1], colours[2], colours[3]))
    screen = app.primaryScreen()
    window.setGeometry(screen.geometry())
    window.showFullScreen()

    # When started with a pipe as stdin, the pipe closing means the parent is gone: quit with it.
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        stdin_watch = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read, app)

        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):
                app.quit()

        stdin_watch.activated.connect(on_stdin)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
