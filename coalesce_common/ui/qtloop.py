"""The one place where Qt and asyncio meet, for both apps: a qasync loop, the app's window and its main
coroutine, started and stopped together.

How qasync is driven, and why
-----------------------------
``qasync.QEventLoop`` is an asyncio loop whose ``run_forever`` is ``QApplication.exec()``: Qt events, asyncio
callbacks, timers and sockets are all served by Qt's dispatcher on the main thread. So windows, models and
every asyncio task share one thread, and model listeners may touch widgets directly. Because listeners run
inside a task's step, views must never start a nested event loop from one (``QDialog.exec()``): dialogs
opened from model changes use ``open()`` or ``show()``.

We build the loop ourselves and call ``loop.run_until_complete`` on a supervisor coroutine rather than use
``qasync.run``. On Python 3.11 ``qasync.run`` swaps the process-wide event loop policy and calls
``asyncio.run``, whose Runner handles SIGINT with ``signal.signal`` only: Python runs that handler when Qt
next happens to call into Python, SIGTERM is not handled at all, and the caller gets ``KeyboardInterrupt``
rather than an exit code. Nor does it survive Qt's loop being quit under it (``RuntimeError: Event loop
stopped before Future completed``). Instead:

* SIGINT/SIGTERM go through ``loop.add_signal_handler``: asyncio's self-pipe is watched by a
  ``QSocketNotifier``, so the signal wakes Qt's dispatcher at once. A second SIGINT during cleanup interrupts
  the cleanup. Where that API is missing (Windows), ``signal.signal`` plus a 200 ms Qt timer that lets Python
  run pending handlers does the same job, more slowly.
* ``QApplication.quitOnLastWindowClosed`` is turned off while we run: closing the window (or hiding the
  sender's to the tray) must cancel the main task and let it clean up, not stop Qt's loop under it. Anything
  else that quits Qt's loop (``QApplication.quit()``, a session logout, Cmd+Q) would make qasync give up
  mid-cleanup (see :class:`_LoopRunner`), so on ``aboutToQuit`` we request a stop and serve events until
  cleanup is done.
* After the main task ends, tasks it left behind are cancelled and awaited, async generators and the default
  executor are shut down, the loop is closed, and its leftover Qt timers are killed (:func:`_retire`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

import qasync
from PySide6.QtCore import QEventLoop as QtEventLoop
from PySide6.QtCore import QTimer, SignalInstance
from PySide6.QtWidgets import QApplication

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SIGNAL_POLL_MS = 200


class _MainSession:
    """Runs ``main`` as a task; stopping it means cancelling it and waiting for its cleanup."""

    def __init__(self, main: Callable[[], Coroutine[Any, Any, None]], label: str) -> None:
        self._main = main
        self._label = label
        self._task: asyncio.Task[None] | None = None
        self._stop_reason: str | None = None

    def request_stop(self, reason: str, *, force: bool = False) -> None:
        """Cancel the main task (once; again only when ``force``d, which interrupts its cleanup)."""
        if self._task is not None and self._task.done():
            return
        if self._stop_reason is None:
            logger.info("Stopping the %s: %s", self._label, reason)
            self._stop_reason = reason
        elif force:
            logger.warning("Stopping the %s without waiting for cleanup: %s", self._label, reason)
        else:
            return
        if self._task is not None:
            self._task.cancel()

    def on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        self.request_stop(f"received {name}", force=self._stop_reason is not None)

    async def run(self) -> int:
        """Exit code: 0 when main returns or is stopped on request, 1 when it fails."""
        task = asyncio.get_running_loop().create_task(self._main(), name=f"coalesce-{self._label}-main")
        self._task = task
        if self._stop_reason is not None:
            task.cancel()
        await asyncio.wait({task})
        if task.cancelled():
            if self._stop_reason is not None:
                return 0
            logger.error("The %s's main task was cancelled without a request to stop", self._label)
            return 1
        exc = task.exception()
        if exc is not None:
            logger.error("The %s's main task failed", self._label, exc_info=exc)
            return 1
        return 0


class _LoopRunner:
    """Runs awaitables on the qasync loop to the end, even when Qt's loop is quit under them.

    qasync's ``run_until_complete`` is ``QApplication.exec()``: anything that quits Qt
    (``QApplication.quit()``, a session logout, Cmd+Q) returns from it early, after which qasync processes
    the remaining Qt events with no asyncio loop marked running, so a task step scheduled then fails with
    "no running event loop". Qt emits ``aboutToQuit`` before ``exec()`` returns, while asyncio still sees
    the loop running: there we ask the session to stop and keep serving events until the awaited task is
    done.
    """

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
            return  # qasync's own stop: it quits Qt's loop once the awaited task is done
        self._on_quit()
        while not task.done():
            self._app.processEvents(QtEventLoop.ProcessEventsFlag.WaitForMoreEvents)


class _SignalHandlers:
    """SIGINT/SIGTERM → ``session.on_signal`` for the life of the loop; previous handlers restored after."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: _MainSession) -> None:
        self._loop = loop
        self._session = session
        self._via_loop: list[signal.Signals] = []
        self._previous: dict[signal.Signals, Any] = {}
        self._poll: QTimer | None = None

    def install(self) -> None:
        for sig in _STOP_SIGNALS:
            try:
                previous = signal.getsignal(sig)
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


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop, runner: _LoopRunner) -> None:
    leftovers = asyncio.all_tasks(loop)
    if not leftovers:
        return
    logger.warning("Cancelling %d task(s) still running after the main task ended", len(leftovers))
    for task in leftovers:
        task.cancel()
    runner.run(_gather_quietly(leftovers))
    for task in leftovers:
        if not task.cancelled() and task.exception() is not None:
            logger.error("Task %r failed while being cancelled", task.get_name(), exc_info=task.exception())


