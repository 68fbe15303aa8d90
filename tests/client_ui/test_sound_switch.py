"""The sender app's "Share my computer's sound" switch, against a real receiver and a private PulseAudio."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from coalesce_testing.pulse import SINKS, PulseServer
from tests.client_ui.conftest import PIN, SENDER_NAME, WAIT_MS, ReceiverFactory, SenderFactory
from tests.client_ui.test_flows import enter_pin, shown_senders, type_address, wait_sharing


def test_sound_is_off_until_switched_on_and_can_be_switched_during_the_share(
    pulse: PulseServer, make_receiver: ReceiverFactory, make_sender: SenderFactory, qtbot: QtBot
) -> None:
    receiver = make_receiver(pin=PIN, sound_output=SINKS["room"])
    app = make_sender()
    type_address(qtbot, app, f"127.0.0.1:{receiver.port}")
    enter_pin(qtbot, app, PIN)
    wait_sharing(qtbot, app)
    page = app.window.sharing_page
    qtbot.waitUntil(lambda: shown_senders(receiver) == [SENDER_NAME], timeout=WAIT_MS)
    assert not page.sound_check.isChecked() and receiver.model.audible is None  # off until turned on
    assert not page.sound_status.isVisible()

    qtbot.mouseClick(page.sound_check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: receiver.model.audible is not None, timeout=WAIT_MS)
    assert page.sound_status.isVisible()
    assert page.sound_status.text().endswith("Your computer's sound is shared with the room.")
    assert page.sound_volume.isEnabled() and page.sound_volume.value() == 100
    page.sound_volume.setValue(40)
    assert app.models.session.sound_volume == 0.4

    qtbot.mouseClick(page.sound_check, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: receiver.model.audible is None, timeout=WAIT_MS)
    assert not page.sound_status.isVisible() and app.models.session.phase.value == "sharing"
    assert not page.sound_volume.isEnabled()
