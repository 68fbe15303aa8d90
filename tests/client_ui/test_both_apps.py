"""Both apps on one loop: the sender app shares to a real receiver whose room window shows the share."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from coalesce_receiver.ui.room_window import RoomWindow
from tests.client_ui.conftest import PIN, SENDER_NAME, WAIT_MS, ReceiverFactory, SenderFactory
from tests.client_ui.test_flows import enter_pin, type_address, wait_sharing

CAMERA_RGB = (0, 160, 255)  # the colour of the conftest's default camera video


def centre_colour(window: RoomWindow) -> tuple[int, int, int]:
    image = window.grab().toImage()
    colour = image.pixelColor(image.width() // 2, image.height() // 2)
    return colour.red(), colour.green(), colour.blue()


def close_to(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_the_room_window_shows_what_the_sender_app_shares_and_the_tile_leaves_on_stop(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN, name="Room 1")
    room = RoomWindow(receiver.model, receiver)
    qtbot.addWidget(room)
    room.resize(640, 360)
    room.show()
    assert room.is_idle

    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, PIN)
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: not room.is_idle and close_to(centre_colour(room), CAMERA_RGB), timeout=WAIT_MS)
    assert [tile.sender_name for tile in room.tiles] == [SENDER_NAME]

    qtbot.mouseClick(app.window.sharing_page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: room.is_idle, timeout=WAIT_MS)
