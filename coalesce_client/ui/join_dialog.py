"""The moderator's prompt: "<name> wants to share", Allow or Deny, one waiting sender at a time.

It is not modal, so the sharing window (Stop included) stays usable while a request waits, and it is shown
with ``show()``: never ``exec()``, which would nest an event loop inside the model listener that opens it
(see :mod:`coalesce_client.ui.app`); nor ``open()``, which would make it window-modal. Deny is the default
button, so Enter (and Escape, or closing the prompt) denies; Alt+A allows, Alt+D denies. Several waiting
senders queue in the session: the prompt shows the first and how many more wait, and moves on to the next
once answered. The answer goes to :meth:`ShareSession.answer_join`, which the controller awaits.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from coalesce_client.models.session import JoinRequest, ShareSession
from coalesce_client.ui.widgets import heading, text_width


class JoinRequestDialog(QDialog):
    """Asks about the first of ``session.join_requests``; the main window calls :meth:`show_request`."""

    def __init__(self, session: ShareSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("join-request-dialog")
        self.setWindowTitle("Someone wants to share")
        self.setModal(False)
        self._session = session
        self.request: JoinRequest | None = None
        layout = QVBoxLayout(self)
        self.question = heading("", self, scale=1.2)
        self.question.setObjectName("join-request-question")
        self.question.setMinimumWidth(text_width(self, 36))
        layout.addWidget(self.question)
        hint = QLabel(
            "You moderate this room: their share appears on the room display once you allow it.", self
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.waiting = QLabel(self)
        self.waiting.setObjectName("join-request-waiting")
        layout.addWidget(self.waiting)
        self.buttons = QDialogButtonBox(self)
        self.allow_button = self.buttons.addButton("&Allow", QDialogButtonBox.ButtonRole.AcceptRole)
        self.allow_button.setObjectName("join-allow-button")
        self.deny_button = self.buttons.addButton("&Deny", QDialogButtonBox.ButtonRole.RejectRole)
        self.deny_button.setObjectName("join-deny-button")
        self.allow_button.clicked.connect(lambda: self._answer(True))
        self.deny_button.clicked.connect(lambda: self._answer(False))
        layout.addWidget(self.buttons)

    def show_request(self, request: JoinRequest, *, more_waiting: int = 0) -> None:
        """Ask about ``request`` (unchanged if already asking about it); raise the prompt if it was hidden."""
        if request is not self.request:
            self.request = request
            self.question.setText(f"{request.sender_name} wants to share")
            self.setAccessibleDescription(f"{request.sender_name} wants to share. Allow or deny?")
            self.deny_button.setDefault(True)
            self.deny_button.setFocus()
        self.waiting.setText(f"{more_waiting} more waiting after them." if more_waiting else "")
        self.waiting.setVisible(more_waiting > 0)
        if not self.isVisible():
            self.show()
            self.raise_()
            self.activateWindow()

    def clear(self) -> None:
        """Nobody waits any more: hide the prompt."""
        self.request = None
        self.hide()

    def reject(self) -> None:
        """Escape and the window's close button deny (the prompt then moves on to the next request)."""
        if self.request is not None:
            self._answer(False)
        else:
            super().reject()

    def _answer(self, allow: bool) -> None:
        if self.request is not None:
            self._session.answer_join(self.request, allow)
