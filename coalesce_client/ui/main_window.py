"""The sender's window: a header with Settings, the update banner, and the first or the sharing screen.

It swaps screens and opens the PIN prompt and (sharing as the room's moderator) the prompt about senders
waiting to share as the share session changes; closing it either hides it to the tray (while sharing, when
there is a tray) or asks the app to quit (``closed``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from coalesce_client.models.session import JoinRequest, PinRequest
from coalesce_client.ui.connect_page import ConnectPage
from coalesce_client.ui.controller import SenderController
from coalesce_client.ui.images import app_icon
from coalesce_client.ui.join_dialog import JoinRequestDialog
from coalesce_client.ui.pin_dialog import PinDialog
from coalesce_client.ui.settings_dialog import SettingsDialog
from coalesce_client.ui.sharing_page import SharingPage
from coalesce_client.ui.update_banner import UpdateBanner
from coalesce_client.ui.widgets import heading, line_height, text_width


class MainWindow(QMainWindow):
    closed = Signal()
    """The user closed the window and it was not kept in the tray: the app should quit."""
    hidden_to_tray = Signal()

    def __init__(self, controller: SenderController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sender-window")
        self.setWindowTitle("Coalesce")
        self._controller = controller
        models = controller.models
        self._session = models.session
        self.hide_to_tray = False
        self.pin_dialog: PinDialog | None = None
        self._pin_request: PinRequest | None = None
        self.join_dialog: JoinRequestDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self._icon_live: bool | None = None

        central = QWidget(self)
        layout = QVBoxLayout(central)
        header = QHBoxLayout()
        header.addWidget(heading("Coalesce", central, scale=1.1), 1)
        self.settings_button = QPushButton("Se&ttings…", central)
        self.settings_button.setObjectName("settings-button")
        self.settings_button.setAutoDefault(False)
        self.settings_button.clicked.connect(self.open_settings)
        header.addWidget(self.settings_button)
        layout.addLayout(header)
        self.update_banner = UpdateBanner(models.update, controller, central)
        layout.addWidget(self.update_banner)
        self.pages = QStackedWidget(central)
        self.connect_page = ConnectPage(models.receivers, models.session, controller, self.pages)
        self.sharing_page = SharingPage(models.session, models.media, controller, self.pages)
        self.pages.addWidget(self.connect_page)
        self.pages.addWidget(self.sharing_page)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        # Spelled out: the standard Preferences and Quit keys are empty on some platforms (Ctrl = Cmd on Macs)
        QShortcut(QKeySequence("Ctrl+,"), self, self.open_settings)
        QShortcut(QKeySequence("Ctrl+Q"), self, self.quit)
        self._quitting = False
        self._unsubscribe: Callable[[], None] = self._session.subscribe(self._sync)
        self._sync()
        self.resize(text_width(self, 84), line_height(self, 38))

    def detach(self) -> None:
        """Stop observing the models (before the models outlive a closed window)."""
        self._unsubscribe()
        self.connect_page.detach()
        self.sharing_page.detach()
        self.update_banner.detach()

    def open_settings(self) -> None:
        if self.settings_dialog is not None and self.settings_dialog.isVisible():
            self.settings_dialog.raise_()
            return
        self.settings_dialog = SettingsDialog(self._controller, self)
        self.settings_dialog.open()

    def quit(self) -> None:
        """Close for good, even while sharing (Ctrl+Q, the tray's Quit)."""
        self._quitting = True
        self.close()

    def show_and_raise(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.hide_to_tray and self._session.sharing and not self._quitting:
            event.ignore()
            self.hide()
            self.hidden_to_tray.emit()
            return
        event.accept()
        self.closed.emit()

    def _sync(self) -> None:
        session = self._session
        self.pages.setCurrentWidget(self.sharing_page if session.sharing else self.connect_page)
        if session.sharing != self._icon_live:
            self._icon_live = session.sharing
            self.setWindowIcon(app_icon(live=session.sharing))
        self._sync_pin(session.pin_request)
        self._sync_joins(session.join_requests)

    def _sync_pin(self, request: PinRequest | None) -> None:
        if request is self._pin_request:
            return
        self._pin_request = request
        if self.pin_dialog is not None:
            dialog, self.pin_dialog = self.pin_dialog, None
            dialog.accepted.disconnect()
            dialog.rejected.disconnect()
            dialog.close()
            dialog.deleteLater()
        if request is None:
            return
        dialog = PinDialog(request, self)
        dialog.accepted.connect(lambda: self._controller.submit_pin(dialog.pin()))
        dialog.rejected.connect(self._controller.cancel_pin)
        self.pin_dialog = dialog
        dialog.open()

    def _sync_joins(self, requests: list[JoinRequest]) -> None:
        if not requests:
            if self.join_dialog is not None and self.join_dialog.request is not None:
                self.join_dialog.clear()
            return
        if self.join_dialog is None:
            self.join_dialog = JoinRequestDialog(self._session, self)
        self.join_dialog.show_request(requests[0], more_waiting=len(requests) - 1)
