"""One share on the room display: its screen letterboxed, its camera picture-in-picture, its sender's name.

A tile paints when a picture arrives, not on a timer: it *watches* each of its share's tracks with the
size it shows that track at (:meth:`FrameSource.watch`), the track's feed scales and converts every new
frame off the GUI thread and says so from its worker thread, and :attr:`ShareTile.picture_ready` (a queued
signal) brings that to the GUI thread, where the tile wraps the picture in a ``QImage`` without a copy
and asks for a repaint. Qt merges the repaints asked for between two passes of its loop, so a tile is
painted at most once per pass however fast pictures come. Pictures arrive at the tile's size, so painting
is a plain copy to the window; only while a resize waits for its first picture at the new size does Qt
scale the old one.

Below the picture, never over it, a caption row: the tile's number (1-4, by arrival), the sender's name,
a "Paused" badge while the sender has paused ("Reconnecting…" while its connection is lost), a note the
window may put there (the room's share count), and the button that ends the share. A share alone on the
screen has none (height 0), unless paused or reconnecting: it fills the screen to the pixel, and the sender
is asked for exactly the screen's size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from coalesce_common.logutil import RateLimitedLog
from coalesce_receiver.models.room import FrameSource, Picture, PipCorner, ShareView, Size, fit_size

logger = logging.getLogger(__name__)

SCREEN = "screen"
CAMERA = "camera"

PIP_WIDTH_FRACTION = 0.25
"""The camera inset's width as a fraction of the tile's width (its height follows the camera's aspect)."""
PIP_MAX_HEIGHT_FRACTION = 0.4
_LOG_INTERVAL_S = 30.0
_BACKGROUND = QColor(0, 0, 0)
_CAPTION_BACKGROUND = QColor(28, 32, 38)
_CAPTION_TEXT = QColor(245, 247, 250)
_NUMBER_BACKGROUND = QColor(255, 209, 102)
_PAUSED_BACKGROUND = QColor(214, 69, 65)
_SOUND_BACKGROUND = QColor(46, 125, 50)
_PIP_BORDER = QColor(230, 230, 230)
_WAITING_TEXT = QColor(150, 156, 165)


def picture_to_qimage(pixels: np.ndarray) -> QImage:
    """Wrap B, G, R, X ``uint8`` pixels of shape (h, w, 4) in a ``QImage`` (``Format_RGB32``) sharing their
    memory; the caller keeps ``pixels`` alive as long as the image. ``bytesPerLine`` is passed because Qt
    otherwise assumes the rows are not padded. Raises ``ValueError`` for any other shape or dtype, or a
    strided view."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 4 or 0 in pixels.shape:
        raise ValueError(f"expected uint8 pixels of shape (h, w, 4), got {pixels.dtype} {pixels.shape}")
    if not pixels.flags.c_contiguous:
        raise ValueError("expected contiguous pixels")
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    return QImage(pixels.data, width, height, int(pixels.strides[0]), QImage.Format.Format_RGB32)


def fit_rect(content: QSize, bounds: QRect) -> QRect:
    """The largest rectangle of ``content``'s aspect ratio centred in ``bounds`` (the rest is letterbox)."""
    scaled = content.scaled(bounds.size(), Qt.AspectRatioMode.KeepAspectRatio)
    left = bounds.x() + (bounds.width() - scaled.width()) // 2
    top = bounds.y() + (bounds.height() - scaled.height()) // 2
    return QRect(left, top, scaled.width(), scaled.height())


def pip_rect(camera: QSize, picture: QRect, corner: PipCorner = PipCorner.BOTTOM_RIGHT) -> QRect:
    """Where the camera inset goes: a corner of the screen ``picture``, a quarter of its width."""
    margin = max(4, round(min(picture.width(), picture.height()) * 0.03))
    box = QSize(
        max(1, round(picture.width() * PIP_WIDTH_FRACTION)),
        max(1, round(picture.height() * PIP_MAX_HEIGHT_FRACTION)),
    )
    size = camera.scaled(box, Qt.AspectRatioMode.KeepAspectRatio)
    left = corner in (PipCorner.BOTTOM_LEFT, PipCorner.TOP_LEFT)
    top = corner in (PipCorner.TOP_LEFT, PipCorner.TOP_RIGHT)
    x = picture.x() + margin if left else picture.right() + 1 - margin - size.width()
    y = picture.y() + margin if top else picture.bottom() + 1 - margin - size.height()
    return QRect(x, y, size.width(), size.height())


def _badge(parent: QWidget, name: str, background: QColor, text: QColor) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    label.setAutoFillBackground(True)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.Window, background)
    palette.setColor(QPalette.ColorRole.WindowText, text)
    label.setPalette(palette)
    return label


