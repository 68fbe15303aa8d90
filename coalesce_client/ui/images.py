"""Pictures for the views: numpy RGB arrays to pixmaps, and the app's icon, drawn rather than shipped."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap

ACCENT = QColor(37, 99, 235)
ACCENT_DARK = QColor(29, 78, 216)


def rgb_pixmap(picture: np.ndarray) -> QPixmap:
    """An RGB ``uint8`` (h, w, 3) array as a pixmap (copied: the array may change afterwards)."""
    rgb = np.ascontiguousarray(picture[:, :, :3])
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, rgb.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


def _draw_icon(size: int, *, live: bool) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    unit = size / 16
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(ACCENT_DARK if not live else QColor(220, 38, 38))
    painter.drawRoundedRect(QRectF(1 * unit, 2 * unit, 14 * unit, 10 * unit), 1.6 * unit, 1.6 * unit)
    painter.setBrush(QColor(255, 255, 255))
    painter.drawRoundedRect(QRectF(2.5 * unit, 3.5 * unit, 11 * unit, 7 * unit), 0.8 * unit, 0.8 * unit)
    pen = QPen(ACCENT if not live else QColor(220, 38, 38))
    pen.setWidthF(1.4 * unit)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    # An arrow into the screen: sharing to the room display.
    painter.drawLine(int(5 * unit), int(7 * unit), int(11 * unit), int(7 * unit))
    painter.drawLine(int(8.5 * unit), int(4.8 * unit), int(11 * unit), int(7 * unit))
    painter.drawLine(int(8.5 * unit), int(9.2 * unit), int(11 * unit), int(7 * unit))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(ACCENT_DARK if not live else QColor(220, 38, 38))
    painter.drawRect(QRectF(7 * unit, 12 * unit, 2 * unit, 1.5 * unit))
    painter.drawRoundedRect(QRectF(4.5 * unit, 13.5 * unit, 7 * unit, 1.2 * unit), 0.5 * unit, 0.5 * unit)
    painter.end()
    return pixmap


def app_icon(*, live: bool = False) -> QIcon:
    """The app's icon; ``live`` (red) while sharing."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        icon.addPixmap(_draw_icon(size, live=live))
    return icon