async def _gather_quietly(tasks: set[asyncio.Task[Any]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


_created_applications: list[QApplication] = []
"""The QApplication we created, if any. Qt allows one per process and it must outlive every widget and
QObject (the window, qasync's timers), so once made it stays referenced, as pytest-qt does with its own."""


def application(program: str) -> QApplication:
    """The process's QApplication: the existing one, or a new one kept alive for the rest of the process."""
    existing = QApplication.instance()
    if existing is None:
        # Only the program name: the CLI's own flags are not Qt's to parse (QT_QPA_PLATFORM picks a platform).
        app = QApplication([sys.argv[0] if sys.argv and sys.argv[0] else program])
        _created_applications.append(app)
        return app
    if not isinstance(existing, QApplication):
        raise RuntimeError("A QCoreApplication already exists; a window needs a QApplication")
    return existing


_retired_loops: list[asyncio.AbstractEventLoop] = []


def _retire(loop: asyncio.AbstractEventLoop) -> None:
    """Make a closed qasync loop harmless for the rest of the process.

    qasync's ``close()`` leaves its timer object's pending Qt timers registered (they are killed only when
    next due). If Python then frees that QObject, a later timer event can reach freed memory and crash
    the process (seen when an app runs twice in one process, as tests do). Kill them and keep the loop.
    """
    timer = getattr(loop, "_timer", None)
    callbacks = getattr(timer, "_SimpleTimer__callbacks", None)
    if timer is not None and isinstance(callbacks, dict):
        for timer_id in list(callbacks):
            timer.killTimer(timer_id)
    _retired_loops.append(loop)


def run_with_qt(
    app: QApplication,
    loop: qasync.QEventLoop,
    main: Callable[[], Coroutine[Any, Any, None]],
    *,
    closed: SignalInstance,
    show: Callable[[], None],
    teardown: Callable[[], object],
    label: str,
) -> int:
    """Run ``main()`` on ``loop`` with the app's window up until main ends, the window emits ``closed``,
    Qt quits, or SIGINT/SIGTERM arrives; then cancel main, await its cleanup and close the loop.

    ``show`` shows the window once signals are handled; ``teardown`` closes it after main has ended.
    Returns 0 when main returns or is stopped on request, 1 when it fails (logged).
    """
    session = _MainSession(main, label)
    signals = _SignalHandlers(loop, session)

    def on_window_closed() -> None:
        session.request_stop(f"the {label} window was closed")

    def on_qt_quit() -> None:
        session.request_stop("the Qt application is quitting")

    runner = _LoopRunner(app, loop, on_qt_quit)
    quit_on_last_window_closed = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    closed.connect(on_window_closed)
    asyncio.set_event_loop(loop)
    try:
        signals.install()
        show()
        return runner.run(session.run())
    finally:
        closed.disconnect(on_window_closed)
        teardown()
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
