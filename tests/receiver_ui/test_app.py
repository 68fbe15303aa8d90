"""run_room_app: returns when main ends, fails or is stopped, and leaves nothing running behind."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from coalesce_receiver.models.room import RoomModel
from coalesce_receiver.ui.app import run_room_app
from coalesce_receiver.ui.room_window import RoomWindow
from tests.receiver_ui.conftest import RecordingActions


def room_windows() -> list[RoomWindow]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, RoomWindow) and w.isVisible()]


class Probe:
    """What a main coroutine saw: its loop, its task, whether its cleanup ran to the end."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[object] | None = None
        self.window: RoomWindow | None = None
        self.cleaned_up = False

    def enter(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        windows = room_windows()
        self.window = windows[0] if len(windows) == 1 else None

    def assert_finished(self) -> None:
        assert self.loop is not None and self.loop.is_closed()
        assert self.task is not None and self.task.done()
        assert room_windows() == []


@pytest.fixture
def model() -> RoomModel:
    return RoomModel("Aurora", pin_required=False, addresses=["127.0.0.1"], port=8443)


def test_returns_0_when_main_finishes(qapp: QApplication, model: RoomModel) -> None:
    probe = Probe()
    done = asyncio.Event()

    async def main() -> None:
        probe.enter()
        asyncio.get_running_loop().call_later(0.05, done.set)
        await done.wait()
        probe.cleaned_up = True

    assert run_room_app(model, RecordingActions(), main, fullscreen=False) == 0

    assert probe.window is not None and probe.cleaned_up
    probe.assert_finished()
    assert qapp.quitOnLastWindowClosed()  # restored


def test_closing_the_window_cancels_main_and_waits_for_its_cleanup(
    qapp: QApplication, model: RoomModel
) -> None:
    probe = Probe()
    never = asyncio.Event()

    async def main() -> None:
        probe.enter()
        assert probe.window is not None
        asyncio.get_running_loop().call_later(0.05, probe.window.close)
        try:
            await never.wait()
        finally:
            await asyncio.sleep(0.05)  # cleanup that itself awaits
            probe.cleaned_up = True

    assert run_room_app(model, RecordingActions(), main, fullscreen=False) == 0

    assert probe.cleaned_up
    assert probe.task is not None and probe.task.cancelled()
    probe.assert_finished()


def test_ctrl_q_stops_the_app(qapp: QApplication, qtbot: QtBot, model: RoomModel) -> None:
    probe = Probe()

    async def main() -> None:
        probe.enter()
        assert probe.window is not None
        window = probe.window
        asyncio.get_running_loop().call_soon(
            qtbot.keyClick, window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier
        )
        try:
            await asyncio.Event().wait()
        finally:
            probe.cleaned_up = True

    assert run_room_app(model, RecordingActions(), main, fullscreen=True) == 0
    assert probe.cleaned_up
    probe.assert_finished()


def test_returns_1_and_logs_when_main_raises(
    qapp: QApplication, model: RoomModel, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe()

    async def main() -> None:
        probe.enter()
        await asyncio.sleep(0)
        raise OSError("port 8443 is taken")

    with caplog.at_level(logging.ERROR, logger="coalesce_receiver.ui.app"):
        assert run_room_app(model, RecordingActions(), main, fullscreen=False) == 1

    assert "port 8443 is taken" in caplog.text
    probe.assert_finished()


def test_sigint_cancels_main_and_returns_0(qapp: QApplication, model: RoomModel) -> None:
    probe = Probe()
    previous = signal.getsignal(signal.SIGINT)

    async def main() -> None:
        probe.enter()
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        try:
            await asyncio.Event().wait()
        finally:
            probe.cleaned_up = True

    assert run_room_app(model, RecordingActions(), main, fullscreen=False) == 0

    assert probe.cleaned_up
    probe.assert_finished()
    assert signal.getsignal(signal.SIGINT) is previous


def test_a_second_sigint_interrupts_a_stuck_cleanup(qapp: QApplication, model: RoomModel) -> None:
    probe = Probe()
    stages: list[str] = []

    async def main() -> None:
        probe.enter()
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stages.append("cleanup")
            loop.call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
            try:
                await asyncio.Event().wait()  # a cleanup that would never end
            except asyncio.CancelledError:
                stages.append("interrupted")
                raise

    assert run_room_app(model, RecordingActions(), main, fullscreen=False) == 0

    assert stages == ["cleanup", "interrupted"]
    probe.assert_finished()


def test_qt_quitting_under_the_loop_still_cleans_up(qapp: QApplication, model: RoomModel) -> None:
    probe = Probe()

    async def main() -> None:
        probe.enter()
        asyncio.get_running_loop().call_later(0.05, qapp.quit)
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.02)
            probe.cleaned_up = True

    assert run_room_app(model, RecordingActions(), main, fullscreen=False) == 0

    assert probe.cleaned_up
    probe.assert_finished()


def test_tasks_left_behind_by_main_are_cancelled(
    qapp: QApplication, model: RoomModel, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe()
    stray: list[asyncio.Task[bool]] = []

    async def main() -> None:
        probe.enter()
        stray.append(asyncio.get_running_loop().create_task(asyncio.Event().wait()))
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="coalesce_receiver.ui.app"):
        assert run_room_app(model, RecordingActions(), main, fullscreen=False) == 0

    assert stray[0].cancelled()
    assert "still running" in caplog.text
    probe.assert_finished()


def test_the_window_shows_the_model_while_main_runs(qapp: QApplication, model: RoomModel) -> None:
    seen: list[bool] = []

    async def main() -> None:
        await asyncio.sleep(0)
        windows = room_windows()
        seen.append(len(windows) == 1 and windows[0].model is model and windows[0].isFullScreen())

    assert run_room_app(model, RecordingActions(), main, pin="4821") == 0
    assert seen == [True]
