"""The meeting-room display: how to join while nobody shares, the shares tiled full screen while they do.

:class:`RoomWindow` is handed a :class:`~coalesce_receiver.models.room.RoomModel`, subscribes to it and
re-lays itself out on every change; it holds no network or media logic. Tiles paint as their tracks'
pictures arrive (:mod:`coalesce_receiver.ui.share_tile`): nothing polls. The window is meant to
run unattended: Escape does nothing, Ctrl+Q closes, F11 leaves or re-enters full screen. The room's keys
act on the numbered tiles: 1-4 spotlight that share (again, or 0 or G: back to the grid), Ctrl+1-4 end
it, Alt+1-4 swap it into the first place; C moves the camera insets to the next corner. A double click
or double tap on a tile spotlights it, and back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QFont,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPalette,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import QLabel, QStackedLayout, QVBoxLayout, QWidget

from coalesce_receiver.models.room import RoomActions, RoomModel
from coalesce_receiver.ui.room_controls import JoinRequestBar, SettingsDialog
from coalesce_receiver.ui.share_tile import ShareTile

_BACKGROUND = QColor(16, 20, 24)
_TEXT = QColor(245, 247, 250)
_SECONDARY_TEXT = QColor(201, 209, 217)
_PIN_TEXT = QColor(255, 209, 102)
_MAX_ADDRESSES_SHOWN = 3
VOLUME_STEP = 0.1
"""How much the room's + and - keys change the shared sound's volume."""


def format_endpoint(address: str, port: int) -> str:
    """``host:port``, with IPv6 literals bracketed so the port stays unambiguous."""
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"{host}:{port}"


SPOTLIGHT_STRIP_FRACTION = 0.22
"""The width of the strip beside a spotlit share, as a fraction of the screen's."""
DEFAULT_ASPECT = 16 / 9
"""The aspect ratio a share is laid out for until its first frame says otherwise."""


def _shown_area(aspects: Sequence[float], box: QRect) -> float:
    """The screen area shares of these aspect ratios get when each is fitted into ``box``."""
    total = 0.0
    for aspect in aspects:
        width = min(box.width(), box.height() * aspect)
        total += width * (width / aspect)
    return total


def tile_geometry(
    count: int,
    area: QRect,
    gap: int,
    *,
    spotlight: bool = False,
    aspects: Sequence[float] = (),
    caption: int = 0,
) -> list[QRect]:
    """Where ``count`` tiles go in ``area``, in place order.

    One fills it. Two sit side by side, or one above the other when that shows more of them (pictures of
    ``aspects``, default 16:9, fitted into the tiles less their ``caption`` rows). Three or four share a
    2x2 grid (a third tile centred in the bottom row). In the spotlight, the first tile takes all but a
    strip on the right, where the others stand one above another.
    """
    if count <= 0:
        return []
    if count == 1:
        return [QRect(area)]
    if spotlight:
        strip = round(area.width() * SPOTLIGHT_STRIP_FRACTION)
        main = QRect(area.x(), area.y(), area.width() - strip - gap, area.height())
        others = count - 1
        height = (area.height() - gap * 2) // 3  # three places in the strip, whatever the count
        top = area.y() + (area.height() - others * height - (others - 1) * gap) // 2
        left = main.right() + 1 + gap
        return [main] + [QRect(left, top + i * (height + gap), strip, height) for i in range(others)]
    if count == 2:
        shapes = (list(aspects) + [DEFAULT_ASPECT] * 2)[:2]
        half_w = (area.width() - gap) // 2
        half_h = (area.height() - gap) // 2
        beside = QRect(0, 0, half_w, area.height() - caption)
        stacked = QRect(0, 0, area.width(), half_h - caption)
        if _shown_area(shapes, stacked) > _shown_area(shapes, beside) * 1.05:
            return [QRect(area.x(), area.y() + i * (half_h + gap), area.width(), half_h) for i in range(2)]
        return [QRect(area.x() + i * (half_w + gap), area.y(), half_w, area.height()) for i in range(2)]
    columns, rows = 2, 2
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


def share_count(shown: int, total: int) -> str:
    """What the room says of its shares: ``2 shares``, ``4 shares · 1 waiting``."""
    text = f"{shown} share" if shown == 1 else f"{shown} shares"
    return text + (f" · {total - shown} waiting" if total > shown else "")


