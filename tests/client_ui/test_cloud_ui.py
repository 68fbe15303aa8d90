"""Meeting IDs, enrollment and the update banner, as a person meets them in the app."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from coalesce_client.models.cloud import UpdatePhase
from coalesce_client.models.session import SharePhase
from coalesce_client.ui.tray import SenderTray
from coalesce_common.cloud.rest import CloudError, DeviceCredentials
from coalesce_common.signaling.xmpp import XmppAccount
from tests.client_ui.conftest import WAIT_MS, ReceiverFactory, SenderFactory
from tests.client_ui.test_flows import type_address, wait_sharing


def test_a_meeting_id_before_enrolling_says_where_to_enroll(make_sender: SenderFactory, qtbot: QtBot) -> None:
    app = make_sender()
    type_address(qtbot, app, "123 456 7890")
    message = app.window.connect_page.message
    qtbot.waitUntil(
        lambda: message.isVisible() and "open Settings and enroll" in message.text(), timeout=WAIT_MS
    )
    assert app.models.session.phase is SharePhase.IDLE


def test_enrolling_reports_a_suspended_device_then_succeeds(make_sender: SenderFactory, qtbot: QtBot) -> None:
    calls: list[dict[str, Any]] = []
    outcomes: list[Exception | DeviceCredentials] = [
        CloudError("This device is suspended until 2026-12-01 by your IT administrator.", "device_suspended"),
        DeviceCredentials(
            api_url="https://cloud.example",
            device_id="dev-42",
            token="t",
            org="Acme",
            xmpp=XmppAccount("dev-42@cloud.example", "p", "cloud.example", 5222, False, None),
        ),
    ]

    async def enroll(url: str, code: str, name: str, **kwargs: Any) -> DeviceCredentials:
        calls.append({"url": url, "code": code, "name": name, **kwargs})
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    app = make_sender(services={"enroll": enroll})
    app.window.open_settings()
    dialog = app.window.settings_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.cloud_edit, "https://cloud.example")
    qtbot.keyClicks(dialog.code_edit, "ABCD-1234")
    qtbot.mouseClick(dialog.enroll_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "suspended until 2026-12-01" in dialog.enroll_message.text(), timeout=WAIT_MS)
    assert dialog.enroll_button.isEnabled()

    qtbot.mouseClick(dialog.enroll_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: app.models.account.enrolled, timeout=WAIT_MS)
    assert dialog.account_label.text() == "Enrolled with https://cloud.example as device dev-42 of Acme."
    assert calls[-1]["service"] == "coalesce-sender" and calls[-1]["kind"] == "sender"
    assert calls[-1]["code"] == "ABCD-1234" and calls[-1]["ca_file"] is None
    assert app.models.settings.settings.cloud_url == "https://cloud.example"


def test_the_update_banner_offers_notes_and_install(make_sender: SenderFactory, qtbot: QtBot) -> None:
    app = make_sender()
    banner = app.window.update_banner
    assert not banner.isVisible()
    app.models.update.offer("9.0.0", "Faster sharing.")
    assert banner.isVisible() and banner.title.text() == "Coalesce 9.0.0 is available."
    assert not banner.notes.isVisible()
    qtbot.mouseClick(banner.notes_button, Qt.MouseButton.LeftButton)
    assert banner.notes.isVisible() and banner.notes.text() == "Faster sharing."
    app.models.update.failed("The downloaded update does not match its signed checksum, so it was deleted.")
    assert banner.message.isVisible() and banner.install_button.text() == "Try &again"
    qtbot.mouseClick(banner.later_button, Qt.MouseButton.LeftButton)
    assert app.models.update.phase is UpdatePhase.NONE and not banner.isVisible()


def test_the_tray_menu_follows_the_share(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver()
    app = make_sender()
    tray = SenderTray(app.controller, app.window)  # the offscreen platform has no tray to show it in
    try:
        assert tray.share_action.text() == "Share…" and not tray.stop_action.isEnabled()
        type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
        wait_sharing(qtbot, app)
        assert tray.stop_action.isEnabled() and not tray.share_action.isEnabled()
        assert tray.icon.toolTip() == "Coalesce: sharing to Room 1"
        tray.stop_action.trigger()
        qtbot.waitUntil(lambda: app.models.session.phase is SharePhase.IDLE, timeout=WAIT_MS)
        assert tray.share_action.text() == f"Share to 127.0.0.1:{receiver.port}"
        tray.share_action.trigger()  # again, to the last receiver
        wait_sharing(qtbot, app)
    finally:
        tray.detach()


def test_quitting_while_sharing_tells_the_receiver(
    make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot, run: Any
) -> None:
    receiver = make_receiver()
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: len(receiver.model.shares) == 1, timeout=WAIT_MS)
    run(app.controller.aclose())
    qtbot.waitUntil(lambda: receiver.model.shares == [], timeout=WAIT_MS)
    assert app.models.session.phase is SharePhase.IDLE
