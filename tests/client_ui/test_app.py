"""run_sender_app: the window, the qasync loop and the app core start and stop together."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from coalesce_client.app import SenderConfig, SenderServices
from coalesce_client.ui.app import run_sender_app
from coalesce_client.ui.main_window import MainWindow
from tests.client_ui.conftest import no_screen


def sender_windows(qapp: QApplication) -> list[MainWindow]:
    return [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]


@pytest.fixture
def app_kwargs(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM") or "offscreen")
    return {
        "config": SenderConfig(discovery=False),
        "services": SenderServices(grab_monitors=no_screen, list_cameras=list, load_credentials=lambda: None),
        "settings_path": isolated_home / "config" / "coalesce" / "app.json",
    }


def later(qapp: QApplication, action: object) -> None:
    """Run ``action(window)`` once the app's window is up (the app's own loop runs by then)."""

    def attempt() -> None:
        windows = sender_windows(qapp)
        if windows and asyncio.get_event_loop().is_running():
            action(windows[0])  # type: ignore[operator]
        else:
            QTimer.singleShot(20, attempt)

    QTimer.singleShot(20, attempt)


def test_closing_the_window_quits_with_0(qapp: QApplication, app_kwargs: dict[str, object]) -> None:
    later(qapp, lambda window: window.close())
    assert run_sender_app(**app_kwargs) == 0  # type: ignore[arg-type]
    assert sender_windows(qapp) == []
    assert qapp.quitOnLastWindowClosed()  # restored


def test_ctrl_q_quits(qapp: QApplication, qtbot: QtBot, app_kwargs: dict[str, object]) -> None:
    def press_ctrl_q(window: MainWindow) -> None:
        # The shortcut only fires in the active window, and activation is asynchronous (slow on a busy
        # machine): press once the window says it is active.
        if not window.isActiveWindow():
            window.activateWindow()
            QTimer.singleShot(20, lambda: press_ctrl_q(window))
            return
        qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)

    later(qapp, press_ctrl_q)
    assert run_sender_app(**app_kwargs) == 0  # type: ignore[arg-type]
    assert sender_windows(qapp) == []


def test_sigterm_quits_and_restores_the_handler(qapp: QApplication, app_kwargs: dict[str, object]) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    later(qapp, lambda window: os.kill(os.getpid(), signal.SIGTERM))
    assert run_sender_app(**app_kwargs) == 0  # type: ignore[arg-type]
    assert signal.getsignal(signal.SIGTERM) is previous


def test_without_a_display_it_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert run_sender_app() == 2
    assert "coalesce share --to HOST:PORT" in capsys.readouterr().err


def test_readable_at_200_percent(tmp_path: Path) -> None:
    """At QT_SCALE_FACTOR=2 the window lays out in the same logical size and fits a 1440x900 desktop."""
    import subprocess
    import sys

    script = (
        "import asyncio, json, sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(['x', '-platform', 'offscreen'])\n"
        "from coalesce_client.ui.app import SenderApp\n"
        "from coalesce_client.app import SenderConfig\n"
        "sender = SenderApp.build(asyncio.new_event_loop(), config=SenderConfig(discovery=False),"
        " with_tray=False)\n"
        "w = sender.window; w.show(); app.processEvents()\n"
        "hint = w.minimumSizeHint()\n"
        "print(json.dumps({'ratio': w.devicePixelRatio(), 'size': [w.width(), w.height()],"
        " 'min': [hint.width(), hint.height()], 'pixels': [w.grab().width(), w.grab().height()]}))\n"
    )
    env = dict(os.environ, QT_SCALE_FACTOR="2", XDG_CONFIG_HOME=str(tmp_path))
    env.pop("QT_QPA_PLATFORM", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    import json

    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["ratio"] == 2
    width, height = measured["size"]
    assert measured["pixels"] == [2 * width, 2 * height]
    assert 420 <= width <= 1440 and 420 <= height <= 900
    assert measured["min"][0] <= 1440 and measured["min"][1] <= 900
