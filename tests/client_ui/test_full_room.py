"""A full room in the sender app: it says so, and offers to take the place of the room's oldest share."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.client_ui.conftest import PIN, SENDER_NAME, WAIT_MS, ReceiverFactory, SenderFactory
from tests.client_ui.test_flows import enter_pin, shown_senders, type_address, wait_sharing
from tests.client_ui.test_moderation import GuestStarter, start_guest

__all__ = ["start_guest"]  # the fixture, used below


def test_the_app_offers_to_replace_the_oldest_share_and_does(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, start_guest: GuestStarter
) -> None:
    receiver = make_receiver(pin=PIN, max_shares=1)
    guest = start_guest(receiver, "Guest")
    qtbot.waitUntil(guest.done, timeout=WAIT_MS)
    app = make_sender()
    page = app.window.connect_page
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")  # full: refused before the PIN is asked
    qtbot.waitUntil(lambda: page.replace_button.isVisible(), timeout=WAIT_MS)
    assert page.message.text() == (  # refused before its name was said: the address the user typed
        f"127.0.0.1:{receiver.port} is already showing the most shares it can. Replace the oldest share "
        "with yours, or ask someone to stop first."
    )
    assert shown_senders(receiver) == ["Guest"]

    qtbot.mouseClick(page.replace_button, Qt.MouseButton.LeftButton)
    enter_pin(qtbot, app, PIN)  # the PIN first: only a sender who knows it may end another's share
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: shown_senders(receiver) == [SENDER_NAME], timeout=WAIT_MS)
    assert not page.replace_button.isVisible()


def test_a_room_that_does_not_allow_it_offers_no_replacing(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, start_guest: GuestStarter
) -> None:
    receiver = make_receiver(pin=PIN, max_shares=1, replace_when_full=False)
    guest = start_guest(receiver, "Guest")
    qtbot.waitUntil(guest.done, timeout=WAIT_MS)
    app = make_sender()
    page = app.window.connect_page
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    expected = (
        f"127.0.0.1:{receiver.port} is already showing the most shares it can; ask someone to stop first."
    )
    qtbot.waitUntil(lambda: page.message.text() == expected, timeout=WAIT_MS)
    assert not page.replace_button.isVisible()
