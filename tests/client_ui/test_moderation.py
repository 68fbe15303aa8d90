"""Moderator mode in the sender app, against a real moderated receiver on loopback.

The app joins with the room's moderator PIN; other senders are started with the service API
(``Share(...).start()`` in a task), wait at the receiver, and the app's prompt lets them in or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QToolButton
from pytestqt.qtbot import QtBot

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_client.ui.app import SenderApp
from coalesce_client.ui.join_dialog import JoinRequestDialog
from coalesce_common.errors import ShareRefused
from coalesce_receiver.services.receiver import Receiver
from tests.client_ui.conftest import PIN, SENDER_NAME, WAIT_MS, ReceiverFactory, Runner, SenderFactory
from tests.client_ui.test_flows import enter_pin, shown_senders, type_address, wait_sharing

MODERATOR_PIN = "909090"
GuestStarter = Callable[[Receiver, str], "asyncio.Task[None]"]


@pytest.fixture
def start_guest(
    qloop: asyncio.AbstractEventLoop, run: Runner, video_file: Callable[..., Path]
) -> Iterator[GuestStarter]:
    """``start_guest(receiver, name)``: another sender (the service API, room PIN) starting in a task."""
    started: list[tuple[Share, asyncio.Task[None]]] = []

    def start(receiver: Receiver, name: str) -> asyncio.Task[None]:
        options = ShareOptions(sender_name=name, pin=PIN, screen=None, camera=str(video_file((0, 200, 0))))
        share = Share(ShareTarget("127.0.0.1", receiver.port), options)
        task = qloop.create_task(share.start(), name=f"guest {name}")
        started.append((share, task))
        return task

    yield start
    for share, task in started:
        task.cancel()  # a sender still waiting for an answer gives up
        run(asyncio.wait([task]))
        if not task.cancelled():
            task.exception()  # retrieved: a refusal the test did not look at is no error here
        run(share.stop())


def share_as_moderator(qtbot: QtBot, app: SenderApp, receiver: Receiver) -> None:
    page = app.window.connect_page
    qtbot.mouseClick(page.moderator_check, Qt.MouseButton.LeftButton)
    assert app.models.session.moderator
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    qtbot.waitUntil(lambda: app.window.pin_dialog is not None and app.window.pin_dialog.isVisible())
    dialog = app.window.pin_dialog
    assert dialog is not None
    assert dialog.title.text() == "Moderator PIN for Room 1"
    assert dialog.windowTitle() == "Moderator PIN for Room 1"
    assert page.message.text() == "Room 1 needs its moderator PIN."
    assert not page.moderator_check.isEnabled()  # fixed for the share under way
    enter_pin(qtbot, app, MODERATOR_PIN)
    wait_sharing(qtbot, app)


def prompt_for(app: SenderApp, name: str) -> Callable[[], bool]:
    def asking() -> bool:
        dialog = app.window.join_dialog
        return (
            dialog is not None and dialog.isVisible() and dialog.question.text() == f"{name} wants to share"
        )

    return asking


def join_dialog(app: SenderApp) -> JoinRequestDialog:
    dialog = app.window.join_dialog
    assert dialog is not None
    return dialog


def test_a_moderator_allows_one_sender_and_denies_another(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, start_guest: GuestStarter
) -> None:
    receiver = make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    app = make_sender()
    share_as_moderator(qtbot, app, receiver)
    qtbot.waitUntil(lambda: shown_senders(receiver) == [SENDER_NAME], timeout=WAIT_MS)  # no approval
    status = app.window.sharing_page.status
    qtbot.waitUntil(lambda: status.text().startswith("Moderator · Peer to peer"), timeout=WAIT_MS)

    welcome = start_guest(receiver, "Welcome guest")
    qtbot.waitUntil(prompt_for(app, "Welcome guest"), timeout=WAIT_MS)
    dialog = join_dialog(app)
    assert not dialog.isModal()
    assert dialog.deny_button.isDefault() and not dialog.allow_button.isDefault()
    assert dialog.allow_button.text() == "&Allow" and dialog.deny_button.text() == "&Deny"
    assert app.window.sharing_page.stop_button.isEnabled()
    qtbot.mouseClick(dialog.allow_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(welcome.done, timeout=WAIT_MS)
    assert welcome.exception() is None
    qtbot.waitUntil(
        lambda: sorted(shown_senders(receiver)) == [SENDER_NAME, "Welcome guest"], timeout=WAIT_MS
    )
    assert not dialog.isVisible() and app.models.session.join_requests == []

    gatecrasher = start_guest(receiver, "Gatecrasher")
    qtbot.waitUntil(prompt_for(app, "Gatecrasher"), timeout=WAIT_MS)
    qtbot.keyClick(dialog, Qt.Key.Key_Return)  # Deny is the default button

    qtbot.waitUntil(gatecrasher.done, timeout=WAIT_MS)
    with pytest.raises(ShareRefused, match="declined"):
        gatecrasher.result()
    assert not dialog.isVisible()
    assert len(receiver.model.shares) == 2
    assert app.models.session.phase.value == "sharing"


def test_waiting_senders_queue_and_are_answered_one_by_one_from_the_keyboard(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, start_guest: GuestStarter
) -> None:
    receiver = make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    app = make_sender()
    share_as_moderator(qtbot, app, receiver)

    first = start_guest(receiver, "First")
    qtbot.waitUntil(prompt_for(app, "First"), timeout=WAIT_MS)
    dialog = join_dialog(app)
    second = start_guest(receiver, "Second")
    qtbot.waitUntil(lambda: dialog.waiting.text() == "1 more waiting after them.", timeout=WAIT_MS)
    third = start_guest(receiver, "Third")
    qtbot.waitUntil(lambda: dialog.waiting.text() == "2 more waiting after them.", timeout=WAIT_MS)
    assert dialog.question.text() == "First wants to share"  # the first stays asked about
    qtbot.waitUntil(dialog.isActiveWindow)  # the prompt came to the front, ready for the keyboard

    qtbot.keyClick(dialog, Qt.Key.Key_D, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(prompt_for(app, "Second"), timeout=WAIT_MS)
    assert dialog.waiting.text() == "1 more waiting after them."
    assert dialog.deny_button.isDefault() and dialog.deny_button.hasFocus()
    qtbot.keyClick(dialog, Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(prompt_for(app, "Third"), timeout=WAIT_MS)
    assert not dialog.waiting.isVisible()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)  # Escape denies too

    qtbot.waitUntil(lambda: first.done() and second.done() and third.done(), timeout=WAIT_MS)
    assert isinstance(first.exception(), ShareRefused)
    assert second.exception() is None
    assert isinstance(third.exception(), ShareRefused)
    assert sorted(shown_senders(receiver)) == [SENDER_NAME, "Second"]
    assert not dialog.isVisible()


def test_an_unanswered_request_is_denied_after_the_timeout(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, start_guest: GuestStarter
) -> None:
    receiver = make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    app = make_sender(join_answer_timeout=1.0)
    share_as_moderator(qtbot, app, receiver)

    guest = start_guest(receiver, "Latecomer")
    qtbot.waitUntil(prompt_for(app, "Latecomer"), timeout=WAIT_MS)
    qtbot.waitUntil(guest.done, timeout=WAIT_MS)
    with pytest.raises(ShareRefused, match="declined"):
        guest.result()
    assert not join_dialog(app).isVisible() and app.models.session.join_requests == []


def test_stopping_withdraws_the_open_requests(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, start_guest: GuestStarter
) -> None:
    receiver = make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    app = make_sender()
    share_as_moderator(qtbot, app, receiver)
    start_guest(receiver, "Patient")
    qtbot.waitUntil(prompt_for(app, "Patient"), timeout=WAIT_MS)
    request = app.models.session.join_requests[0]

    qtbot.mouseClick(app.window.sharing_page.stop_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: app.window.pages.currentWidget() is app.window.connect_page, timeout=WAIT_MS)
    assert not join_dialog(app).isVisible()
    assert app.models.session.join_requests == [] and request.answer.cancelled()
    assert app.window.connect_page.moderator_check.isChecked()  # kept for the next share


def test_the_room_pin_is_not_the_moderator_pin(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    app = make_sender()
    app.window.connect_page.moderator_check.setChecked(True)
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, PIN)

    def prompt_says_wrong_moderator_pin() -> bool:
        dialog = app.window.pin_dialog
        return (
            dialog is not None
            and dialog.isVisible()
            and dialog.error_label.text().startswith("Wrong moderator PIN")
        )

    qtbot.waitUntil(prompt_says_wrong_moderator_pin, timeout=WAIT_MS)
    dialog = app.window.pin_dialog
    assert dialog is not None and dialog.title.text() == "Moderator PIN for Room 1"
    enter_pin(qtbot, app, MODERATOR_PIN)
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: shown_senders(receiver) == [SENDER_NAME], timeout=WAIT_MS)


def test_a_room_without_a_moderator_pin_says_how_to_share(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN, moderated=True)
    app = make_sender()
    page = app.window.connect_page
    page.moderator_check.setChecked(True)
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    qtbot.waitUntil(
        lambda: page.message.isVisible() and "no moderator" in page.message.text(), timeout=WAIT_MS
    )
    # Refused at the first message, before the receiver said its name.
    assert page.message.text() == (
        f"127.0.0.1:{receiver.port} has no moderator PIN set. Clear “Join as moderator” to share."
    )
    assert app.window.pin_dialog is None and receiver.model.shares == []


def test_meetings_cannot_be_moderated(make_sender: SenderFactory, qtbot: QtBot) -> None:
    app = make_sender()
    page = app.window.connect_page
    page.moderator_check.setChecked(True)
    type_address(qtbot, app, "123 456 7890")
    assert page.message.isVisible() and "Moderating works with room displays" in page.message.text()
    assert not app.models.session.active


def test_the_moderator_choice_has_a_mnemonic(make_sender: SenderFactory, qtbot: QtBot) -> None:
    app = make_sender()
    check = app.window.connect_page.moderator_check
    assert check.text() == "Join as &moderator (use the moderator PIN)"
    app.window.activateWindow()
    qtbot.waitUntil(app.window.isActiveWindow)
    qtbot.keyClick(app.window, Qt.Key.Key_M, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(check.isChecked)  # a mnemonic "animates" the click: it lands a moment later
    assert app.models.session.moderator


def test_the_app_says_it_waits_to_be_let_in_and_cancel_gives_up(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN, moderated=True)
    app = make_sender()
    page = app.window.connect_page
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    qtbot.waitUntil(lambda: app.window.pin_dialog is not None and app.window.pin_dialog.isVisible())
    enter_pin(qtbot, app, PIN)
    qtbot.waitUntil(lambda: page.message.text() == "Waiting for Room 1 to let you in… (Cancel to give up)")
    assert page.cancel_button.isVisible() and len(receiver.model.join_requests) == 1

    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: receiver.model.join_requests == [], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not app.models.session.active, timeout=WAIT_MS)
    assert receiver.model.shares == [] and app.models.session.error is None


def test_the_moderator_steers_the_room_display_from_the_room_panel(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, start_guest: GuestStarter
) -> None:
    receiver = make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    app = make_sender()
    share_as_moderator(qtbot, app, receiver)
    panel = app.window.sharing_page.room_panel
    qtbot.waitUntil(panel.isVisible, timeout=WAIT_MS)

    def tile(number: int) -> str:
        label = panel.findChild(QLabel, f"room-tile-{number}")
        return label.text() if label is not None else ""

    def button(name: str) -> QPushButton:
        found = panel.findChild(QPushButton, name)
        assert found is not None, name
        return found

    assert tile(1) == f"1  {SENDER_NAME}" and tile(2) == ""
    guest = start_guest(receiver, "Guest")
    qtbot.waitUntil(lambda: panel.summary.text() == "Waiting to share: Guest", timeout=WAIT_MS)
    qtbot.waitUntil(prompt_for(app, "Guest"), timeout=WAIT_MS)
    qtbot.mouseClick(join_dialog(app).allow_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(guest.done, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tile(2) == "2  Guest", timeout=WAIT_MS)
    assert panel.summary.text() == "" and not panel.grid_button.isEnabled()
    guest_id = receiver.model.shown_shares[1].share_id

    qtbot.mouseClick(button("room-spotlight-2"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tile(2) == "2  Guest (in the spotlight)", timeout=WAIT_MS)
    assert receiver.model.spotlit == guest_id
    assert not button("room-spotlight-2").isEnabled() and panel.grid_button.isEnabled()
    qtbot.mouseClick(panel.grid_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tile(2) == "2  Guest", timeout=WAIT_MS)
    assert receiver.model.spotlit is None

    assert not panel.mute_button.isVisible()  # no share shares its sound
    receiver.model.set_sound(receiver.model.shown_shares[0].share_id, True)
    receiver.model.set_sound(guest_id, True)  # as the senders' media messages would say
    qtbot.waitUntil(lambda: tile(1) == f"1  {SENDER_NAME} (heard)", timeout=WAIT_MS)
    assert button("room-listen-2").isEnabled() and not button("room-listen-1").isEnabled()
    qtbot.mouseClick(button("room-listen-2"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tile(2) == "2  Guest (heard)", timeout=WAIT_MS)
    assert receiver.model.audible == guest_id and tile(1) == f"1  {SENDER_NAME}"
    assert panel.mute_button.isVisible() and panel.mute_button.text() == "&Mute the room"
    qtbot.mouseClick(panel.mute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tile(2) == "2  Guest", timeout=WAIT_MS)
    assert receiver.model.sound_muted and panel.mute_button.text() == "Unmute the &room"
    qtbot.mouseClick(panel.mute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tile(2) == "2  Guest (heard)", timeout=WAIT_MS)

    swap = panel.findChild(QToolButton, "room-swap-1")
    assert swap is not None and swap.menu() is not None
    [with_guest] = swap.menu().actions()
    assert with_guest.text() == "2 Guest"
    with_guest.trigger()
    qtbot.waitUntil(lambda: shown_in_places(receiver) == ["Guest", SENDER_NAME], timeout=WAIT_MS)

    qtbot.mouseClick(button("room-stop-2"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: shown_senders(receiver) == [SENDER_NAME], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tile(2) == "", timeout=WAIT_MS)
    assert app.models.session.phase.value == "sharing"  # the moderator's own share goes on


def shown_in_places(receiver: Receiver) -> list[str]:
    return [share.sender_name for share in receiver.model.placed_shares]


def test_a_presenter_sees_no_room_panel(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN)
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, PIN)
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: shown_senders(receiver) == [SENDER_NAME], timeout=WAIT_MS)
    assert not app.window.sharing_page.room_panel.isVisible() and app.models.session.room is None
