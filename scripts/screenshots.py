"""Render the apps' main screens into ``docs/screenshots/*.png``, on a private Xvfb.

    .venv/bin/python scripts/screenshots.py                 # every screen, at 100 %
    .venv/bin/python scripts/screenshots.py --scale 2       # at 200 % (files end in @2x.png)
    .venv/bin/python scripts/screenshots.py sender-pin      # only the screens named

The script starts its own Xvfb (a desktop of 1600x1000 with a painted "presentation" as wallpaper, so
screen thumbnails show something), a real headless receiver on loopback with a PIN, and drives the real
app through its widgets, as a person would. Nothing touches your settings: config, data and cache folders
and the keyring are temporary.

Adding screens: write an ``async def`` that takes the :class:`Studio` and returns the widget (or
:class:`~PySide6.QtCore.QRect` of the screen) to capture, and decorate it with ``@screen("file-name")``.
The receiver's screens belong in the section marked below.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # at run time these load after the environment is set up (see main)
    from PySide6.QtCore import QRect
    from PySide6.QtWidgets import QWidget

    from coalesce_client.ui.app import SenderApp
    from coalesce_client.ui.pin_dialog import PinDialog
    from coalesce_common.discovery import ReceiverInfo
    from coalesce_receiver.models.room import SettingsOutcome
    from coalesce_receiver.services.receiver import Receiver
    from coalesce_receiver.ui.room_window import RoomWindow
    from coalesce_testing.frames import FakeSource

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # coalesce_testing comes from the checkout

DESKTOP = (1600, 1000)
PIN = "4821"

Capture: TypeAlias = "QWidget | QRect"  # a window to grab, or a rectangle of the screen
ScreenFunction = Callable[["Studio"], Awaitable[Capture]]
SCREENS: dict[str, ScreenFunction] = {}


def screen(name: str) -> Callable[[ScreenFunction], ScreenFunction]:
    """Register a screen to render into ``<name>.png``."""

    def register(function: ScreenFunction) -> ScreenFunction:
        SCREENS[name] = function
        return function

    return register


# --------------------------------------------------------------------------------------------- studio


@dataclass
class Studio:
    """What screen functions get: the loop, a temporary home, a receiver, helpers to wait and to place."""

    loop: asyncio.AbstractEventLoop
    home: Path
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _receiver: Receiver | None = None
    _camera: Path | None = None

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110 - polling UI state nothing signals, with a deadline
                await asyncio.sleep(0.05)

    async def settle(self, seconds: float = 0.4) -> None:
        """Let Qt lay out and paint (no condition to wait for: it is a picture)."""
        await asyncio.sleep(seconds)

    async def receiver(self) -> Receiver:
        """A headless receiver named "Room 4.12" on 127.0.0.1 with the PIN 4821, shared by all screens."""
        if self._receiver is None:
            from coalesce_receiver.services.receiver import Receiver, ReceiverConfig

            receiver = Receiver(
                ReceiverConfig(
                    name="Room 4.12",
                    pin=PIN,
                    host="127.0.0.1",
                    port=0,
                    fallback_port=None,
                    data_dir=self.home / "receiver",
                    mdns=False,
                )
            )
            await receiver.start()
            self._receiver = receiver
            self.cleanups.append(receiver.aclose)
        return self._receiver

    def camera_file(self) -> Path:
        """A short colourful video standing in for a webcam."""
        if self._camera is None:
            import cv2
            import numpy as np

            path = self.home / "camera.avi"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (640, 480))
            yy, xx = np.mgrid[0:480, 0:640]
            for step in range(30):
                frame = np.zeros((480, 640, 3), np.uint8)
                frame[..., 0] = (xx * 255 // 640 + step * 4) % 256
                frame[..., 1] = 90
                frame[..., 2] = yy * 200 // 480
                cv2.circle(frame, (320, 220), 110, (180, 200, 240), -1)
                cv2.circle(frame, (320, 540), 190, (120, 70, 40), -1)
                writer.write(frame)
            writer.release()
            self._camera = path
        return self._camera

    def sender(self, **config: Any) -> SenderApp:
        """A new sender app (window not shown yet) on this loop, with a video file as its camera."""
        from coalesce_client.app import SenderConfig, SenderServices
        from coalesce_client.models.media import Camera
        from coalesce_client.ui.app import SenderApp

        camera = self.camera_file()
        settings_file = self.home / "config" / "coalesce" / "app.json"  # a fresh start for every screen
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        settings_file.write_text('{"display_name": "Ada Lovelace"}\n')
        services = SenderServices(
            list_cameras=lambda: [Camera("0", "Integrated webcam"), Camera(str(camera), "USB camera")],
            load_credentials=lambda: None,
        )
        settings = SenderConfig(discovery=False, thumbnail_interval=1.0, status_interval=0.5, **config)
        app = SenderApp.build(self.loop, config=settings, services=services, with_tray=False)
        task = self.loop.create_task(app.controller.run())

        async def close() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            app.close()

        self.cleanups.append(close)
        return app

    async def pin_prompt(self, app: SenderApp) -> PinDialog:
        """Type the receiver's address into ``app``, press Enter, and return the PIN prompt it opens."""
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        receiver = await self.receiver()
        edit = app.window.connect_page.destination_edit
        edit.setText(f"127.0.0.1:{receiver.port}")
        QTest.keyClick(edit, Qt.Key.Key_Return)
        await self.until(
            lambda: app.window.pin_dialog is not None and app.window.pin_dialog.isVisible(), "PIN"
        )
        assert app.window.pin_dialog is not None
        return app.window.pin_dialog

    def place(self, widget: QWidget) -> None:
        """Show ``widget`` centred on the desktop."""
        from PySide6.QtGui import QGuiApplication

        widget.show()
        frame = widget.frameGeometry()
        desktop = QGuiApplication.primaryScreen().geometry()  # logical: the same at every scale
        widget.move((desktop.width() - frame.width()) // 2, (desktop.height() - frame.height()) // 2)
        widget.raise_()
        widget.activateWindow()

    async def close_all(self) -> None:
        while self.cleanups:
            await self.cleanups.pop()()


# ------------------------------------------------------------------------------------ sender screens


def _sample_receivers() -> list[ReceiverInfo]:
    from coalesce_common.discovery import ReceiverInfo

    return [
        ReceiverInfo("Room 4.12", "r-412", ("192.168.1.40",), 8443, True, "AB:CD"),
        ReceiverInfo("Aquarium (3rd floor)", "r-aq", ("192.168.1.52",), 443, True, "12:34"),
        ReceiverInfo("Lobby screen", "r-lobby", ("192.168.1.61",), 443, False, "56:78"),
    ]


def _list_receivers(app: Any, receivers: list[Any]) -> None:
    """What discovery would report: these receivers found, and the search settled."""
    for receiver in receivers:
        app.models.receivers.found(receiver.receiver_id, receiver)
    app.models.receivers.searched()


@screen("sender-receivers")
async def sender_receivers(studio: Studio) -> Capture:
    """The first screen: rooms found on the network, the address field, Share."""
    app = studio.sender()
    _list_receivers(app, _sample_receivers())
    studio.place(app.window)
    app.window.connect_page.receiver_list.setFocus()
    app.window.connect_page.receiver_list.setCurrentRow(0)
    await studio.settle()
    return app.window


@screen("sender-pin")
async def sender_pin(studio: Studio) -> Capture:
    """The PIN prompt over the first screen, after typing the room's address."""
    from PySide6.QtTest import QTest

    app = studio.sender()
    _list_receivers(app, _sample_receivers()[1:])
    studio.place(app.window)
    dialog = await studio.pin_prompt(app)
    QTest.keyClicks(dialog.pin_edit, "48")
    await studio.settle()
    return app.window.frameGeometry().united(dialog.frameGeometry())


@screen("sender-wrong-pin")
async def sender_wrong_pin(studio: Studio) -> Capture:
    """The PIN prompt again, saying the last PIN was wrong."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    app = studio.sender()
    _list_receivers(app, _sample_receivers()[1:])
    studio.place(app.window)
    dialog = await studio.pin_prompt(app)
    QTest.keyClicks(dialog.pin_edit, "1234")
    QTest.keyClick(dialog.pin_edit, Qt.Key.Key_Return)
    await studio.until(
        lambda: app.window.pin_dialog is not None and bool(app.window.pin_dialog.error_label.text()), "error"
    )
    assert app.window.pin_dialog is not None
    await studio.settle()
    return app.window.frameGeometry().united(app.window.pin_dialog.frameGeometry())


@screen("sender-sharing")
async def sender_sharing(studio: Studio) -> Capture:
    """Sharing: status, screen thumbnails, the camera on with its preview, Pause and Stop."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from coalesce_client.models.session import MediaChoice, SharePhase

    app = studio.sender()
    app.models.session.set_media(MediaChoice(1, str(studio.camera_file())))
    studio.place(app.window)
    dialog = await studio.pin_prompt(app)
    QTest.keyClicks(dialog.pin_edit, PIN)
    QTest.keyClick(dialog.pin_edit, Qt.Key.Key_Return)
    await studio.until(lambda: app.models.session.phase is SharePhase.SHARING, "sharing")
    page = app.window.sharing_page
    await studio.until(lambda: "fps" in page.status.text() and "ms" in page.status.text(), "status")
    await studio.until(lambda: all(m.thumbnail is not None for m in app.models.media.monitors), "thumbs")
    await studio.until(lambda: app.models.media.camera_preview is not None, "preview")
    await studio.settle(1.2)
    return app.window


@screen("sender-settings")
async def sender_settings(studio: Studio) -> Capture:
    """Settings: name, a manual proxy with a user, the cloud enrollment."""
    app = studio.sender()
    studio.place(app.window)
    app.window.open_settings()
    dialog = app.window.settings_dialog
    assert dialog is not None
    dialog.mode_buttons["manual"].click()
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("http"))
    dialog.host_edit.setText("proxy.example.com")
    dialog.port_edit.setText("3128")
    dialog.user_edit.setText("alice")
    dialog.password_edit.setText("secret")
    dialog.cloud_edit.setText("https://coalesce.example.com")
    studio.place(dialog)
    await studio.settle()
    return dialog


