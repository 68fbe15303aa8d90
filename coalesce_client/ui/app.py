"""The one place where Qt and asyncio meet in the sender: a QApplication, a qasync loop, the window, the
tray and the controller's main coroutine, started and stopped together.

How it runs
-----------
``qasync.QEventLoop`` is an asyncio loop whose ``run_forever`` is ``QApplication.exec()``: Qt events and
asyncio callbacks, timers and sockets are all served on the main thread, so model listeners (called from
controller tasks) may touch widgets directly. Because they run inside a task's step, views must never
start a nested event loop from a listener (``QDialog.exec()``, ``QMessageBox.exec()``): dialogs opened
from model changes use ``open()``.

As on the receiver (``coalesce_receiver.ui.app``, which the layer contracts keep us from importing), the
loop is built here and driven with ``run_until_complete`` on :meth:`SenderController.run` rather than
with ``qasync.run``:

* SIGINT/SIGTERM go through ``loop.add_signal_handler`` (asyncio's self-pipe is a Qt socket notifier, so
  the signal wakes Qt at once) and cancel the main task; a second one interrupts its cleanup. Where that
  API is missing (Windows), ``signal.signal`` plus a 200 ms Qt timer does the same, more slowly.
* ``quitOnLastWindowClosed`` is off while we run: the window may be hidden to the tray while sharing, and
  closing it for good must cancel the main task and let it end the share (telling the receiver), not stop
  Qt's loop under it. Anything else that quits Qt (``QApplication.quit()``, a session logout) is caught on
  ``aboutToQuit``: we request a stop and serve events until the cleanup is done.
* After the main task, leftover tasks are cancelled and awaited, async generators and the default
  executor (the capture and thumbnail threads' pool) are shut down, and the loop is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import qasync
from PySide6.QtCore import QEventLoop as QtEventLoop
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from coalesce_client.ui.controller import ControllerConfig, SenderController, SenderModels, SenderServices
from coalesce_client.ui.images import app_icon
from coalesce_client.ui.main_window import MainWindow
from coalesce_client.ui.tray import SenderTray, tray_available

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SIGNAL_POLL_MS = 200


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
        config: ControllerConfig | None = None,
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


class _MainSession:
    """Runs ``main`` as a task; stopping means cancelling it and waiting for its cleanup."""

    def __init__(self, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._main = main
        self._task: asyncio.Task[None] | None = None
        self._stop_reason: str | None = None

    def request_stop(self, reason: str, *, force: bool = False) -> None:
        if self._task is not None and self._task.done():
            return
        if self._stop_reason is None:
            logger.info("Quitting: %s", reason)
            self._stop_reason = reason
        elif not force:
            return
        else:
            logger.warning("Quitting without waiting for cleanup: %s", reason)
        if self._task is not None:
            self._task.cancel()

    def on_signal(self, signum: int) -> None:
        self.request_stop(f"received {signal.Signals(signum).name}", force=self._stop_reason is not None)

    async def run(self) -> int:
        """0 when main returns or is stopped on request, 1 when it fails."""
        task = asyncio.get_running_loop().create_task(self._main(), name="coalesce-sender-main")
        self._task = task
        if self._stop_reason is not None:
            task.cancel()
        await asyncio.wait({task})
        if task.cancelled():
            if self._stop_reason is not None:
                return 0
            logger.error("The sender's main task was cancelled without a request to stop")
            return 1
        exc = task.exception()
        if exc is not None:
            logger.error("The sender's main task failed", exc_info=exc)
            return 1
        return 0


class _LoopRunner:
    """Runs awaitables on the qasync loop to the end, even when Qt's loop is quit under them."""

    def __init__(
        self, app: QApplication, loop: asyncio.AbstractEventLoop, on_quit: Callable[[], None]
    ) -> None:
        self._app = app
        self._loop = loop
        self._on_quit = on_quit
        self._current: asyncio.Task[Any] | None = None
        app.aboutToQuit.connect(self._finish_before_quitting)

    def run(self, awaitable: Coroutine[Any, Any, _T]) -> _T:
        task = self._loop.create_task(awaitable)
        self._current = task
        try:
            result: _T = self._loop.run_until_complete(task)
        finally:
            self._current = None
        return result

    def close(self) -> None:
        self._app.aboutToQuit.disconnect(self._finish_before_quitting)

    def _finish_before_quitting(self) -> None:
        task = self._current
        if task is None or task.done():
            return  # qasync's own stop once the awaited task is done
        self._on_quit()
        while not task.done():
            self._app.processEvents(QtEventLoop.ProcessEventsFlag.WaitForMoreEvents)


