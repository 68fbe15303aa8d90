"""The screen while sharing: where to, how the link is doing, which screen and camera, Pause and Stop.

Screens are offered as thumbnails (refreshed every few seconds by the controller); the camera as a switch,
a choice of camera and a small preview of what the room display receives. Changing either changes the
live share (same tile in the room, no new PIN); a change that cannot be made is said on the status line.
Sharing as the room's moderator, the status line starts with "Moderator" and the room panel
(:mod:`~coalesce_client.ui.room_panel`) steers the room display.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from coalesce_client.models.media import MediaSources, Monitor
from coalesce_client.models.session import SharePhase, ShareSession
from coalesce_client.ui.controller import SenderController
from coalesce_client.ui.images import rgb_pixmap
from coalesce_client.ui.room_panel import RoomPanel
from coalesce_client.ui.widgets import heading, line_height, message_label, show_message

_NO_SCREEN = 0
_VIDEO_FILE = "file"
_THUMBNAIL_COLUMNS = 3


class SharingPage(QWidget):
    def __init__(
        self,
        session: ShareSession,
        media: MediaSources,
        controller: SenderController,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("sharing-page")
        self._session = session
        self._media = media
        self._controller = controller
        self._unsubscribe: list[Callable[[], None]] = []
        self._screen_buttons: dict[int, QToolButton] = {}
        self._monitor_shape: list[tuple[int, int, int]] = []

        layout = QVBoxLayout(self)
        self.title = heading("Sharing", self)
        self.title.setObjectName("sharing-title")
        layout.addWidget(self.title)
        self.status = QLabel(self)
        self.status.setObjectName("sharing-status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.message = message_label(self, name="sharing-message")
        layout.addWidget(self.message)

        self.room_panel = RoomPanel(session, controller, self)
        layout.addWidget(self.room_panel)

        screens = QGroupBox("Screen", self)
        screens_layout = QVBoxLayout(screens)
        self.screen_grid = QGridLayout()
        screens_layout.addLayout(self.screen_grid)
        self.screen_group = QButtonGroup(self)
        self.screen_group.setExclusive(True)
        self.no_screen_button = QToolButton(screens)
        self.no_screen_button.setObjectName("no-screen-button")
        self.no_screen_button.setText("No screen (camera only)")
        self.no_screen_button.setCheckable(True)
        self.screen_group.addButton(self.no_screen_button, _NO_SCREEN)
        self.screen_problem = QLabel(screens)
        self.screen_problem.setWordWrap(True)
        screens_layout.addWidget(self.screen_problem)
        screens_layout.addWidget(self.no_screen_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.sound_check = QCheckBox(
            "Share my computer's &sound (what it plays, not the microphone)", screens
        )
        self.sound_check.setObjectName("sound-check")
        sound_row = QHBoxLayout()
        sound_row.addWidget(self.sound_check, 1)
        self.sound_volume = QSlider(Qt.Orientation.Horizontal, screens)
        self.sound_volume.setObjectName("sound-volume")
        self.sound_volume.setAccessibleName("Volume of the shared sound")
        self.sound_volume.setToolTip("How loud your computer's sound is sent to the room")
        self.sound_volume.setRange(0, 100)
        self.sound_volume.setMaximumWidth(line_height(self, 8))
        sound_row.addWidget(self.sound_volume)
        screens_layout.addLayout(sound_row)
        self.sound_status = QLabel(screens)
        self.sound_status.setObjectName("sound-status")
        self.sound_status.setWordWrap(True)
        screens_layout.addWidget(self.sound_status)
        layout.addWidget(screens)

        camera = QGroupBox("Camera", self)
        camera_layout = QHBoxLayout(camera)
        camera_controls = QVBoxLayout()
        self.camera_check = QCheckBox("Show my &camera too", camera)
        self.camera_check.setObjectName("camera-check")
        camera_controls.addWidget(self.camera_check)
        self.camera_combo = QComboBox(camera)
        self.camera_combo.setObjectName("camera-combo")
        self.camera_combo.setAccessibleName("Camera")
        self.camera_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        camera_controls.addWidget(self.camera_combo)
        camera_controls.addStretch(1)
        camera_layout.addLayout(camera_controls, 1)
        self.preview = QLabel(camera)
        self.preview.setObjectName("camera-preview")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedSize(self._preview_size())
        self.preview.setFrameShape(QLabel.Shape.StyledPanel)
        camera_layout.addWidget(self.preview)
        layout.addWidget(camera)
        layout.addStretch(1)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.pause_button = QPushButton("&Pause", self)
        self.pause_button.setObjectName("pause-button")
        self.pause_button.setCheckable(True)
        self.stop_button = QPushButton("S&top sharing", self)
        self.stop_button.setObjectName("stop-button")
        self.stop_button.setDefault(True)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        layout.addLayout(buttons)

        self.screen_group.idClicked.connect(self._screen_clicked)
        self.camera_check.toggled.connect(self._camera_changed)
        self.sound_check.toggled.connect(controller.choose_sound)
        self.sound_volume.valueChanged.connect(lambda value: controller.set_sound_volume(value / 100))
        self.camera_combo.activated.connect(self._camera_changed)
        self.pause_button.toggled.connect(controller.set_paused)
        self.stop_button.clicked.connect(controller.stop)
        self._unsubscribe.append(session.subscribe(self._sync))
        self._unsubscribe.append(media.subscribe(self._sync_media))
        self._sync_media()
        self._sync()

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def _thumbnail_size(self) -> QSize:
        width = line_height(self, 9)
        return QSize(width, width * 9 // 16)

    def _preview_size(self) -> QSize:
        width = line_height(self, 8)
        return QSize(width, width * 3 // 4)

    # -- actions ----------------------------------------------------------------------------------

    def _screen_clicked(self, button_id: int) -> None:
        self._controller.choose_screen(None if button_id == _NO_SCREEN else button_id)
        self._sync()  # the controller may refuse (no camera either): show what holds

    def _camera_changed(self) -> None:
        if not self.camera_check.isChecked():
            self._controller.choose_camera(None)
            self._sync()
            return
        spec = self.camera_combo.currentData()
        if spec == _VIDEO_FILE:
            path, _ = QFileDialog.getOpenFileName(
                self, "Share a video file as the camera", "", "Videos (*.mp4 *.avi *.mkv *.mov *.webm)"
            )
            if path:
                self._controller.add_camera_file(path)
                spec = path
            else:
                spec = None
        if isinstance(spec, str):
            self._controller.choose_camera(spec)
        self._sync()

    # -- views ------------------------------------------------------------------------------------

    def _sync(self) -> None:
        session = self._session
        self.title.setText(f"Sharing to {session.receiver_name}")
        if session.phase is SharePhase.STOPPING:
            status = "Stopping…"
        else:
            status = session.status.describe()
            if session.moderator:
                status = f"Moderator · {status}"
        if session.media_problem:
            status = session.media_problem
        self.status.setText(status)
        show_message(
            self.message,
            "Paused: the room display keeps showing the last picture." if session.paused else None,
            error=False,
        )
        media = session.media
        chosen = self.screen_group.button(media.screen if media.screen is not None else _NO_SCREEN)
        if chosen is not None:
            chosen.setChecked(True)
        self.no_screen_button.setEnabled(media.camera is not None or media.screen is None)
        with _blocked(self.sound_check, self.sound_volume):
            self.sound_check.setChecked(session.sound)
            self.sound_volume.setValue(round(session.sound_volume * 100))
            self.sound_volume.setEnabled(session.sound and session.phase is SharePhase.SHARING)
        if session.sound_problem:
            self.sound_status.setText(session.sound_problem)
        elif session.sound and session.phase is SharePhase.SHARING:
            self.sound_status.setText(
                "\N{SPEAKER WITH THREE SOUND WAVES} Your computer's sound is shared with the room."
            )
        else:
            self.sound_status.setText("")
        self.sound_status.setVisible(bool(self.sound_status.text()))
        with _blocked(self.camera_check, self.camera_combo, self.pause_button):
            self.camera_check.setChecked(media.camera is not None)
            self.camera_check.setEnabled(media.screen is not None or media.camera is None)
            index = self.camera_combo.findData(media.camera) if media.camera is not None else -1
            if index >= 0:
                self.camera_combo.setCurrentIndex(index)
            self.pause_button.setChecked(session.paused)
            self.pause_button.setText("&Resume" if session.paused else "&Pause")
        steady = session.phase is SharePhase.SHARING
        self.pause_button.setEnabled(steady)
        self.sound_check.setEnabled(steady)
        for button in self.screen_group.buttons():
            button.setEnabled(steady and (button is not self.no_screen_button or media.camera is not None))
        self.camera_check.setEnabled(steady and self.camera_check.isEnabled())
        self.camera_combo.setEnabled(steady and self.camera_combo.count() > 0)
        self.preview.setVisible(media.camera is not None)
        self.room_panel.sync()

    def _sync_media(self) -> None:
        media = self._media
        shape = [(m.index, m.width, m.height) for m in media.monitors]
        if shape != self._monitor_shape:
            self._rebuild_screens(media.monitors)
            self._monitor_shape = shape
        for monitor in media.monitors:
            button = self._screen_buttons.get(monitor.index)
            if button is not None and monitor.thumbnail is not None:
                button.setIcon(rgb_pixmap(monitor.thumbnail))
        self.screen_problem.setText(media.screen_problem or "")
        self.screen_problem.setVisible(bool(media.screen_problem))
        with _blocked(self.camera_combo):
            current = self.camera_combo.currentData()
            self.camera_combo.clear()
            for camera in media.cameras:
                self.camera_combo.addItem(camera.label, camera.spec)
            self.camera_combo.addItem("A video file…", _VIDEO_FILE)
            wanted = self._session.media.camera or (current if current != _VIDEO_FILE else None)
            index = self.camera_combo.findData(wanted) if wanted is not None else -1
            self.camera_combo.setCurrentIndex(max(0, index))
        if media.camera_preview is not None:
            pixmap = rgb_pixmap(media.camera_preview)
            self.preview.setPixmap(
                pixmap.scaled(
                    self.preview.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        else:
            self.preview.setText("No picture yet")
        self._sync()

    def _rebuild_screens(self, monitors: list[Monitor]) -> None:
        for button in self._screen_buttons.values():
            self.screen_group.removeButton(button)
            button.deleteLater()
        self._screen_buttons.clear()
        for position, monitor in enumerate(monitors):
            button = QToolButton(self)
            button.setObjectName(f"screen-button-{monitor.index}")
            button.setText(monitor.label)
            button.setAccessibleName(monitor.label)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setIconSize(self._thumbnail_size())
            button.setCheckable(True)
            button.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            self.screen_group.addButton(button, monitor.index)
            row, column = divmod(position, _THUMBNAIL_COLUMNS)
            self.screen_grid.addWidget(button, row, column)
            self._screen_buttons[monitor.index] = button


class _blocked:
    """Block the widgets' signals while the view is set from the model (no echo back to the controller)."""

    def __init__(self, *widgets: QWidget) -> None:
        self._widgets = widgets

    def __enter__(self) -> None:
        for widget in self._widgets:
            widget.blockSignals(True)

    def __exit__(self, *exc: object) -> None:
        for widget in self._widgets:
            widget.blockSignals(False)