@screen("sender-update")
async def sender_update(studio: Studio) -> Capture:
    """An update offered by the cloud, with its release notes opened."""
    app = studio.sender()
    _list_receivers(app, _sample_receivers()[:1])
    app.models.update.offer("0.2.0", "Share a single window. Faster reconnects after Wi-Fi drops.")
    app.window.update_banner.notes_button.setChecked(True)
    studio.place(app.window)
    await studio.settle()
    return app.window


@screen("sender-error")
async def sender_error(studio: Studio) -> Capture:
    """The first screen after a receiver could not be reached."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    app = studio.sender()
    _list_receivers(app, [])
    studio.place(app.window)
    edit = app.window.connect_page.destination_edit
    edit.setText("127.0.0.1:9")
    QTest.keyClick(edit, Qt.Key.Key_Return)
    await studio.until(
        lambda: app.window.connect_page.message.isVisible() and bool(app.models.session.error), "error"
    )
    await studio.settle()
    return app.window


# ---------------------------------------------------------------------------------- receiver screens

ROOM_SIZE = (1280, 720)


def _slide(kind: str, title: str, colour: tuple[int, int, int], size: tuple[int, int]) -> FakeSource:
    """A still "shared screen" for the room display: a title, a chart and a colour of its own."""
    import cv2
    import numpy as np

    from coalesce_testing.frames import FakeSource

    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = colour
    cv2.rectangle(image, (0, 0), (width, height // 7), (250, 250, 250), -1)
    scale = width / 900
    cv2.putText(image, title, (round(30 * scale), round(height / 10)), cv2.FONT_HERSHEY_SIMPLEX,
                1.3 * scale, (30, 30, 30), max(1, round(2 * scale)), cv2.LINE_AA)  # fmt: skip
    for i, bar in enumerate((0.3, 0.5, 0.42, 0.7, 0.62)):
        left = round(width * (0.12 + i * 0.15))
        top = round(height * (0.92 - bar))
        cv2.rectangle(
            image, (left, top), (left + round(width * 0.1), round(height * 0.92)), (255, 209, 102), -1
        )
    return FakeSource(kind, image, frames=1)


def _room(studio: Studio, *, shares: int = 0, requests: int = 0) -> RoomWindow:
    """A room window (1280x720) over a model with ``shares`` still slides and ``requests`` join requests."""
    from coalesce_receiver.models.room import JoinRequest, RoomModel, ShareView
    from coalesce_receiver.ui.room_window import RoomWindow

    model = RoomModel("Room 4.12", pin_required=True, addresses=["192.168.1.40"], port=443)
    model.set_pin("4821")
    model.set_meeting_id("4719302856")
    slides = [
        ("Ada Lovelace", "Quarterly review", (120, 70, 30)),
        ("Grace Hopper", "Roadmap 2027", (40, 90, 40)),
        ("Linus", "Incident report", (90, 40, 90)),
        ("Margaret", "Design sketches", (30, 60, 110)),
    ]
    for index, (name, title, colour) in enumerate(slides[:shares]):
        share = ShareView(f"s{index}", name)
        share.tracks["screen"] = _slide("screen", title, colour, (1600, 1000))
        if index == 0:
            share.tracks["camera"] = _slide("camera", "", (160, 140, 120), (640, 480))
        model.add_share(share)
    for index in range(requests):
        model.add_join_request(
            JoinRequest(f"r{index}", ["Alan Turing", "Katherine"][index % 2], "192.168.1.77")
        )
    window = RoomWindow(model, _StillRoom())
    window.resize(*ROOM_SIZE)
    studio.place(window)
    studio.cleanups.append(_closer(window))
    return window


class _StillRoom:
    """The room's controls for a screenshot: nothing to act on."""

    def decide(self, share_id: str, approve: bool) -> None:
        pass

    def drop_share(self, share_id: str) -> None:
        pass

    def spotlight(self, share_id: str | None) -> None:
        pass

    def swap(self, first: str, second: str) -> None:
        pass

    def move_pip(self) -> None:
        pass

    def mute_sound(self, muted: bool) -> None:
        pass

    def set_sound_volume(self, volume: float) -> None:
        pass

    def listen_to(self, share_id: str | None) -> None:
        pass

    def change_settings(
        self,
        password: str,
        *,
        pin: str | None,
        rotate: bool,
        done: Callable[[SettingsOutcome], None],
        locked: bool = False,
    ) -> None:
        pass


