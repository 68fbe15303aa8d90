"""The meeting-room display: how to join while nobody shares, the shares tiled full screen while they do.

:class:`RoomWindow` is handed a :class:`~coalesce_receiver.models.room.RoomModel`, subscribes to it and
re-lays itself out on every change; it holds no network or media logic. A ``QTimer`` pulls the newest frame
of every shown track (~30 Hz by default) and only tiles whose frames changed repaint. The window is meant to
run unattended: Escape does nothing, Ctrl+Q closes, F11 leaves or re-enters full screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QFont,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPalette,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import QLabel, QStackedLayout, QVBoxLayout, QWidget

from coalesce_receiver.models.room import RoomActions, RoomModel, ShareView
from coalesce_receiver.ui.room_controls import JoinRequestBar, SettingsDialog
from coalesce_receiver.ui.share_tile import ShareTile

DEFAULT_REFRESH_HZ = 30.0
"""How often the window asks the shown tracks for a new frame."""

_BACKGROUND = QColor(16, 20, 24)
_TEXT = QColor(245, 247, 250)
_SECONDARY_TEXT = QColor(201, 209, 217)
_PIN_TEXT = QColor(255, 209, 102)
_MAX_ADDRESSES_SHOWN = 3


def format_endpoint(address: str, port: int) -> str:
    """``host:port``, with IPv6 literals bracketed so the port stays unambiguous."""
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"{host}:{port}"


def tile_geometry(count: int, area: QRect, gap: int) -> list[QRect]:
    """Where ``count`` tiles go in ``area``: one fills it, two sit side by side, three or four share a 2x2
    grid (a third tile is centred in the bottom row)."""
    if count <= 0:
        return []
    if count == 1:
        return [QRect(area)]
    columns = 2
    rows = 1 if count == 2 else 2
    width = (area.width() - gap * (columns - 1)) // columns
    height = (area.height() - gap * (rows - 1)) // rows
    rects = []
    for index in range(count):
        row, column = divmod(index, columns)
        left = area.x() + column * (width + gap)
        if count == 3 and index == 2:
            left = area.x() + (area.width() - width) // 2
        rects.append(QRect(left, area.y() + row * (height + gap), width, height))
    return rects


def _scaled_font(base: QFont, pixel_size: float, *, bold: bool = False) -> QFont:
    font = QFont(base)
    font.setPixelSize(max(10, round(pixel_size)))
    font.setBold(bold)
    return font


def _label(parent: QWidget, name: str, colour: QColor) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText, colour)
    label.setPalette(palette)
    return label


def format_meeting_id(meeting_id: str) -> str:
    """Digits in groups of three, as people read them out: ``123 456 7890``."""
    groups = [meeting_id[i : i + 3] for i in range(0, len(meeting_id), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:  # never leave one digit alone at the end
        groups[-2:] = [groups[-2] + groups[-1]]
    return " ".join(groups)


class _IdleView(QWidget):
    """The screen nobody is sharing to: the room's name, its PIN if given, and how to join."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.room_name = _label(self, "roomName", _TEXT)
        self.pin = _label(self, "pin", _PIN_TEXT)
        self.meeting = _label(self, "meetingId", _PIN_TEXT)
        self.pin_status = _label(self, "pinStatus", _SECONDARY_TEXT)
        self.address = _label(self, "address", _TEXT)
        self.how_to_join = _label(self, "howToJoin", _SECONDARY_TEXT)
        self.update_notice = _label(self, "updateNotice", _PIN_TEXT)
        self.pin.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)

        layout = QVBoxLayout(self)
        layout.addStretch(3)
        for label in (
            self.room_name,
            self.meeting,
            self.pin,
            self.pin_status,
            self.address,
            self.how_to_join,
            self.update_notice,
        ):
            layout.addWidget(label)
        layout.addStretch(4)

    def show_room(self, model: RoomModel, pin: str | None) -> None:
        pin = model.pin if model.pin is not None else pin
        self.room_name.setText(model.name)
        self.update_notice.setVisible(model.update_notice is not None)
        self.update_notice.setText(model.update_notice or "")
        self.pin.setVisible(model.pin_required and pin is not None)
        self.pin.setText(f"PIN  {pin}" if pin is not None else "")
        self.meeting.setVisible(model.meeting_id is not None)
        self.meeting.setText(f"Meeting ID  {format_meeting_id(model.meeting_id)}" if model.meeting_id else "")
        self.pin_status.setText(
            "PIN required — enter the PIN shown on this screen"
            if model.pin_required
            else "Open room — no PIN needed"
        )
        endpoints = [format_endpoint(address, model.port) for address in model.addresses if model.port]
        if endpoints:
            self.address.setText("Join at  " + "   ·   ".join(endpoints[:_MAX_ADDRESSES_SHOWN]))
            self.how_to_join.setText(
                f"Open Coalesce on your laptop and pick {model.name}, "
                f"or run: coalesce share --to {endpoints[0]}"
            )
        else:
            self.address.setText("Waiting for the network…")
            self.how_to_join.setText(f"Open Coalesce on your laptop and pick {model.name}")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # One unit that fits both landscape and portrait displays; every size is a fraction of it.
        unit = min(self.height(), self.width() * 9 / 16)
        base = self.font()
        self.room_name.setFont(_scaled_font(base, unit * 0.12, bold=True))
        self.pin.setFont(_scaled_font(base, unit * 0.15, bold=True))
        self.meeting.setFont(_scaled_font(base, unit * 0.09, bold=True))
        self.pin_status.setFont(_scaled_font(base, unit * 0.045))
        self.address.setFont(_scaled_font(base, unit * 0.06, bold=True))
        self.how_to_join.setFont(_scaled_font(base, unit * 0.032))
        self.update_notice.setFont(_scaled_font(base, unit * 0.032, bold=True))
        spacing = round(unit * 0.03)
        margin = round(unit * 0.06)
        layout = self.layout()
        if layout is not None:
            layout.setSpacing(spacing)
            layout.setContentsMargins(margin, margin, margin, margin)


