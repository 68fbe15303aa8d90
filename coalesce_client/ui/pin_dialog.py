"""The PIN prompt: digits only, Enter to share, Escape to give up; shows why the last PIN was refused.

Joining as the room's moderator, it asks for the moderator PIN instead of the one the room display shows.
"""

from __future__ import annotations

from PySide6.QtCore import QRegularExpression
from PySide6.QtGui import QFont, QRegularExpressionValidator
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from coalesce_client.models.session import PinRequest
from coalesce_client.ui.widgets import heading, message_label, show_message, text_width
from coalesce_common.protocol.pin import MAX_DIGITS as PIN_MAX_DIGITS
from coalesce_common.protocol.pin import RULE as PIN_RULE
from coalesce_common.protocol.pin import is_valid_pin


class PinDialog(QDialog):
    """Asks for the PIN of ``request.receiver_name``; :meth:`pin` after ``accepted``."""

    def __init__(self, request: PinRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("pin-dialog")
        if request.moderator:
            self.setWindowTitle(f"Moderator PIN for {request.receiver_name}")
            title = f"Moderator PIN for {request.receiver_name}"
            hint_text = "Whoever runs the room gives it out; it is not the PIN the room display shows."
        else:
            self.setWindowTitle(f"PIN for {request.receiver_name}")
            title = f"Enter the PIN for {request.receiver_name}"
            hint_text = "The room display shows it, beside its name and address."
        self.setModal(True)
        layout = QVBoxLayout(self)
        self.title = heading(title, self, scale=1.2)
        layout.addWidget(self.title)
        hint = QLabel(hint_text, self)
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.error_label = message_label(self, name="pin-error")
        show_message(self.error_label, request.error, error=True)
        layout.addWidget(self.error_label)
        self.pin_edit = QLineEdit(self)
        self.pin_edit.setObjectName("pin-edit")
        self.pin_edit.setAccessibleName("Moderator PIN" if request.moderator else "PIN")
        self.pin_edit.setPlaceholderText(PIN_RULE)
        self.pin_edit.setValidator(
            QRegularExpressionValidator(QRegularExpression(rf"[0-9]{{0,{PIN_MAX_DIGITS}}}"), self.pin_edit)
        )
        font = QFont(self.pin_edit.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 125)
        self.pin_edit.setFont(font)
        self.pin_edit.setMinimumWidth(text_width(self, 28))
        hint.setBuddy(self.pin_edit)
        layout.addWidget(self.pin_edit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.share_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.share_button.setText("Share")
        self.share_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.pin_edit.textChanged.connect(self._update_button)
        self._update_button()
        self.pin_edit.setFocus()

    def pin(self) -> str:
        return self.pin_edit.text()

    def accept(self) -> None:
        if is_valid_pin(self.pin()):
            super().accept()

    def _update_button(self) -> None:
        self.share_button.setEnabled(is_valid_pin(self.pin()))
