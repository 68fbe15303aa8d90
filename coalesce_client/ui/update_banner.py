"""The "update available" banner: version, release notes on request, Install, and how it went."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from coalesce_client.models.cloud import UpdateOffer, UpdatePhase
from coalesce_client.ui.controller import SenderController
from coalesce_client.ui.widgets import message_label, show_message


class UpdateBanner(QFrame):
    def __init__(
        self, offer: UpdateOffer, controller: SenderController, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("update-banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self._offer = offer
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.title = QLabel(self)
        self.title.setWordWrap(True)
        row.addWidget(self.title, 1)
        self.notes_button = QPushButton("What's &new", self)
        self.notes_button.setCheckable(True)
        self.install_button = QPushButton("&Install", self)
        self.install_button.setObjectName("install-button")
        self.later_button = QPushButton("&Later", self)
        self.folder_button = QPushButton("Open &folder", self)
        for button in (self.notes_button, self.install_button, self.later_button, self.folder_button):
            button.setAutoDefault(False)
            row.addWidget(button)
        layout.addLayout(row)
        self.notes = QLabel(self)
        self.notes.setObjectName("release-notes")
        self.notes.setWordWrap(True)
        layout.addWidget(self.notes)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        layout.addWidget(self.progress)
        self.message = message_label(self, name="update-message")
        layout.addWidget(self.message)
        self.notes_button.toggled.connect(lambda shown: self.notes.setVisible(shown and bool(offer.notes)))
        self.install_button.clicked.connect(controller.install_update)
        self.later_button.clicked.connect(offer.dismiss)
        self.folder_button.clicked.connect(self._open_folder)
        self._unsubscribe: Callable[[], None] = offer.subscribe(self._sync)
        self._sync()

    def detach(self) -> None:
        self._unsubscribe()

    def _open_folder(self) -> None:
        if self._offer.path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._offer.path.parent)))

    def _sync(self) -> None:
        offer = self._offer
        phase = offer.phase
        self.setVisible(phase is not UpdatePhase.NONE)
        self.title.setText(f"Coalesce {offer.version} is available.")
        self.notes.setText(offer.notes)
        self.notes.setVisible(self.notes_button.isChecked() and bool(offer.notes))
        self.notes_button.setVisible(bool(offer.notes))
        self.install_button.setVisible(phase in (UpdatePhase.AVAILABLE, UpdatePhase.FAILED))
        self.install_button.setText("Try &again" if phase is UpdatePhase.FAILED else "&Install")
        self.progress.setVisible(phase is UpdatePhase.DOWNLOADING)
        self.progress.setValue(round(offer.progress * 1000))
        self.folder_button.setVisible(phase is UpdatePhase.READY and offer.path is not None)
        if phase is UpdatePhase.FAILED:
            show_message(self.message, offer.message, error=True)
        else:
            show_message(self.message, offer.message if phase is UpdatePhase.READY else None, error=False)
