"""Fixtures for the room display tests: a headless Qt platform, fake frame sources, a window at a fixed size.

The platform is chosen through pytest-qt's ``qapp_args`` (``-platform offscreen``) rather than
``QT_QPA_PLATFORM``: a command-line argument reaches only the QApplication pytest-qt builds, never
``os.environ``, so neither other tests nor the subprocesses they start inherit it. A platform set explicitly
in the environment (a developer's ``QT_QPA_PLATFORM=xcb``, later the session ``xvfb`` fixture) wins.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from coalesce_receiver.models.room import RoomModel, SettingsOutcome, ShareView
from coalesce_receiver.ui.room_window import RoomWindow
from coalesce_testing.frames import FakeSource as FakeSource  # the tests import it from here

WINDOW_WIDTH = 800
WINDOW_HEIGHT = 450

RED = (220, 30, 30)
GREEN = (30, 200, 60)
BLUE = (40, 60, 230)
YELLOW = (240, 220, 40)
WHITE = (255, 255, 255)


@pytest.fixture(scope="session")
def qapp_args(pytestconfig: pytest.Config) -> list[str]:
    args = [str(pytestconfig.getini("qt_qapp_name"))]
    if not os.environ.get("QT_QPA_PLATFORM"):
        args += ["-platform", "offscreen"]
    return args


def make_share(
    share_id: str,
    sender_name: str,
    screen: tuple[int, int, int] | None = None,
    camera: tuple[int, int, int] | None = None,
) -> ShareView:
    share = ShareView(share_id, sender_name)
    if screen is not None:
        share.tracks["screen"] = FakeSource("screen", screen)
    if camera is not None:
        share.tracks["camera"] = FakeSource("camera", camera, size=(640, 480))
    return share


@pytest.fixture
def model() -> RoomModel:
    return RoomModel("Aurora", pin_required=True, addresses=["192.168.1.20", "fd00::7"], port=8443)


ADMIN_PASSWORD = "admin-pw"


class RecordingActions:
    """The room's actions as a list of what the window asked for; the admin password is ``admin-pw``.

    Given the model, layout actions are also applied to it, as the receiver does."""

    def __init__(self, model: RoomModel | None = None) -> None:
        self.model = model
        self.layout: list[tuple[str, ...]] = []
        self.decisions: list[tuple[str, bool]] = []
        self.dropped: list[str] = []
        self.pins: list[str | None] = []
        self.rotation: list[bool] = []
        self.locks: list[bool] = []

    def decide(self, share_id: str, approve: bool) -> None:
        self.decisions.append((share_id, approve))

    def drop_share(self, share_id: str) -> None:
        self.dropped.append(share_id)

    def spotlight(self, share_id: str | None) -> None:
        self.layout.append(("spotlight", share_id or ""))
        if self.model is not None:
            self.model.set_spotlight(share_id)

    def swap(self, first: str, second: str) -> None:
        self.layout.append(("swap", first, second))
        if self.model is not None:
            self.model.swap(first, second)

    def move_pip(self) -> None:
        self.layout.append(("pip",))
        if self.model is not None:
            self.model.move_pip()

    def mute_sound(self, muted: bool) -> None:
        self.layout.append(("mute", muted))
        if self.model is not None:
            self.model.set_sound_muted(muted)

    def set_sound_volume(self, volume: float) -> None:
        self.layout.append(("volume", volume))
        if self.model is not None:
            self.model.set_sound_volume(volume)

    def listen_to(self, share_id: str | None) -> None:
        self.layout.append(("listen", share_id or ""))
        if self.model is not None:
            self.model.listen_to(share_id)

    def change_settings(
        self,
        password: str,
        *,
        pin: str | None,
        rotate: bool,
        done: Callable[[SettingsOutcome], None],
        locked: bool = False,
    ) -> None:
        if password != ADMIN_PASSWORD:
            done(SettingsOutcome.WRONG_PASSWORD)
            return
        self.pins.append(pin)
        self.rotation.append(rotate)
        self.locks.append(locked)
        done(SettingsOutcome.APPLIED)


@pytest.fixture
def make_window(qtbot: QtBot) -> Iterator[Callable[..., RoomWindow]]:
    """Builds a shown RoomWindow of WINDOW_WIDTH x WINDOW_HEIGHT (closed by pytest-qt after the test)."""

    def make(
        model: RoomModel,
        *,
        actions: RecordingActions | None = None,
        pin: str | None = None,
    ) -> RoomWindow:
        window = RoomWindow(model, actions or RecordingActions(model), pin=pin)
        qtbot.addWidget(window)
        window.resize(WINDOW_WIDTH, WINDOW_HEIGHT)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield make


def pixel(window: RoomWindow, x: int, y: int) -> tuple[int, int, int]:
    """The colour the window paints at logical point (x, y)."""
    image = window.grab().toImage()
    ratio = image.width() / window.width()
    colour = QColor(image.pixel(round(x * ratio), round(y * ratio)))
    return colour.red(), colour.green(), colour.blue()
