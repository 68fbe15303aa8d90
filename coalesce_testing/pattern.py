"""The window every screen pattern is painted in: frameless, full screen, on top, without a cursor.

A pattern (the capture tests' quadrants, the benchmark's text page or moving picture, the demo's clock)
subclasses :class:`PatternWindow`, paints in ``paintEvent`` and calls :meth:`PatternWindow.painted` at its
end. The first time a paint covers the whole screen, the window prints ``ready`` on stdout once the frame
has been flushed to the X server, which is what the parent waits for. :func:`run` shows it and runs Qt
until stdin closes (the parent is gone, so a pattern never outlives its test run) or SIGTERM.

Run on the real xcb platform: ``DISPLAY`` set to an Xvfb and ``QT_QPA_PLATFORM=xcb``.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
from collections.abc import Callable

from PySide6.QtCore import QSocketNotifier, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QWidget

SIGNAL_POLL_MS = 200
"""Qt's loop runs no Python code while idle; a timer this often lets the SIGTERM handler run."""


class PatternWindow(QWidget):
    def __init__(self) -> None:
        super().__init__(
            None,
            Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.X11BypassWindowManagerHint,
        )
        self.setCursor(Qt.CursorShape.BlankCursor)
        self.announced = False

    def shown(self) -> None:
        """Called once the window has its full-screen geometry: the place to size what it paints."""

    def painted(self) -> None:
        """Call at the end of ``paintEvent``: says ``ready`` after the first paint of the whole screen."""
        if not self.announced and self._fills_screen():
            self.announced = True
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


def run(make_window: Callable[[], PatternWindow]) -> int:
    """Show ``make_window()`` over the whole primary screen and run Qt until stdin closes or SIGTERM."""
    app = QApplication(sys.argv[:1])
    window = make_window()
    window.setGeometry(app.primaryScreen().geometry())
    window.showFullScreen()
    window.shown()
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    wake = QTimer(app)
    wake.start(SIGNAL_POLL_MS)
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        stdin_watch = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read, app)

        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):
                app.quit()

        stdin_watch.activated.connect(on_stdin)
    return app.exec()
