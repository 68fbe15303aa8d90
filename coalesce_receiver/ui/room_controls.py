"""The room's controls: the moderator's join-request bar and the admin-locked settings dialog.

Both act only through the :class:`RoomActions` they are handed (the receiver service); neither holds
network state.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from coalesce_common.protocol.pin import MAX_DIGITS as PIN_MAX_DIGITS
from coalesce_common.protocol.pin import RULE as PIN_RULE
from coalesce_common.protocol.pin import is_valid_pin
from coalesce_receiver.models.room import JoinRequest, RoomActions, RoomModel, SettingsOutcome


class JoinRequestBar(QWidget):
    """ "<name> wants to share" with Allow and Deny (keys A and D), for moderated rooms."""

    def __init__(self, actions: RoomActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("joinRequestBar")
        self._actions = actions
        self._request: JoinRequest | None = None
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(30, 41, 59, 235))
        palette.setColor(QPalette.ColorRole.WindowText, QColor(245, 247, 250))
        self.setPalette(palette)
        self.message = QLabel(self)
        self.message.setObjectName("joinRequestText")
        self.allow = QPushButton("Allow (A)", self)
        self.allow.setObjectName("allowButton")
        self.deny = QPushButton("Deny (D)", self)
        self.deny.setObjectName("denyButton")
        self.allow.clicked.connect(lambda: self.answer(True))
        self.deny.clicked.connect(lambda: self.answer(False))
        layout = QHBoxLayout(self)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.allow)
        layout.addWidget(self.deny)
        self.hide()

    def show_requests(self, requests: list[JoinRequest]) -> None:
        self._request = requests[0] if requests else None
        if self._request is None:
            self.hide()
            return
        more = f"  (+{len(requests) - 1} waiting)" if len(requests) > 1 else ""
        self.message.setText(f"{self._request.sender_name} wants to share{more}")
        self.show()
        self.raise_()

    def answer(self, approve: bool) -> None:
        if self._request is not None:
            self._actions.decide(self._request.share_id, approve)


class SettingsDialog(QDialog):
    """Change the PIN, its rotation or the lock at the box; every change needs the admin password."""

    def __init__(self, model: RoomModel, actions: RoomActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{model.name} — settings")
        self._actions = actions
        self.password = QLineEdit(self)
        self.password.setObjectName("adminPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_pin = QLineEdit(model.pin or "", self)
        self.new_pin.setObjectName("newPin")
        self.new_pin.setMaxLength(PIN_MAX_DIGITS)
        self.open_room = QCheckBox("Open room (no PIN)", self)
        self.open_room.setChecked(model.pin is None)
        self.rotate = QCheckBox("New random PIN for every meeting", self)
        self.rotate.setChecked(model.pin_rotation)
        self.locked = QCheckBox("Locked: no new shares (those on screen go on)", self)
        self.locked.setObjectName("lockedRoom")
        self.locked.setChecked(model.locked)
        self.error = QLabel(self)
        self.error.setObjectName("settingsError")
        self.error.setStyleSheet("color: #d1242f")
        form = QFormLayout()
        form.addRow("Admin password", self.password)
        form.addRow(f"PIN ({PIN_RULE})", self.new_pin)
        form.addRow("", self.open_room)
        form.addRow("", self.rotate)
        form.addRow("", self.locked)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self._save = buttons.button(QDialogButtonBox.StandardButton.Save)
        buttons.accepted.connect(self.apply)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.open_room.toggled.connect(lambda checked: self.new_pin.setEnabled(not checked))
        self.new_pin.setEnabled(model.pin is not None)

    def apply(self) -> None:
        """Ask the receiver to apply the form; the dialog closes when it says it did."""
        pin = None if self.open_room.isChecked() else self.new_pin.text().strip()
        if pin is not None and not is_valid_pin(pin):
            self.error.setText(f"A PIN is {PIN_RULE}.")
            return
        self.error.setText("Checking the admin password…")
        self._save.setEnabled(False)
        self._actions.change_settings(
            self.password.text(),
            pin=pin,
            rotate=self.rotate.isChecked(),
            done=self._applied,
            locked=self.locked.isChecked(),
        )

    def _applied(self, outcome: SettingsOutcome) -> None:
        self._save.setEnabled(True)
        if outcome is SettingsOutcome.APPLIED:
            self.password.clear()
            self.error.clear()
            self.accept()
        elif outcome is SettingsOutcome.INVALID_PIN:
            self.error.setText(f"A PIN is {PIN_RULE}.")
        else:
            self.error.setText("Wrong admin password, or no admin password is set for this box.")
