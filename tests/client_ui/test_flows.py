"""The sender app's main flows, driven through its widgets against real receivers on loopback."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import keyring
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from coalesce_client.models.session import SharePhase
from coalesce_client.ui.app import SenderApp
from coalesce_common.errors import WrongPin
from coalesce_receiver.services.receiver import Receiver
from coalesce_receiver.services.throttle import PinThrottle
from tests.client_ui.conftest import (
    PIN,
    SENDER_NAME,
    WAIT_MS,
    ReceiverFactory,
    Runner,
    SenderFactory,
    off_the_loop,
    saved_app_settings,
)


def type_address(qtbot: QtBot, app: SenderApp, text: str) -> None:
    edit = app.window.connect_page.destination_edit
    edit.clear()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def enter_pin(qtbot: QtBot, app: SenderApp, pin: str) -> None:
    qtbot.waitUntil(lambda: app.window.pin_dialog is not None and app.window.pin_dialog.isVisible())
    dialog = app.window.pin_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.pin_edit, pin)
    qtbot.keyClick(dialog.pin_edit, Qt.Key.Key_Return)


def wait_sharing(qtbot: QtBot, app: SenderApp) -> None:
    qtbot.waitUntil(lambda: app.window.pages.currentWidget() is app.window.sharing_page, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: app.models.session.phase is SharePhase.SHARING, timeout=WAIT_MS)


def shown_senders(receiver: Receiver) -> list[str]:
    return [share.sender_name for share in receiver.model.shares]


def camera_frames(receiver: Receiver) -> int:
    for share in receiver.model.shares:
        if "camera" in share.tracks:
            return int(share.tracks["camera"].stats()["frames"])  # type: ignore[call-overload]
    return 0


def test_share_by_address_with_the_pin(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, run: Runner
) -> None:
    receiver = make_receiver(pin=PIN)
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, PIN)
    wait_sharing(qtbot, app)

    page = app.window.sharing_page
    assert page.title.text() == "Sharing to Room 1"
    qtbot.waitUntil(lambda: shown_senders(receiver) == [SENDER_NAME], timeout=WAIT_MS)
    # The status line comes from the peer connection's statistics and the capture track.
    qtbot.waitUntil(
        lambda: (
            re.search("Peer to peer · 320\N{MULTIPLICATION SIGN}240 · " r"\d+ fps", page.status.text())
            is not None
        )
    )
    assert page.camera_check.isChecked()  # no screen to capture here: the camera was shared instead
    qtbot.waitUntil(lambda: page.preview.pixmap() is not None and not page.preview.pixmap().isNull())
    saved = saved_app_settings(run, app)
    assert saved["last_destination"] == {"host": "127.0.0.1", "port": receiver.port, "meeting_id": ""}


def test_a_wrong_pin_is_said_in_the_pin_prompt_and_escape_gives_up(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN)
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, "1111")

    def prompt_says_wrong_pin() -> bool:
        dialog = app.window.pin_dialog
        return dialog is not None and dialog.isVisible() and dialog.error_label.text() == str(WrongPin())

    qtbot.waitUntil(prompt_says_wrong_pin, timeout=WAIT_MS)
    dialog = app.window.pin_dialog
    assert dialog is not None and dialog.error_label.isVisible()
    qtbot.keyClick(dialog.pin_edit, Qt.Key.Key_Escape)

    qtbot.waitUntil(lambda: app.models.session.phase is SharePhase.IDLE, timeout=WAIT_MS)
    page = app.window.connect_page
    assert app.window.pages.currentWidget() is page
    assert not page.message.isVisible()  # giving up is not an error
    assert page.share_button.isEnabled()
    assert receiver.model.shares == []


def test_the_right_pin_after_a_wrong_one_shares(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN)
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, "1111")
    qtbot.waitUntil(
        lambda: app.window.pin_dialog is not None and bool(app.window.pin_dialog.error_label.text()),
        timeout=WAIT_MS,
    )
    enter_pin(qtbot, app, PIN)
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: shown_senders(receiver) == [SENDER_NAME], timeout=WAIT_MS)


def test_throttling_shows_the_retry_time(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN, throttle=PinThrottle(free_failures=1, base_delay=30))
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, "1111")
    # The wrong PIN costs 30 s: the retry is refused before any PIN is asked, and the first screen says so.
    message = app.window.connect_page.message
    qtbot.waitUntil(lambda: message.isVisible() and "Too many attempts" in message.text(), timeout=WAIT_MS)
    assert message.text().startswith(str(WrongPin()))
    assert re.search(r"retry in (29|30) s\.$", message.text())
    assert app.window.pages.currentWidget() is app.window.connect_page
    assert app.window.pin_dialog is None


def test_stop_returns_to_the_first_screen(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver()  # an open room: no PIN prompt
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    wait_sharing(qtbot, app)
    assert app.window.pin_dialog is None
    qtbot.waitUntil(lambda: len(receiver.model.shares) == 1, timeout=WAIT_MS)

    qtbot.mouseClick(app.window.sharing_page.stop_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: app.window.pages.currentWidget() is app.window.connect_page, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: receiver.model.shares == [], timeout=WAIT_MS)
    assert not app.window.connect_page.message.isVisible()
    assert app.window.connect_page.destination_edit.text() == f"127.0.0.1:{receiver.port}"


def test_pause_stops_the_pictures_and_resume_brings_them_back(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver()
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: camera_frames(receiver) > 10, timeout=WAIT_MS)
    page = app.window.sharing_page

    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    assert app.models.session.paused and page.pause_button.text() == "&Resume"
    assert page.message.text().startswith("Paused")
    # Frames already on the way may still land; then the count holds still.
    qtbot.waitUntil(lambda: "0 fps" in page.status.text(), timeout=WAIT_MS)
    frozen = camera_frames(receiver)
    qtbot.wait(400)  # nothing signals "no frame arrived": give frames a chance to (wrongly) come
    assert camera_frames(receiver) <= frozen + 1

    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    assert not app.models.session.paused
    qtbot.waitUntil(lambda: camera_frames(receiver) > frozen + 10, timeout=WAIT_MS)


def test_unreachable_receiver_is_said_in_words(
    make_sender: SenderFactory, qtbot: QtBot, free_tcp_port: int
) -> None:
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{free_tcp_port}")
    message = app.window.connect_page.message
    qtbot.waitUntil(lambda: message.isVisible() and "Could not reach" in message.text(), timeout=WAIT_MS)
    assert f"127.0.0.1:{free_tcp_port}" in message.text()
    assert "nothing is listening" in message.text() and "the room display is running" in message.text()
    assert app.models.session.phase is SharePhase.IDLE


def test_a_malformed_address_is_explained(make_sender: SenderFactory, qtbot: QtBot) -> None:
    app = make_sender()
    type_address(qtbot, app, "room 4:99999")
    message = app.window.connect_page.message
    assert message.isVisible() and "192.168.1.40:8443" in message.text()
    assert app.models.session.phase is SharePhase.IDLE


def test_the_receiver_going_away_ends_the_share_with_a_notice(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, qloop: asyncio.AbstractEventLoop
) -> None:
    receiver = make_receiver()
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    wait_sharing(qtbot, app)
    closing = qloop.create_task(receiver.aclose())
    qtbot.waitUntil(closing.done, timeout=WAIT_MS)
    message = app.window.connect_page.message
    qtbot.waitUntil(lambda: message.isVisible(), timeout=WAIT_MS)
    assert message.text() == "Room 1 was switched off or restarted, so the share ended."


def test_switching_the_camera_changes_the_live_share(
    make_receiver: ReceiverFactory,
    make_sender: SenderFactory,
    qtbot: QtBot,
    run: Runner,
    video_file: object,
    tmp_path: Path,
) -> None:
    from coalesce_client.models.media import Camera

    assert callable(video_file)
    red, green = video_file((255, 0, 0)), video_file((0, 255, 0))
    receiver = make_receiver(pin=PIN)
    app = make_sender(cameras=[Camera(str(red), "Red camera"), Camera(str(green), "Green camera")])
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, PIN)
    wait_sharing(qtbot, app)
    first = receiver.model.shares[0].share_id
    combo = app.window.sharing_page.camera_combo
    assert combo.currentText() == "Red camera"

    combo.setCurrentIndex(combo.findText("Green camera"))
    combo.activated.emit(combo.currentIndex())

    qtbot.waitUntil(lambda: green_in_the_room(receiver), timeout=WAIT_MS)
    assert [s.share_id for s in receiver.model.shares] == [first]  # the same share, the same tile
    assert app.models.session.phase is SharePhase.SHARING and app.window.pin_dialog is None
    assert app.models.session.media.camera == str(green)
    assert saved_app_settings(run, app)["camera"] == str(green)


def green_in_the_room(receiver: Receiver) -> bool:
    [share] = receiver.model.shares
    source = share.tracks.get("camera")
    rgb = source.latest_rgb() if source is not None else None
    if rgb is None:
        return False
    r, g, b = (int(v) for v in rgb[rgb.shape[0] // 2, rgb.shape[1] // 2])
    return g > 200 and r < 60 and b < 60


def test_proxy_settings_are_saved_with_the_password_in_the_keyring(
    make_sender: SenderFactory, qtbot: QtBot, run: Runner, isolated_home: Path
) -> None:
    app = make_sender()
    qtbot.mouseClick(app.window.settings_button, Qt.MouseButton.LeftButton)
    dialog = app.window.settings_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, "Grace")
    dialog.mode_buttons["manual"].click()
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData("socks5"))
    qtbot.keyClicks(dialog.host_edit, "proxy.corp")
    qtbot.keyClicks(dialog.port_edit, "1080")
    qtbot.keyClicks(dialog.user_edit, "alice")
    qtbot.keyClicks(dialog.password_edit, "s3cret")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: app.models.proxy.config.url == "socks5://alice:s3cret@proxy.corp:1080")
    assert not dialog.isVisible()
    sender_json = isolated_home / "config" / "coalesce" / "sender.json"
    text = off_the_loop(run, sender_json.read_text)
    assert json.loads(text)["proxy"] == {"mode": "manual", "url": "socks5://alice@proxy.corp:1080"}
    assert "s3cret" not in text
    password = off_the_loop(run, keyring.get_password, "coalesce-sender", "proxy:alice@proxy.corp:1080")
    assert password == "s3cret"
    assert saved_app_settings(run, app)["display_name"] == "Grace"


def test_a_bad_proxy_form_is_explained_and_not_saved(
    make_sender: SenderFactory, qtbot: QtBot, run: Runner, isolated_home: Path
) -> None:
    app = make_sender()
    app.window.open_settings()
    dialog = app.window.settings_dialog
    assert dialog is not None
    dialog.mode_buttons["manual"].click()
    qtbot.keyClicks(dialog.host_edit, "proxy.corp")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert "port" in dialog.proxy_error.text()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert not off_the_loop(run, (isolated_home / "config" / "coalesce" / "sender.json").exists)


def test_receivers_found_by_mdns_are_listed_and_shared_to(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(name="Aurora", pin=PIN, mdns=True, mdns_interfaces=["127.0.0.1"])
    app = make_sender(discovery_interfaces=["127.0.0.1"])
    listed = app.window.connect_page.receiver_list
    qtbot.waitUntil(lambda: listed.count() == 1, timeout=WAIT_MS)
    item = listed.item(0)
    assert item.text() == f"Aurora\nPIN needed · 127.0.0.1:{receiver.port}"
    app.window.connect_page.destination_edit.clear()
    listed.setFocus()
    listed.setCurrentItem(item)
    qtbot.keyClick(listed, Qt.Key.Key_Return)
    enter_pin(qtbot, app, PIN)
    wait_sharing(qtbot, app)
    assert receiver.identity is not None
    destination = app.models.session.destination
    assert destination is not None and destination.fingerprint == receiver.identity.fingerprint
    assert app.window.sharing_page.title.text() == "Sharing to Aurora"