class _TileGrid(QWidget):
    """The shown shares' tiles, kept across model changes by share id so a tile keeps its last frame."""

    def __init__(self, on_drop: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_drop = on_drop
        self._tiles: dict[str, ShareTile] = {}
        self._order: list[str] = []
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(0, 0, 0))
        self.setPalette(palette)

    @property
    def tiles(self) -> list[ShareTile]:
        return [self._tiles[share_id] for share_id in self._order]

    def show_shares(self, shares: Sequence[ShareView]) -> None:
        wanted = {share.share_id for share in shares}
        for share_id in [share_id for share_id in self._tiles if share_id not in wanted]:
            tile = self._tiles.pop(share_id)
            tile.hide()
            tile.deleteLater()
        for share in shares:
            existing = self._tiles.get(share.share_id)
            if existing is None:
                tile = self._tiles[share.share_id] = ShareTile(share, self._on_drop, self)
                tile.show()
            else:
                existing.set_share(share)
        self._order = [share.share_id for share in shares]
        self._lay_out()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._lay_out()

    def _lay_out(self) -> None:
        gap = max(2, round(min(self.width(), self.height()) * 0.008))
        for tile, rect in zip(self.tiles, tile_geometry(len(self._order), self.rect(), gap), strict=True):
            tile.setGeometry(rect)