def caption_height(area: QRect) -> int:
    """The height of a tile's caption row: readable across a room, the same on every tile."""
    unit = min(area.height(), area.width() * 9 / 16)
    return max(18, round(unit * 0.035))


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
        if model.locked:
            status = "Locked — no new shares until it is unlocked in this display's settings (Ctrl+S)"
        elif model.pin_required:
            status = "PIN required — enter the PIN shown on this screen"
        else:
            status = "Open room — no PIN needed"
        self.pin_status.setText(status)
        endpoints = [format_endpoint(address, model.port) for address in model.addresses if model.port]
        how = f"Open Coalesce on your laptop and pick {model.name}"
        if endpoints:
            self.address.setText("Join at  " + "   ·   ".join(endpoints[:_MAX_ADDRESSES_SHOWN]))
            how += f", or run: coalesce share --to {endpoints[0]}"
        else:
            self.address.setText("Waiting for the network…")
        if model.share_url:
            how += f"\nNo app? In a browser, open {model.share_url} and type the meeting ID and the PIN"
        self.how_to_join.setText(how)

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
    """The shown shares' tiles, kept across model changes by share id so a tile keeps its last picture."""

    def __init__(self, on_drop: Callable[[str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_drop = on_drop
        self._tiles: dict[str, ShareTile] = {}
        self._placed: list[str] = []
        self._spotlight = False
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(0, 0, 0))
        self.setPalette(palette)

    @property
    def tiles(self) -> list[ShareTile]:
        """The tiles in place order (grid: left to right, top to bottom; spotlight: the spotlit first)."""
        return [self._tiles[share_id] for share_id in self._placed]

    def show_shares(self, model: RoomModel, note: str) -> None:
        placed = model.placed_shares
        wanted = {share.share_id for share in placed}
        for share_id in [share_id for share_id in self._tiles if share_id not in wanted]:
            tile = self._tiles.pop(share_id)
            tile.release()
            tile.hide()
            tile.deleteLater()
        caption = caption_height(self.rect())
        for share in placed:
            number = model.number_of(share.share_id) or 0
            existing = self._tiles.get(share.share_id)
            if existing is None:
                tile = self._tiles[share.share_id] = ShareTile(
                    share,
                    self._on_drop,
                    self,
                    number=number,
                    caption_height=caption,
                    pip_corner=model.pip_corner,
                )
                tile.frame_size_changed.connect(self._lay_out)
                tile.show()
            else:
                existing.set_share(share, number=number, pip_corner=model.pip_corner)
        self._placed = [share.share_id for share in placed]
        self._spotlight = model.spotlit is not None
        for index, tile in enumerate(self.tiles):
            tile.set_note(note if index == 0 else "")
            tile.set_audible(tile.share.share_id == model.audible, model.sound_volume)
        self._lay_out()

    def release(self) -> None:
        """Stop every tile watching its tracks (the window closed); :meth:`show_shares` watches again."""
        for tile in self._tiles.values():
            tile.release()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._lay_out()

    def _lay_out(self) -> None:
        gap = max(2, round(min(self.width(), self.height()) * 0.008))
        caption = caption_height(self.rect())
        tiles = self.tiles
        aspects = [
            size[0] / size[1] if (size := tile.frame_size()) is not None and size[1] else DEFAULT_ASPECT
            for tile in tiles
        ]
        rects = tile_geometry(
            len(tiles), self.rect(), gap, spotlight=self._spotlight, aspects=aspects, caption=caption
        )
        for tile, rect in zip(tiles, rects, strict=True):
            # A share alone fills the screen to the pixel, as a room display should: its caption (the
            # name, the count) comes with a second share, or when it pauses (the badge must show).
            alone = len(tiles) == 1 and not (tile.share.paused or tile.share.reconnecting)
            tile.place(rect, 0 if alone else caption)


class RoomWindow(QWidget):
    """The room display for one :class:`RoomModel`; its controls act through ``actions`` (the receiver).

    ``pin`` is shown big on the idle screen when the room requires one (the model never holds it). Close
    the window (or press Ctrl+Q) to unsubscribe from the model and stop watching its tracks;
    :attr:`closed` is emitted once per close.
    """

    closed = Signal()

    def __init__(
        self,
        model: RoomModel,
        actions: RoomActions,
        *,
        pin: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
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

        self._join_bar = JoinRequestBar(actions, self)
        self._notice = _label(self, "roomNotice", _PIN_TEXT)
        self._notice.setAutoFillBackground(True)
        notice_palette = self._notice.palette()
        notice_palette.setColor(QPalette.ColorRole.Window, QColor(0, 0, 0, 200))
        self._notice.setPalette(notice_palette)
        self._notice.hide()

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
        """Show the newest picture of every shown track now, without waiting for the tracks' signals."""
        for tile in self._grid.tiles:
            tile.take_pictures()

    def _subscribe(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._model.subscribe(self._on_model_changed)
        self._on_model_changed()

    def _detach(self) -> None:
        self._grid.release()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_model_changed(self) -> None:
        shown = self._model.shown_shares
        self._idle.show_room(self._model, self._pin)
        self._grid.show_shares(self._model, share_count(len(shown), len(self._model.shares)))
        self._stack.setCurrentWidget(self._grid if shown else self._idle)
        self._join_bar.show_requests(self._model.join_requests)
        self._place_join_bar()
        self._notice.setText(self._model.notice or "")
        self._notice.setVisible(self._model.notice is not None)
        self._place_notice()

    def _place_notice(self) -> None:
        """A brief notice (the room is full) across the top, over the shares for the seconds it lasts."""
        unit = min(self.height(), self.width() * 9 / 16)
        self._notice.setFont(_scaled_font(self.font(), unit * 0.03, bold=True))
        pad = round(unit * 0.015)
        self._notice.setContentsMargins(pad, pad, pad, pad)
        width = round(self.width() * 0.8)
        height = self._notice.heightForWidth(width) if self._notice.text() else 0
        self._notice.setGeometry((self.width() - width) // 2, pad, width, max(height, 1))
        self._notice.raise_()

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
        self._place_join_bar()
        self._place_notice()

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

    def _on_number(self, number: int, modifiers: Qt.KeyboardModifier) -> bool:
        """The number keys act on the tile showing that number: N spotlights it (again: back to the grid),
        Ctrl+N ends it, Alt+N swaps it into the first place (Shift+N is a symbol on most keyboards). False
        when no tile has that number."""
        share = self._model.share_numbered(number)
        if share is None:
            return False
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            self._actions.drop_share(share.share_id)
        elif modifiers & Qt.KeyboardModifier.AltModifier:
            placed = self._model.placed_shares
            if placed:
                self._actions.swap(share.share_id, placed[0].share_id)
        else:
            self._toggle_spotlight(share.share_id)
        return True

    def _toggle_spotlight(self, share_id: str) -> None:
        self._actions.spotlight(None if self._model.spotlit == share_id else share_id)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        # A double click (or a double tap on a touch screen) on a tile spotlights it, and back.
        for tile in self._grid.tiles:
            if tile.geometry().contains(self._grid.mapFrom(self, event.position().toPoint())):
                self._toggle_spotlight(tile.share.share_id)
                return
        super().mouseDoubleClickEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Quit) or (
            event.key() == Qt.Key.Key_Q and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.close()
        elif event.key() == Qt.Key.Key_S and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.open_settings()
        elif event.key() in (Qt.Key.Key_A, Qt.Key.Key_D) and self._join_bar.isVisible():
            self._join_bar.answer(event.key() == Qt.Key.Key_A)
        elif Qt.Key.Key_1 <= event.key() <= Qt.Key.Key_4 and self._on_number(
            int(event.key()) - int(Qt.Key.Key_0), event.modifiers()
        ):
            pass
        elif event.key() in (Qt.Key.Key_0, Qt.Key.Key_G):
            self._actions.spotlight(None)  # back to the grid
        elif event.key() == Qt.Key.Key_C:
            self._actions.move_pip()
        elif event.key() == Qt.Key.Key_M:
            self._actions.mute_sound(not self._model.sound_muted)
        elif event.key() == Qt.Key.Key_H:
            # Hear the next share that shares its sound (the room plays one share's sound at a time).
            if (next_share := self._model.next_sounding()) is not None:
                self._actions.listen_to(next_share)
        elif event.key() in (Qt.Key.Key_Plus, Qt.Key.Key_Equal, Qt.Key.Key_Minus):
            step = -VOLUME_STEP if event.key() == Qt.Key.Key_Minus else VOLUME_STEP
            self._actions.set_sound_volume(self._model.sound_volume + step)
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
