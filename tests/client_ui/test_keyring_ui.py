"""With no OS keyring, the Settings dialog says so beside the password and offers "for this session only"."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from coalesce_client.settings import save_proxy
from coalesce_common.net.proxy import ProxyConfig
from tests.client_ui.conftest import Runner, SenderFactory, off_the_loop

NO_KEYRING = (
    "No system keyring is working on this computer (found: none), so Coalesce cannot keep the secret."
)


def _refuse_passwords(config: ProxyConfig) -> Path:
    """save_proxy as it behaves with no OS keyring, for configs with a password; the real one otherwise."""
    assert config.password is None and (
        config.url is None or ":" not in config.url.split("//")[1].split("@")[0]
    )
    return save_proxy(config)


def test_no_keyring_is_said_where_the_password_is_typed_and_it_can_be_used_for_this_session(
    make_sender: SenderFactory, qtbot: QtBot, run: Runner, isolated_home: Path
) -> None:
    app = make_sender(services={"keyring_problem": lambda: NO_KEYRING, "save_proxy": _refuse_passwords})
    qtbot.waitUntil(lambda: app.models.proxy.keyring_problem == NO_KEYRING)
    app.window.open_settings()
    dialog = app.window.settings_dialog
    assert dialog is not None
    assert dialog.keyring_problem.text() == NO_KEYRING and not dialog.keyring_problem.isHidden()
    assert dialog.kept_label.isHidden(), "no promise of a keyring that does not work"
    assert not dialog.session_only_box.isHidden() and not dialog.session_only_box.isChecked()
    assert not dialog.enroll_session_only_box.isHidden()

    dialog.mode_buttons["manual"].click()
    qtbot.keyClicks(dialog.host_edit, "proxy.corp")
    qtbot.keyClicks(dialog.port_edit, "3128")
    qtbot.keyClicks(dialog.user_edit, "alice")
    qtbot.keyClicks(dialog.password_edit, "s3cret")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible(), "a password that cannot be kept is not dropped silently"
    assert "for this session only" in dialog.proxy_error.text()

    dialog.session_only_box.setChecked(True)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: app.models.proxy.config.url == "http://alice:s3cret@proxy.corp:3128")
    assert app.models.proxy.session_only and not dialog.isVisible()
    text = off_the_loop(run, (isolated_home / "config" / "coalesce" / "sender.json").read_text)
    assert json.loads(text)["proxy"] == {"mode": "manual", "url": "http://alice@proxy.corp:3128"}


def test_with_a_working_keyring_no_session_only_offer_is_shown(make_sender: SenderFactory) -> None:
    app = make_sender()  # the tests' file keyring, named by PYTHON_KEYRING_BACKEND: it works
    app.window.open_settings()
    dialog = app.window.settings_dialog
    assert dialog is not None
    assert app.models.proxy.keyring_problem is None
    assert dialog.session_only_box.isHidden() and dialog.enroll_session_only_box.isHidden()
    assert not dialog.kept_label.isHidden()
