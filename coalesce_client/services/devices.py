"""What this computer can share, looked up for the sharing screen: monitor thumbnails and cameras.

No Qt here; both functions block (mss grabs, sysfs reads) and are called in a worker thread by the
controller.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import cv2
import mss
import numpy as np

from coalesce_client.models.media import Camera, Monitor
from coalesce_common.errors import MediaError

logger = logging.getLogger(__name__)

THUMBNAIL_WIDTH = 320
_V4L_SYSFS = Path("/sys/class/video4linux")


def _grabber(display: str | None) -> Any:
    factory = getattr(mss, "MSS", None) or mss.mss  # mss.MSS from 10.2 on
    try:
        return factory(display=display) if display else factory()
    except Exception as exc:
        raise MediaError(f"No screen can be captured here ({exc}): share a camera instead.") from exc


def grab_monitors(display: str | None = None, max_width: int = THUMBNAIL_WIDTH) -> list[Monitor]:
    """Every monitor with a small RGB thumbnail of what it shows now; :class:`MediaError` if none."""
    monitors: list[Monitor] = []
    with _grabber(display) as grabber:
        for index, region in enumerate(grabber.monitors):
            if index == 0:  # mss's entry 0 is all monitors together
                continue
            thumbnail = None
            try:
                shot = grabber.grab(region)
                bgra = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)
                width = min(max_width, shot.width)
                height = max(1, round(shot.height * width / shot.width))
                small = cv2.resize(bgra, (width, height), interpolation=cv2.INTER_AREA)
                thumbnail = cv2.cvtColor(small, cv2.COLOR_BGRA2RGB)
            except Exception as exc:  # a monitor that cannot be grabbed is still listed, without a picture
                logger.debug("cannot grab monitor %d: %s", index, exc)
            monitors.append(Monitor(index, region["width"], region["height"], thumbnail))
    if not monitors:
        raise MediaError("No screen can be captured here: share a camera instead.")
    return monitors


def list_cameras() -> list[Camera]:
    """The cameras OpenCV can open, without opening any (that would light them up or ask permission)."""
    if sys.platform.startswith("linux"):
        return _linux_cameras()
    # Elsewhere OpenCV offers no list; the first two indexes are where built-in and USB cameras go.
    return [Camera("0", "Built-in camera"), Camera("1", "Second camera")]


def _linux_cameras() -> list[Camera]:
    cameras: list[Camera] = []
    try:
        devices = sorted(_V4L_SYSFS.glob("video*"), key=lambda p: int(p.name[5:] or 0))
    except (OSError, ValueError):
        return cameras
    for device in devices:
        number = device.name.removeprefix("video")
        if not number.isdigit():
            continue
        try:
            if (device / "index").read_text().strip() not in ("", "0"):
                continue  # a camera's second node (metadata), not a picture
            name = (device / "name").read_text().strip()
        except OSError:
            name = ""
        cameras.append(Camera(number, name or f"Camera {number}"))
    return cameras