def _closer(window: QWidget) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        window.close()

    return close


@screen("receiver-idle")
async def receiver_idle(studio: Studio) -> Capture:
    """The room display nobody is sharing to: name, meeting ID, PIN and how to join."""
    window = _room(studio)
    await studio.settle()
    return window


@screen("receiver-one-share")
async def receiver_one_share(studio: Studio) -> Capture:
    """One share full screen, with the sender's camera inset and name."""
    window = _room(studio, shares=1)
    await studio.settle()
    return window


@screen("receiver-four-shares")
async def receiver_four_shares(studio: Studio) -> Capture:
    """Four shares tiled."""
    window = _room(studio, shares=4)
    await studio.settle()
    return window


@screen("receiver-moderation")
async def receiver_moderation(studio: Studio) -> Capture:
    """A moderated room: a join request waiting for Allow or Deny at the box."""
    window = _room(studio, shares=1, requests=1)
    await studio.settle()
    return window


# ----------------------------------------------------------------------------------------- machinery


def _wallpaper() -> QWidget:
    """A full-screen window painted like a presentation, so screen thumbnails show something."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QColor, QFont, QLinearGradient, QPainter
    from PySide6.QtWidgets import QWidget

    class Wallpaper(QWidget):
        def paintEvent(self, event: object) -> None:
            painter = QPainter(self)
            gradient = QLinearGradient(0, 0, self.width(), self.height())
            gradient.setColorAt(0, QColor(15, 40, 80))
            gradient.setColorAt(1, QColor(40, 110, 150))
            painter.fillRect(self.rect(), gradient)
            painter.setPen(QColor(255, 255, 255))
            font = QFont(self.font())
            font.setPixelSize(72)
            font.setBold(True)
            painter.setFont(font)
            painter.drawText(QRect(80, 60, 1400, 120), Qt.AlignmentFlag.AlignLeft, "Quarterly review")
            bars = [(220, QColor(250, 200, 70)), (380, QColor(120, 220, 140)), (300, QColor(240, 120, 110))]
            for index, (height, colour) in enumerate(bars):
                painter.fillRect(QRect(120 + index * 200, 900 - height, 140, height), colour)

    wallpaper = Wallpaper()
    wallpaper.setWindowFlag(Qt.WindowType.FramelessWindowHint)
    wallpaper.setGeometry(0, 0, *DESKTOP)
    wallpaper.show()
    return wallpaper


def _save(capture: Capture, path: Path) -> None:
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QGuiApplication

    if isinstance(capture, QRect):
        screen = QGuiApplication.primaryScreen()
        pixmap = screen.grabWindow(0, capture.x(), capture.y(), capture.width(), capture.height())
    else:
        pixmap = capture.grab()
    if not pixmap.save(str(path)):
        raise RuntimeError(f"could not write {path}")


async def _render(names: list[str], out: Path, suffix: str, home: Path) -> None:
    studio = Studio(asyncio.get_running_loop(), home)
    try:
        for name in names:
            capture = await SCREENS[name](studio)
            path = out / f"{name}{suffix}.png"
            _save(capture, path)
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
            await studio.close_all()
            studio._receiver = None
    finally:
        await studio.close_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"screens to render (default: all of {', '.join(SCREENS)})")
    parser.add_argument("--scale", type=float, default=1.0, help="UI scale factor, e.g. 2 for 200 %%")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where PNGs go")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SCREENS]
    if unknown:
        parser.error(f"unknown screens: {', '.join(unknown)}")
    names = args.names or list(SCREENS)
    args.out.mkdir(parents=True, exist_ok=True)

    from coalesce_testing.xvfb import XvfbError, start_xvfb

    try:
        xvfb = start_xvfb(round(DESKTOP[0] * args.scale), round(DESKTOP[1] * args.scale))
    except (XvfbError, TimeoutError) as exc:
        sys.exit(f"screenshots: {exc}")
    home = Path(tempfile.mkdtemp(prefix="coalesce-screenshots-"))
    os.environ.update(
        DISPLAY=xvfb.display,
        QT_QPA_PLATFORM="xcb",
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        COALESCE_ICE_HOST_ADDRESSES="127.0.0.1",
    )
    os.environ.pop("WAYLAND_DISPLAY", None)
    if args.scale != 1.0:
        os.environ["QT_SCALE_FACTOR"] = f"{args.scale:g}"
    try:
        import qasync
        from PySide6.QtWidgets import QApplication

        app = QApplication(["coalesce-screenshots"])
        app.setApplicationDisplayName("Coalesce")
        wallpaper = _wallpaper()
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        suffix = "" if args.scale == 1.0 else f"@{args.scale:g}x"
        try:
            loop.run_until_complete(_render(names, args.out, suffix, home))
        finally:
            wallpaper.close()
            loop.close()
    finally:
        xvfb.stop()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
