"""One share on the room display: its screen letterboxed, its camera picture-in-picture, its sender's name.

A tile never asks for frames on its own: the window's timer calls :meth:`ShareTile.pull_frames`, which takes
the newest array from each track and repaints only when a source handed over a different array object.
Arrays become ``QImage`` objects without a per-pixel copy (:func:`rgb_to_qimage`); the tile keeps each array
alive for as long as the image that points into it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
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
from PySide6.QtWidgets import QLabel, QToolButton, QWidget

from coalesce_receiver.models.room import FrameSource, ShareView

logger = logging.getLogger(__name__)

SCREEN = "screen"
CAMERA = "camera"

PIP_WIDTH_FRACTION = 0.25
"""The camera inset's width as a fraction of the tile's width (its height follows the camera's aspect)."""
PIP_MAX_HEIGHT_FRACTION = 0.4
_LOG_INTERVAL_S = 30.0
_BACKGROUND = QColor(0, 0, 0)
_PIP_BORDER = QColor(230, 230, 230)
_WAITING_TEXT = QColor(150, 156, 165)


def rgb_to_qimage(frame: np.ndarray) -> tuple[np.ndarray, QImage]:
    """Wrap an RGB ``uint8`` array of shape (h, w, 3) in a ``QImage`` that shares its memory.

    Returns the array the image points into (``frame`` itself, or a contiguous copy when ``frame`` is a
    strided view); the caller must keep it alive as long as the image. ``bytesPerLine`` is always passed
    because Qt otherwise assumes rows padded to 32 bits, which skews any width not divisible by four.
    Raises ``ValueError`` for any other shape or dtype.
    """
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 array of shape (h, w, 3), got {frame.dtype} {frame.shape}")
    height, width = int(frame.shape[0]), int(frame.shape[1])
    if height == 0 or width == 0:
        raise ValueError(f"expected a non-empty frame, got shape {frame.shape}")
    if not frame.flags.c_contiguous:
        frame = np.ascontiguousarray(frame)
    image = QImage(frame.data, width, height, int(frame.strides[0]), QImage.Format.Format_RGB888)
    return frame, image


def fit_rect(content: QSize, bounds: QRect) -> QRect:
    """The largest rectangle of ``content``'s aspect ratio centred in ``bounds`` (the rest is letterbox)."""
    scaled = content.scaled(bounds.size(), Qt.AspectRatioMode.KeepAspectRatio)
    left = bounds.x() + (bounds.width() - scaled.width()) // 2
    top = bounds.y() + (bounds.height() - scaled.height()) // 2
    return QRect(left, top, scaled.width(), scaled.height())


def pip_rect(camera: QSize, tile: QRect) -> QRect:
    """Where the camera inset goes: the bottom-right corner of ``tile``, a quarter of its width."""
    margin = max(4, round(min(tile.width(), tile.height()) * 0.03))
    box = QSize(
        max(1, round(tile.width() * PIP_WIDTH_FRACTION)),
        max(1, round(tile.height() * PIP_MAX_HEIGHT_FRACTION)),
    )
    size = camera.scaled(box, Qt.AspectRatioMode.KeepAspectRatio)
    return QRect(
        tile.right() + 1 - margin - size.width(),
        tile.bottom() + 1 - margin - size.height(),
        size.width(),
        size.height(),
    )


class _Throttle:
    """Lets a message through at most once per interval per key; frames come from remote peers."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            return False
        self._last[key] = now
        return True


@dataclass
class _TrackSlot:
    """What the tile last took from one source.

    ``frame`` is held (not its ``id()``) so that the identity test cannot be fooled by a new array
    allocated at a freed array's address; ``pixels`` is the buffer ``image`` points into.
    """

    source: FrameSource
    frame: np.ndarray | None = None
    pixels: np.ndarray | None = None
    image: QImage | None = None


class ShareTile(QWidget):
    """Paints one :class:`ShareView`; owned and laid out by the room window."""

    def __init__(
        self, share: ShareView, on_drop: Callable[[str], None], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._share = share
        self._on_drop = on_drop
        self._slots: dict[str, _TrackSlot] = {}
        self._throttle = _Throttle(_LOG_INTERVAL_S)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

        self._name_label = QLabel(self)
        self._name_label.setObjectName("senderName")
        self._name_label.setAutoFillBackground(True)
        palette = self._name_label.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(0, 0, 0, 170))
        palette.setColor(QPalette.ColorRole.WindowText, QColor(255, 255, 255))
        self._name_label.setPalette(palette)
        self.drop_button = QToolButton(self)
        self.drop_button.setObjectName("dropShare")
        self.drop_button.setText("✕")
        self.drop_button.setToolTip("Stop this share")
        self.drop_button.clicked.connect(self._drop)
        self._place_name_label()

    def _drop(self) -> None:
        self._on_drop(self._share.share_id)

    @property
    def share(self) -> ShareView:
        return self._share

    @property
    def sender_name(self) -> str:
        return self._share.sender_name

    def set_share(self, share: ShareView) -> None:
        """Follow a new ``ShareView`` object for the same share (its tracks are re-read on the next pull)."""
        name_changed = share.sender_name != self._share.sender_name
        self._share = share
        if name_changed:
            self._place_name_label()

    def has_image(self, kind: str) -> bool:
        slot = self._slots.get(kind)
        return slot is not None and slot.image is not None

    def pull_frames(self) -> bool:
        """Take each track's newest frame; schedule one repaint if any changed. Returns whether one did."""
        changed = False
        for kind in (SCREEN, CAMERA):
            source = self._share.tracks.get(kind)
            slot = self._slots.get(kind)
            if source is None:
                if slot is not None:
                    del self._slots[kind]
                    changed = True
                continue
            if slot is None or slot.source is not source:
                slot = self._slots[kind] = _TrackSlot(source)
                changed = True
            changed = self._pull(kind, slot) or changed
        if changed:
            self.update()
        return changed

    def _pull(self, kind: str, slot: _TrackSlot) -> bool:
        try:
            frame = slot.source.latest_rgb()
        except Exception:
            if self._throttle.allow(f"read-{kind}"):
                logger.exception("Reading the %s track of share %s failed", kind, self._share.share_id)
            return False
        if frame is None or frame is slot.frame:
            return False
        slot.frame = frame
        try:
            slot.pixels, slot.image = rgb_to_qimage(frame)
        except ValueError as exc:
            if self._throttle.allow(f"frame-{kind}"):
                logger.warning("Dropping a %s frame of share %s: %s", kind, self._share.share_id, exc)
            return False
        return True

    def picture_rect(self) -> QRect | None:
        """Where the main picture (the screen, else the camera) is drawn, in this tile's coordinates, after
        the letterbox; ``None`` before its first frame. The benchmark reads the room's glass there."""
        screen = self._image(SCREEN)
        main = screen if screen is not None else self._image(CAMERA)
        return None if main is None else fit_rect(main.size(), self.rect())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), _BACKGROUND)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            screen = self._image(SCREEN)
            camera = self._image(CAMERA)
            main = screen if screen is not None else camera
            if main is None:
                self._paint_waiting(painter)
                return
            painter.drawImage(fit_rect(main.size(), self.rect()), main)
            if screen is not None and camera is not None:
                inset = pip_rect(camera.size(), self.rect())
                painter.drawImage(inset, camera)
                painter.setPen(QPen(_PIP_BORDER, max(1, inset.width() // 120)))
                painter.drawRect(inset.adjusted(0, 0, -1, -1))
        finally:
            painter.end()

    def _image(self, kind: str) -> QImage | None:
        slot = self._slots.get(kind)
        return None if slot is None else slot.image

    def _paint_waiting(self, painter: QPainter) -> None:
        font = QFont(self.font())
        font.setPixelSize(max(10, self.height() // 18))
        painter.setFont(font)
        painter.setPen(_WAITING_TEXT)
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Connecting…")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_name_label()

    def _place_name_label(self) -> None:
        font = QFont(self._name_label.font())
        font.setPixelSize(max(10, round(min(self.height() / 16, self.width() / 24))))
        self._name_label.setFont(font)
        pad = max(2, font.pixelSize() // 3)
        self._name_label.setContentsMargins(pad, pad // 2, pad, pad // 2)
        # At most half the tile, so the name never runs under the camera inset in the other corner.
        name = self._share.sender_name
        room = max(1, self.width() // 2 - 2 * pad)
        self._name_label.setText(QFontMetrics(font).elidedText(name, Qt.TextElideMode.ElideRight, room))
        self._name_label.setToolTip(name)
        self._name_label.setAccessibleName(name)
        self._name_label.adjustSize()
        margin = max(4, round(min(self.width(), self.height()) * 0.03))
        self._name_label.move(margin, self.height() - margin - self._name_label.height())
        # Top left: the room's share count sits top right, the camera inset bottom right.
        small = QFont(font)
        small.setPixelSize(max(9, round(font.pixelSize() * 0.7)))
        self.drop_button.setFont(small)
        self.drop_button.adjustSize()
        self.drop_button.move(margin, margin)
        self.drop_button.raise_()
