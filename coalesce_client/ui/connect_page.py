"""The first screen: room displays found nearby, a field for an address or meeting ID, and Share.

Enter in the field (or on a listed room) shares; while connecting, Share becomes Cancel. Errors from the
last attempt are shown under the buttons in the words the services wrote for users. "Join as moderator"
(kept in the share session) makes the next share pair with the room's moderator PIN.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from coalesce_client.models.destination import format_meeting_id
from coalesce_client.models.receivers import ReceiverList, receiver_key
from coalesce_client.models.session import SharePhase, ShareSession
from coalesce_client.ui.controller import SenderController
from coalesce_client.ui.widgets import heading, line_height, message_label, show_message
from coalesce_common.discovery import ReceiverInfo

_RECEIVER_ROLE = Qt.ItemDataRole.UserRole


def receiver_text(info: ReceiverInfo) -> str:
    return f"{info.name}\n{info.access.describe()} · {info.addresses[0]}:{info.port}"


class ConnectPage(QWidget):
    def __init__(
        self,
        receivers: ReceiverList,
        session: ShareSession,
        controller: SenderController,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("connect-page")
        self._receivers = receivers
        self._session = session
        self._controller = controller
        self._unsubscribe: list[Callable[[], None]] = []

        layout = QVBoxLayout(self)
        layout.addWidget(heading("Share your screen", self))
        intro = QLabel("Pick the room display you are in front of, or type what it shows.", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)

        list_label = QLabel("&Room displays on this network", self)
        layout.addWidget(list_label)
        self.receiver_list = QListWidget(self)
        self.receiver_list.setObjectName("receiver-list")
        self.receiver_list.setAccessibleName("Room displays on this network")
        self.receiver_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.receiver_list.setMinimumHeight(line_height(self, 7))
        self.receiver_list.setAlternatingRowColors(True)
        self.receiver_list.setSpacing(2)
        list_label.setBuddy(self.receiver_list)
        layout.addWidget(self.receiver_list, 1)
        self.list_status = QLabel(self)
        self.list_status.setObjectName("receiver-list-status")
        self.list_status.setWordWrap(True)
        layout.addWidget(self.list_status)

        field_label = QLabel("Or type the &address or meeting ID shown on the room display", self)
        field_label.setWordWrap(True)
        layout.addWidget(field_label)
        self.destination_edit = QLineEdit(self)
        self.destination_edit.setObjectName("destination-edit")
        self.destination_edit.setAccessibleName("Address or meeting ID")
        self.destination_edit.setPlaceholderText("for example 192.168.1.40:8443 or 123 456 7890")
        self.destination_edit.setClearButtonEnabled(True)
        field_label.setBuddy(self.destination_edit)
        layout.addWidget(self.destination_edit)
        self.moderator_check = QCheckBox("Join as &moderator (use the moderator PIN)", self)
        self.moderator_check.setObjectName("moderator-check")
        self.moderator_check.setToolTip(
            "Pair with the room's moderator PIN and decide who else may share to the room display."
        )
        layout.addWidget(self.moderator_check)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("cancel-button")
        self.share_button = QPushButton("&Share", self)
        self.share_button.setObjectName("share-button")
        self.share_button.setDefault(True)
        self.share_button.setAutoDefault(True)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.share_button)
        layout.addLayout(buttons)
        self.message = message_label(self, name="connect-message")
        layout.addWidget(self.message)
        self.replace_button = QPushButton("&Replace the oldest share", self)
        self.replace_button.setObjectName("replace-button")
        self.replace_button.setToolTip(
            "End the share that has been on the room display longest, and show yours."
        )
        self.replace_button.hide()
        layout.addWidget(self.replace_button, 0, Qt.AlignmentFlag.AlignLeft)

        self.setTabOrder(self.receiver_list, self.destination_edit)
        self.setTabOrder(self.destination_edit, self.moderator_check)
        self.setTabOrder(self.moderator_check, self.share_button)
        self.setTabOrder(self.share_button, self.cancel_button)

        self.share_button.clicked.connect(self._share)
        self.cancel_button.clicked.connect(controller.stop)
        self.replace_button.clicked.connect(controller.share_replacing)
        self.moderator_check.toggled.connect(session.set_moderator)
        self.destination_edit.returnPressed.connect(self._share)
        self.destination_edit.textEdited.connect(self._typed)
        self.receiver_list.itemActivated.connect(self._activated)
        self.receiver_list.itemClicked.connect(lambda item: self.destination_edit.clear())

        self._unsubscribe.append(receivers.subscribe(self._sync_receivers))
        self._unsubscribe.append(session.subscribe(self._sync_session))
        self._prefill()
        self._sync_receivers()
        self._sync_session()

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def _prefill(self) -> None:
        last = self._controller.models.settings.settings.last_destination
        if last is None:
            return
        self.destination_edit.setText(format_meeting_id(last.meeting_id) if last.is_meeting else last.address)

    # -- actions ----------------------------------------------------------------------------------

    def _share(self) -> None:
        if self._session.active:
            return
        text = self.destination_edit.text().strip()
        item = self.receiver_list.currentItem()
        if not text and item is not None and item.isSelected():
            self._controller.share_receiver(item.data(_RECEIVER_ROLE))
        else:
            self._controller.share_typed(text)

    def _activated(self, item: QListWidgetItem) -> None:
        self.destination_edit.clear()
        if not self._session.active:
            self._controller.share_receiver(item.data(_RECEIVER_ROLE))

    def _typed(self, text: str) -> None:
        if text:
            self.receiver_list.clearSelection()
        self._session.clear_messages()

    # -- views ------------------------------------------------------------------------------------

    def _sync_receivers(self) -> None:
        receivers = self._receivers.receivers
        selected = self.receiver_list.currentItem()
        selected_key = receiver_key(selected.data(_RECEIVER_ROLE)) if selected is not None else None
        was_selected = selected is not None and selected.isSelected()
        self.receiver_list.clear()
        for info in receivers:
            item = QListWidgetItem(receiver_text(info))
            item.setData(_RECEIVER_ROLE, info)
            item.setToolTip(f"Certificate fingerprint {info.fingerprint}")
            self.receiver_list.addItem(item)
            if receiver_key(info) == selected_key:
                self.receiver_list.setCurrentItem(item)
                item.setSelected(was_selected)
        if self._receivers.problem:
            status = self._receivers.problem
        elif self._receivers.searching and not receivers:
            status = "Looking for room displays…"
        elif not receivers:
            status = "No room display answered on this network. Type the address it shows instead."
        else:
            status = ""
        self.list_status.setText(status)
        self.list_status.setVisible(bool(status))

    def _sync_session(self) -> None:
        session = self._session
        connecting = session.phase in (
            SharePhase.CONNECTING,
            SharePhase.WAITING_FOR_PIN,
            SharePhase.WAITING_TO_JOIN,
            SharePhase.STOPPING,
        )
        self.share_button.setEnabled(not session.active)
        self.cancel_button.setVisible(connecting)
        self.destination_edit.setReadOnly(session.active)
        self.moderator_check.blockSignals(True)
        self.moderator_check.setChecked(session.moderator)
        self.moderator_check.blockSignals(False)
        self.moderator_check.setEnabled(not session.active)
        self.replace_button.setVisible(session.can_replace and not session.active)
        if session.phase is SharePhase.WAITING_FOR_PIN:
            pin = "its moderator PIN" if session.moderator else "its PIN"
            show_message(self.message, f"{session.receiver_name} needs {pin}.", error=False)
        elif session.phase is SharePhase.WAITING_TO_JOIN:
            show_message(
                self.message,
                f"Waiting for {session.receiver_name} to let you in… (Cancel to give up)",
                error=False,
            )
        elif connecting:
            show_message(self.message, f"Connecting to {session.receiver_name}…", error=False)
        elif session.error:
            show_message(self.message, session.error, error=True)
        else:
            show_message(self.message, session.notice, error=False)