class RoomWindow(QWidget):
    """The room display for one :class:`RoomModel`; its controls act through ``actions`` (the receiver).

    ``pin`` is shown big on the idle screen when the room requires one (the model never holds it).
    ``refresh_hz`` is how often the shown tracks are polled for new frames. Close the window (or press
    Ctrl+Q) to unsubscribe from the model; :attr:`closed` is emitted once per close.
    """

    closed = Signal()

    def __init__(
        self,
        model: RoomModel,
        actions: RoomActions,
        *,
        pin: str | None = None,
        refresh_hz: float = DEFAULT_REFRESH_HZ,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if refresh_hz <= 0:
            raise ValueError(f"refresh_hz must be positive, got {refresh_hz}")
        self._model = model
        self._actions = actions
        self._pin = pin
        self._unsubscribe: Callable[[], None] | None = None

        self.setWindowTitle(f"Coalesce — {model.name}")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, _BACKGROUND)
        palette.setColor(QPalette.ColorRole.WindowText, _TEXT)
        self.setPalette(palette)

        self._idle = _IdleView(self)
        self._grid = _TileGrid(actions.drop_share, self)
        self._stack = QStackedLayout(self)
        self._stack.setContentsMargins(0, 0, 0, 0)
        self._stack.addWidget(self._idle)
        self._stack.addWidget(self._grid)

        self._status = _label(self, "status", _SECONDARY_TEXT)
        self._status.setWordWrap(False)
        self._status.setAutoFillBackground(True)
        status_palette = self._status.palette()
        status_palette.setColor(QPalette.ColorRole.Window, QColor(0, 0, 0, 150))
        self._status.setPalette(status_palette)

        self._join_bar = JoinRequestBar(actions, self)

        self._frame_timer = QTimer(self)
        self._frame_timer.setInterval(max(1, round(1000 / refresh_hz)))
        self._frame_timer.timeout.connect(self.refresh_frames)

        self._subscribe()

    @property
    def model(self) -> RoomModel:
        return self._model

    @property
    def is_idle(self) -> bool:
        """Whether the join screen is showing (no shares)."""
        return self._stack.currentWidget() is self._idle

    @property
    def tiles(self) -> list[ShareTile]:
        """The tiles on screen, in the model's order."""
        return self._grid.tiles

    def show_fullscreen(self) -> None:
        """Show full screen with the pointer hidden, as a room display should be."""
        self.setCursor(Qt.CursorShape.BlankCursor)
        # A room box often runs X with no window manager, which ignores the full-screen hint:
        # cover the screen ourselves as well.
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:
            self.setGeometry(screen.geometry())
        self.showFullScreen()

    def refresh_frames(self) -> None:
        """Pull the newest frame of every shown track now (the timer does this on its own)."""
        for tile in self._grid.tiles:
            tile.pull_frames()

    def _subscribe(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._model.subscribe(self._on_model_changed)
        self._on_model_changed()

    def _detach(self) -> None:
        self._frame_timer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_model_changed(self) -> None:
        shown = self._model.shown_shares
        self._idle.show_room(self._model, self._pin)
        self._grid.show_shares(shown)
        self._stack.setCurrentWidget(self._grid if shown else self._idle)
        self._show_status(len(shown), len(self._model.shares))
        self._join_bar.show_requests(self._model.join_requests)
        self._place_join_bar()
        if shown:
            self.refresh_frames()
            if not self._frame_timer.isActive():
                self._frame_timer.start()
        else:
            self._frame_timer.stop()

    def _show_status(self, shown: int, total: int) -> None:
        if shown == 0:
            self._status.hide()
            return
        text = f"{shown} share" if shown == 1 else f"{shown} shares"
        if total > shown:
            text += f" · {total - shown} waiting"
        self._status.setText(text)
        self._status.show()
        self._place_status()

    def _place_status(self) -> None:
        font = _scaled_font(self.font(), min(self.height(), self.width() * 9 / 16) * 0.025)
        self._status.setFont(font)
        pad = max(2, font.pixelSize() // 2)
        self._status.setContentsMargins(pad, pad // 2, pad, pad // 2)
        self._status.adjustSize()
        margin = max(4, round(min(self.width(), self.height()) * 0.015))
        self._status.move(self.width() - margin - self._status.width(), margin)
        self._status.raise_()

    def _place_join_bar(self) -> None:
        unit = min(self.height(), self.width() * 9 / 16)
        self._join_bar.setFont(_scaled_font(self.font(), unit * 0.035, bold=True))
        height = max(self._join_bar.sizeHint().height(), round(unit * 0.1))
        self._join_bar.setGeometry(0, self.height() - height, self.width(), height)
        self._join_bar.raise_()

    @property
    def join_bar(self) -> JoinRequestBar:
        return self._join_bar

    def open_settings(self) -> SettingsDialog:
        """The admin-locked settings (Ctrl+S): PIN and its rotation."""
        dialog = SettingsDialog(self._model, self._actions, self)
        self.unsetCursor()
        dialog.open()
        return dialog

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_status()
        self._place_join_bar()

    def showEvent(self, event: QShowEvent) -> None:
        # A window shown again after a close follows its model again.
        if self._unsubscribe is None:
            self._subscribe()
        super().showEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        was_attached = self._unsubscribe is not None
        self._detach()
        super().closeEvent(event)
        if was_attached:
            self.closed.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Quit) or (
            event.key() == Qt.Key.Key_Q and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.close()
        elif event.key() == Qt.Key.Key_S and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.open_settings()
        elif event.key() in (Qt.Key.Key_A, Qt.Key.Key_D) and self._join_bar.isVisible():
            self._join_bar.answer(event.key() == Qt.Key.Key_A)
        elif (
            Qt.Key.Key_1 <= event.key() <= Qt.Key.Key_4
            and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            # Ctrl+1..4 drops that tile's share (a room box is driven from a keyboard or a remote).
            shown = self._model.shown_shares
            index = int(event.key()) - int(Qt.Key.Key_1)
            if index < len(shown):
                self._actions.drop_share(shown[index].share_id)
        elif event.key() == Qt.Key.Key_Escape:
            # Someone leaning on a keyboard must not take the room display down or out of full screen.
            event.accept()
        elif event.key() == Qt.Key.Key_F11:
            if self.isFullScreen():
                self.unsetCursor()
                self.showNormal()
            else:
                self.show_fullscreen()
        else:
            super().keyPressEvent(event)