class _SignalHandlers:
    """SIGINT/SIGTERM → ``session.on_signal`` while the loop runs; the previous handlers come back after."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: _MainSession) -> None:
        self._loop = loop
        self._session = session
        self._via_loop: list[signal.Signals] = []
        self._previous: dict[signal.Signals, Any] = {}
        self._poll: QTimer | None = None

    def install(self) -> None:
        for sig in _STOP_SIGNALS:
            previous = signal.getsignal(sig)
            try:
                self._loop.add_signal_handler(sig, self._session.on_signal, sig)
            except NotImplementedError:
                self._install_fallback(sig, previous)
            except (RuntimeError, ValueError) as exc:
                logger.debug("Not handling %s (not the main thread?): %s", sig.name, exc)
            else:
                self._previous[sig] = previous
                self._via_loop.append(sig)

    def _install_fallback(self, sig: signal.Signals, previous: Any) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self._loop.call_soon_threadsafe(self._session.on_signal, signum)

        try:
            signal.signal(sig, handler)
        except (ValueError, OSError) as exc:
            logger.debug("Not handling %s: %s", sig.name, exc)
            return
        self._previous[sig] = previous
        if self._poll is None:
            # Python runs signal handlers only between bytecodes; give it some while Qt idles in C++.
            self._poll = QTimer()
            self._poll.timeout.connect(lambda: None)
            self._poll.start(_SIGNAL_POLL_MS)

    def remove(self) -> None:
        for sig in self._via_loop:
            self._loop.remove_signal_handler(sig)
        self._via_loop.clear()
        for sig, previous in self._previous.items():
            if previous is not None:
                signal.signal(sig, previous)
        self._previous.clear()
        if self._poll is not None:
            self._poll.stop()
            self._poll = None


async def _gather_quietly(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop, runner: _LoopRunner) -> None:
    leftovers = asyncio.all_tasks(loop)
    if not leftovers:
        return
    logger.debug("Cancelling %d task(s) left after the main task", len(leftovers))
    for task in leftovers:
        task.cancel()
    runner.run(_gather_quietly(leftovers))


_created_applications: list[QApplication] = []
"""The QApplication we made, if any: Qt allows one per process and it must outlive every widget."""


def _application() -> QApplication:
    existing = QApplication.instance()
    if existing is None:
        app = QApplication([sys.argv[0] if sys.argv and sys.argv[0] else "coalesce"])
        _created_applications.append(app)
    elif isinstance(existing, QApplication):
        app = existing
    else:
        raise RuntimeError("A QCoreApplication already exists; the sender's window needs a QApplication")
    app.setApplicationName("Coalesce")
    app.setApplicationDisplayName("Coalesce")
    app.setDesktopFileName("coalesce")
    app.setWindowIcon(app_icon())
    return app


_retired_loops: list[asyncio.AbstractEventLoop] = []


def _retire(loop: asyncio.AbstractEventLoop) -> None:
    """Make a closed qasync loop harmless for the rest of the process.

    qasync's ``close()`` leaves its timer object's pending Qt timers registered (they are killed only when
    next due). If Python then frees that QObject, a later timer event can reach freed memory and crash
    the process (seen when the app runs twice in one process, as tests do). Kill them and keep the loop.
    """
    timer = getattr(loop, "_timer", None)
    callbacks = getattr(timer, "_SimpleTimer__callbacks", None)
    if timer is not None and isinstance(callbacks, dict):
        for timer_id in list(callbacks):
            timer.killTimer(timer_id)
    _retired_loops.append(loop)


def display_available() -> bool:
    """Whether Qt has somewhere to show a window (on Linux, an X or Wayland display or a chosen platform)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def run_sender_app(
    *,
    config: ControllerConfig | None = None,
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
    asyncio.set_event_loop(loop)
    sender = SenderApp.build(loop, config=config, services=services, settings_path=settings_path)
    session = _MainSession(sender.controller.run)
    signals = _SignalHandlers(loop, session)

    def on_window_closed() -> None:
        session.request_stop("the window was closed")

    def on_qt_quit() -> None:
        session.request_stop("the Qt application is quitting")

    runner = _LoopRunner(app, loop, on_qt_quit)
    quit_on_last_window_closed = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    sender.window.closed.connect(on_window_closed)
    try:
        signals.install()
        sender.window.show()
        return runner.run(session.run())
    finally:
        sender.window.closed.disconnect(on_window_closed)
        sender.close()
        try:
            _cancel_leftover_tasks(loop, runner)
            runner.run(loop.shutdown_asyncgens())
            runner.run(loop.shutdown_default_executor())
        finally:
            runner.close()
            signals.remove()
            asyncio.set_event_loop(None)
            loop.close()
            _retire(loop)
            app.setQuitOnLastWindowClosed(quit_on_last_window_closed)
