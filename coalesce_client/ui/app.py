"""The one place where Qt and asyncio meet in the sender: a QApplication, a qasync loop, the window, the
tray and the app core's main coroutine, started and stopped together.

How it runs
-----------
``qasync.QEventLoop`` is an asyncio loop whose ``run_forever`` is ``QApplication.exec()``: Qt events and
asyncio callbacks, timers and sockets are all served on the main thread, so model listeners (called from
the app core's tasks) may touch widgets directly. Because they run inside a task's step, views must never
start a nested event loop from a listener (``QDialog.exec()``, ``QMessageBox.exec()``): dialogs opened
from model changes use ``open()``.

The loop is run by :func:`coalesce_common.ui.qtloop.run_with_qt`, shared with the room display; its
docstring says how qasync is driven and why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import qasync
from PySide6.QtWidgets import QApplication

from coalesce_client.app import SenderConfig, SenderModels, SenderServices
from coalesce_client.ui.controller import SenderController
from coalesce_client.ui.images import app_icon
from coalesce_client.ui.main_window import MainWindow
from coalesce_client.ui.tray import SenderTray, tray_available
from coalesce_common.ui.qtloop import application, run_with_qt

logger = logging.getLogger(__name__)


@dataclass
class SenderApp:
    """The app's parts, wired: the models, the controller that changes them, the views that show them."""

    models: SenderModels
    controller: SenderController
    window: MainWindow
    tray: SenderTray | None

    @classmethod
    def build(
        cls,
        loop: asyncio.AbstractEventLoop,
        *,
        config: SenderConfig | None = None,
        services: SenderServices | None = None,
        settings_path: Path | None = None,
        with_tray: bool = True,
    ) -> SenderApp:
        models = SenderModels.create(settings_path)
        controller = SenderController(models, loop=loop, config=config, services=services)
        window = MainWindow(controller)
        tray = SenderTray(controller, window) if with_tray and tray_available() else None
        window.hide_to_tray = tray is not None
        return cls(models, controller, window, tray)

    def close(self) -> None:
        """Close the window and tray and stop observing the models (the controller is closed by its owner)."""
        if self.tray is not None:
            self.tray.detach()
        self.window.detach()
        self.window.hide()
        self.window.deleteLater()


def _application() -> QApplication:
    app = application("coalesce")
    app.setApplicationName("Coalesce")
    app.setApplicationDisplayName("Coalesce")
    app.setDesktopFileName("org.coalesce.coalesce")  # resources/linux/org.coalesce.coalesce.desktop
    app.setWindowIcon(app_icon())
    return app


def display_available() -> bool:
    """Whether Qt has somewhere to show a window (on Linux, an X or Wayland display or a chosen platform)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def run_sender_app(
    *,
    config: SenderConfig | None = None,
    services: SenderServices | None = None,
    settings_path: Path | None = None,
) -> int:
    """Show the sender's window and run until it is closed, Ctrl+Q, the tray's Quit, or SIGINT/SIGTERM.

    A share in progress is stopped cleanly first (the receiver is told). Returns 0 then, 1 when the
    controller fails (logged), 2 when there is no display. Call from the main thread with no asyncio loop
    running; the QApplication is reused if one exists.
    """
    if not display_available():
        print(
            "coalesce: no display found (DISPLAY is not set). From a terminal, share with "
            "`coalesce share --to HOST:PORT`; `coalesce --help` lists the commands.",
            file=sys.stderr,
        )
        return 2
    app = _application()
    loop = qasync.QEventLoop(app)
    sender = SenderApp.build(loop, config=config, services=services, settings_path=settings_path)
    return run_with_qt(
        app,
        loop,
        sender.controller.run,
        closed=sender.window.closed,
        show=sender.window.show,
        teardown=sender.close,
        label="sender",
    )
