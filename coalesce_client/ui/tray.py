"""The system tray icon: Share to the last room, Stop, show the window, Quit.

Only made where the platform has a tray (:func:`tray_available`); elsewhere (a bare X server, offscreen)
the app runs with its window alone.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from coalesce_client.ui.controller import SenderController
from coalesce_client.ui.images import app_icon
from coalesce_client.ui.main_window import MainWindow


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


class SenderTray(QObject):
    def __init__(self, controller: SenderController, window: MainWindow) -> None:
        super().__init__(window)
        self._controller = controller
        self._window = window
        models = controller.models
        self._session = models.session
        self._settings = models.settings
        self.icon = QSystemTrayIcon(app_icon(), self)
        self.menu = QMenu()
        self.show_action = self.menu.addAction("Show Coalesce")
        self.share_action = self.menu.addAction("Share")
        self.stop_action = self.menu.addAction("Stop sharing")
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("Quit")
        self.show_action.triggered.connect(window.show_and_raise)
        self.share_action.triggered.connect(self._share)
        self.stop_action.triggered.connect(controller.stop)
        self.quit_action.triggered.connect(window.quit)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        window.hidden_to_tray.connect(self._hidden)
        self._unsubscribe: list[Callable[[], None]] = [
            self._session.subscribe(self._sync),
            self._settings.subscribe(self._sync),
        ]
        self._live: bool | None = None
        self._sync()
        self.icon.show()

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.icon.hide()

    def _share(self) -> None:
        if self._settings.settings.last_destination is not None:
            self._controller.share_last()
        else:
            self._window.show_and_raise()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason is QSystemTrayIcon.ActivationReason.Trigger:
            self._window.show_and_raise()

    def _hidden(self) -> None:
        self.icon.showMessage(
            "Coalesce is still sharing",
            "Use this icon to stop sharing or to show the window again.",
            QSystemTrayIcon.MessageIcon.Information,
            4000,
        )

    def _sync(self) -> None:
        session = self._session
        last = self._settings.settings.last_destination
        self.share_action.setText(f"Share to {last.label}" if last is not None else "Share…")
        self.share_action.setEnabled(not session.active)
        self.stop_action.setEnabled(session.active)
        self.icon.setToolTip(
            f"Coalesce: sharing to {session.receiver_name}" if session.sharing else "Coalesce: not sharing"
        )
        if session.sharing != self._live:
            self._live = session.sharing
            self.icon.setIcon(app_icon(live=session.sharing))
