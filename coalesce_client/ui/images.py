"""Pictures for the views: numpy RGB arrays to pixmaps, and the app's icon from the packaged PNGs."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QIcon, QImage, QPixmap

from coalesce_common.resources import SENDER_ICON, SENDER_LIVE_ICON, icon_paths


def rgb_pixmap(picture: np.ndarray) -> QPixmap:
    """An RGB ``uint8`` (h, w, 3) array as a pixmap (copied: the array may change afterwards)."""
    rgb = np.ascontiguousarray(picture[:, :, :3])
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, rgb.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


def app_icon(*, live: bool = False) -> QIcon:
    """The app's icon (``resources/icons/coalesce*.png``); ``live`` (red) while sharing."""
    icon = QIcon()
    for path in icon_paths(SENDER_LIVE_ICON if live else SENDER_ICON):
        icon.addFile(str(path))
    return icon