@dataclass
class _TrackSlot:
    """One watched source and the picture the tile shows of it (``image`` points into ``picture``)."""

    source: FrameSource
    picture: Picture | None = None
    image: QImage | None = None


class ShareTile(QWidget):
    """Paints one :class:`ShareView`; owned and laid out by the room window, which calls :meth:`release`
    before it lets go of the tile."""

    picture_ready = Signal(str)
    """A track (by kind) has a new picture; emitted from the track's worker thread, handled on the GUI's."""
    frame_size_changed = Signal()
    """The main picture's frame size (its aspect ratio) is new: the window may lay the tiles out again."""

    def __init__(
        self,
        share: ShareView,
        on_drop: Callable[[str], None],
        parent: QWidget | None = None,
        *,
        number: int = 1,
        caption_height: int = 24,
        pip_corner: PipCorner = PipCorner.BOTTOM_RIGHT,
    ) -> None:
        super().__init__(parent)
        self._share = share
        self._on_drop = on_drop
        self._number = number
        self._caption_height = caption_height
        self._pip_corner = pip_corner
        self._placed = False  # watching starts when the window gives the tile its place (place())
        self._slots: dict[str, _TrackSlot] = {}
        self._log = RateLimitedLog(logger, _LOG_INTERVAL_S)
        self.shown_frames = 0
        """Pictures of new frames painted so far (each frame counted once, however often repainted)."""
        self._painted_numbers: dict[str, int] = {}
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.picture_ready.connect(self._take_picture, Qt.ConnectionType.QueuedConnection)

        self.caption = QWidget(self)
        self.caption.setObjectName("caption")
        self.caption.setAutoFillBackground(True)
        palette = self.caption.palette()
        palette.setColor(QPalette.ColorRole.Window, _CAPTION_BACKGROUND)
        palette.setColor(QPalette.ColorRole.WindowText, _CAPTION_TEXT)
        self.caption.setPalette(palette)
        self._number_label = _badge(self.caption, "tileNumber", _NUMBER_BACKGROUND, QColor(0, 0, 0))
        self._name_label = QLabel(self.caption)
        self._name_label.setObjectName("senderName")
        self._paused_label = _badge(self.caption, "pausedBadge", _PAUSED_BACKGROUND, _CAPTION_TEXT)
        self._paused_label.setText("Paused")
        self._sound_label = _badge(self.caption, "soundBadge", _SOUND_BACKGROUND, _CAPTION_TEXT)
        self._sound_label.setText("Sound")
        self._sound_label.setToolTip("The room plays this share's sound (M mutes it)")
        self._audible = False
        self._note_label = QLabel(self.caption)
        self._note_label.setObjectName("roomNote")
        self.drop_button = QToolButton(self.caption)
        self.drop_button.setObjectName("dropShare")
        self.drop_button.setText("✕")
        self.drop_button.setToolTip("Stop this share")
        self.drop_button.setAutoRaise(True)
        self.drop_button.clicked.connect(self._drop)
        row = QHBoxLayout(self.caption)
        row.addWidget(self._number_label)
        row.addWidget(self._name_label)
        row.addWidget(self._paused_label)
        row.addWidget(self._sound_label)
        row.addStretch(1)
        row.addWidget(self._note_label)
        row.addWidget(self.drop_button)
        self._show_caption()
        self._follow_tracks()

    def _drop(self) -> None:
        self._on_drop(self._share.share_id)

    @property
    def share(self) -> ShareView:
        return self._share

    @property
    def sender_name(self) -> str:
        return self._share.sender_name

    @property
    def number(self) -> int:
        return self._number

    def set_audible(self, audible: bool, volume: float = 1.0) -> None:
        """Whether the room plays this share's sound, and how loud: a "Sound" badge in the caption, with
        the volume when it is not full ("Sound 60 %")."""
        text = "Sound" if volume >= 1.0 else f"Sound {round(volume * 100)} %"
        if audible != self._audible or text != self._sound_label.text():
            self._audible = audible
            self._sound_label.setText(text)
            self._show_caption()

    @property
    def audible(self) -> bool:
        return self._audible

    def set_share(self, share: ShareView, *, number: int, pip_corner: PipCorner) -> None:
        """Follow a new ``ShareView`` object for the same share (whichever tracks it has now), its number
        and where its camera inset goes."""
        self._share = share
        self._number = number
        if pip_corner != self._pip_corner:
            self._pip_corner = pip_corner
            self.update()
        self._show_caption()
        self._follow_tracks()

    def place(self, rect: QRect, caption_height: int) -> None:
        """Where the window puts the tile, and its caption row's height (0: none); the tile's tracks are
        watched from now on, at the size they are shown (never at a size the tile had before)."""
        self._placed = True
        if caption_height != self._caption_height:
            self._caption_height = caption_height
            self._show_caption()
        self.setGeometry(rect)
        self._watch_all()  # at the new size (watching again at the same size changes nothing)

    def set_note(self, note: str) -> None:
        """Text at the caption's right end (the window puts the room's share count on one tile)."""
        self._note_label.setText(note)
        self._note_label.setVisible(bool(note))
        self._show_caption()

    def release(self) -> None:
        """Stop watching the share's tracks (the tile is leaving the screen); safe to call more than once."""
        for kind in list(self._slots):
            self._forget(kind)

    def has_image(self, kind: str) -> bool:
        slot = self._slots.get(kind)
        return slot is not None and slot.image is not None

    def picture_number(self, kind: str = SCREEN) -> int | None:
        """The frame number of the picture the tile holds of ``kind`` (``None``: none yet)."""
        slot = self._slots.get(kind)
        return None if slot is None or slot.picture is None else slot.picture.number

    def frame_size(self) -> Size | None:
        """The size of the main track's frames (the screen's, else the camera's), once one arrived."""
        main = self._main_slot()
        return None if main is None or main.picture is None else main.picture.frame_size

    def take_pictures(self) -> None:
        """Show each track's newest picture now, without waiting for its signal (the window calls this
        when it needs the tile up to date, e.g. before reporting where pictures are)."""
        for kind in list(self._slots):
            self._take_picture(kind)

    def picture_box(self) -> QRect:
        """Where pictures may go in this tile: all of it but the caption row."""
        return QRect(0, 0, self.width(), max(1, self.height() - self._caption_height))

    def picture_rect(self) -> QRect | None:
        """Where the main picture (the screen, else the camera) is drawn, in this tile's coordinates, after
        the letterbox; ``None`` before its first picture. The benchmark reads the room's glass there."""
        main = self._main_slot()
        return None if main is None or main.picture is None else self._fitted(main.picture.frame_size)

    def _fitted(self, frame_size: Size) -> QRect:
        """The picture's place in :meth:`picture_box`, by :func:`fit_size` in device pixels, as the track
        scaled it: so the picture is copied to the screen as it is."""
        box = self.picture_box()
        ratio = self.devicePixelRatioF()
        width, height = fit_size(frame_size, self._device_size(box.size()))
        size = QSize(max(1, round(width / ratio)), max(1, round(height / ratio)))
        return QRect(
            box.x() + (box.width() - size.width()) // 2,
            box.y() + (box.height() - size.height()) // 2,
            size.width(),
            size.height(),
        )

    def _device_size(self, size: QSize) -> Size:
        ratio = self.devicePixelRatioF()
        return max(1, round(size.width() * ratio)), max(1, round(size.height() * ratio))

    def _follow_tracks(self) -> None:
        """Watch the share's tracks, each at the size it is shown; forget tracks that went away."""
        for kind in (SCREEN, CAMERA):
            source = self._share.tracks.get(kind)
            slot = self._slots.get(kind)
            if slot is not None and slot.source is not source:
                self._forget(kind)
                slot = None
            if source is not None and slot is None:
                self._slots[kind] = _TrackSlot(source)
        self._watch_all()
        self.update()

    def _watch_all(self) -> None:
        if not self._placed:
            return
        for kind, slot in self._slots.items():
            self._watch(kind, slot)

    def _watch(self, kind: str, slot: _TrackSlot) -> None:
        box = self.picture_box().size()
        if kind == CAMERA and SCREEN in self._slots:  # the camera as an inset: at most the inset's box
            box = QSize(
                round(box.width() * PIP_WIDTH_FRACTION), round(box.height() * PIP_MAX_HEIGHT_FRACTION)
            )
        try:
            slot.source.watch(self._device_size(box), lambda: self.picture_ready.emit(kind))
        except Exception:
            self._log.log(
                logging.ERROR, f"watch-{kind}", "Cannot show the %s of share %s", kind, self._share.share_id
            )

    def _forget(self, kind: str) -> None:
        slot = self._slots.pop(kind, None)
        self._painted_numbers.pop(kind, None)
        if slot is None:
            return
        try:
            slot.source.unwatch()
        except Exception:
            self._log.log(
                logging.ERROR,
                f"unwatch-{kind}",
                "Cannot stop showing the %s of share %s",
                kind,
                self._share.share_id,
            )
        self.update()

    def _take_picture(self, kind: str) -> None:
        slot = self._slots.get(kind)
        if slot is None:
            return  # a signal queued before the track went away
        try:
            picture = slot.source.latest_picture()
        except Exception:
            self._log.log(
                logging.ERROR, f"read-{kind}", "Reading the %s of share %s failed", kind, self._share.share_id
            )
            return
        if picture is slot.picture:
            return  # a signal for a picture already taken
        before = self.frame_size()
        if picture is None:
            slot.picture = slot.image = None
        else:
            try:
                image = picture_to_qimage(picture.pixels)
            except ValueError as exc:
                self._log.warning(
                    f"frame-{kind}", "Dropping a %s picture of share %s: %s", kind, self._share.share_id, exc
                )
                return
            image.setDevicePixelRatio(self.devicePixelRatioF())
            slot.picture, slot.image = picture, image
        self.update()
        if self.frame_size() != before:
            self.frame_size_changed.emit()

    def _main_slot(self) -> _TrackSlot | None:
        screen = self._slots.get(SCREEN)
        if screen is not None and screen.image is not None:
            return screen
        camera = self._slots.get(CAMERA)
        return camera if camera is not None and camera.image is not None else None

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.picture_box(), _BACKGROUND)
            # Only used while a resized tile waits for its first picture at the new size.
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            main = self._main_slot()
            if main is None or main.image is None or main.picture is None:
                self._paint_waiting(painter)
                return
            target = self._fitted(main.picture.frame_size)
            painter.drawImage(target, main.image)
            self._count_shown(main)
            camera = self._slots.get(CAMERA)
            if (
                main is not camera
                and camera is not None
                and camera.image is not None
                and camera.picture is not None
            ):
                inset = pip_rect(QSize(*camera.picture.frame_size), target, self._pip_corner)
                painter.drawImage(inset, camera.image)
                painter.setPen(QPen(_PIP_BORDER, max(1, inset.width() // 120)))
                painter.drawRect(inset.adjusted(0, 0, -1, -1))
        finally:
            painter.end()

    def _count_shown(self, slot: _TrackSlot) -> None:
        assert slot.picture is not None
        kind = slot.source.kind
        if self._painted_numbers.get(kind) != slot.picture.number:
            self._painted_numbers[kind] = slot.picture.number
            self.shown_frames += 1

    def _paint_waiting(self, painter: QPainter) -> None:
        box = self.picture_box()
        font = QFont(self.font())
        font.setPixelSize(max(10, box.height() // 18))
        painter.setFont(font)
        painter.setPen(_WAITING_TEXT)
        painter.drawText(
            box,
            Qt.AlignmentFlag.AlignCenter,
            "Paused"
            if self._share.paused and not self._share.reconnecting
            else ("Reconnecting…" if self._share.reconnecting else "Connecting…"),
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._show_caption()
        self._watch_all()  # pictures at the new size from now on (the newest one at once)

    def _show_caption(self) -> None:
        height = self._caption_height
        self.caption.setVisible(height > 0)
        if height <= 0:
            return
        self.caption.setGeometry(0, self.height() - height, self.width(), height)
        font = QFont(self.font())
        font.setPixelSize(max(9, round(height * 0.55)))
        pad = max(2, height // 6)
        layout = self.caption.layout()
        if layout is not None:
            layout.setContentsMargins(pad, 0, pad, 0)
            layout.setSpacing(pad * 2)
        for label in (
            self._number_label,
            self._name_label,
            self._paused_label,
            self._sound_label,
            self._note_label,
        ):
            label.setFont(font)
        self.drop_button.setFont(font)
        self._number_label.setText(str(self._number))
        self._number_label.setFixedWidth(
            max(height - 2 * (pad // 2), QFontMetrics(font).horizontalAdvance("4") + pad * 2)
        )
        self._number_label.setFixedHeight(max(1, height - pad))
        self._paused_label.setContentsMargins(pad, 0, pad, 0)
        self._paused_label.setFixedHeight(max(1, height - pad))
        self._paused_label.setText("Reconnecting…" if self._share.reconnecting else "Paused")
        self._paused_label.setVisible(self._share.paused or self._share.reconnecting)
        self._sound_label.setContentsMargins(pad, 0, pad, 0)
        self._sound_label.setFixedHeight(max(1, height - pad))
        self._sound_label.setVisible(self._audible)
        name = self._share.sender_name
        taken = self._number_label.width() + self.drop_button.sizeHint().width() + 8 * pad
        if self._share.paused:
            taken += self._paused_label.sizeHint().width()
        if self._audible:
            taken += self._sound_label.sizeHint().width()
        if self._note_label.text():
            taken += QFontMetrics(font).horizontalAdvance(self._note_label.text())
        room = max(1, self.width() - taken)
        self._name_label.setText(QFontMetrics(font).elidedText(name, Qt.TextElideMode.ElideRight, room))
        self._name_label.setToolTip(name)
        self._name_label.setAccessibleName(name)
