"""The screens and cameras that can be shared, as the sharing screen offers them, and the camera preview.

Pictures are RGB ``uint8`` arrays of shape (height, width, 3), already scaled down for display.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import av
import numpy as np

from coalesce_client.models.observable import Observable


@dataclass(frozen=True, eq=False)
class Monitor:
    """One monitor, numbered as mss (and ``coalesce share --screen``) number them, from 1."""

    index: int
    width: int
    height: int
    thumbnail: np.ndarray | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"Screen {self.index} ({self.width}\N{MULTIPLICATION SIGN}{self.height})"


@dataclass(frozen=True)
class Camera:
    """A camera (``spec`` is its OpenCV index as text) or a video file standing in for one."""

    spec: str
    label: str


class MediaSources(Observable):
    def __init__(self) -> None:
        super().__init__()
        self.monitors: list[Monitor] = []
        self.screen_problem: str | None = None
        self.cameras: list[Camera] = []
        self.camera_preview: np.ndarray | None = None

    def set_monitors(self, monitors: Sequence[Monitor], problem: str | None = None) -> None:
        self.monitors = list(monitors)
        self.screen_problem = problem
        self._changed()

    def set_cameras(self, cameras: Sequence[Camera]) -> None:
        cameras = list(cameras)
        if cameras != self.cameras:
            self.cameras = cameras
            self._changed()

    def add_camera(self, camera: Camera) -> None:
        if camera not in self.cameras:
            self.cameras = [*self.cameras, camera]
            self._changed()

    def camera_label(self, spec: str) -> str:
        for camera in self.cameras:
            if camera.spec == spec:
                return camera.label
        return f"Camera {spec}" if spec.isdigit() else spec

    def set_preview(self, picture: np.ndarray | None) -> None:
        if picture is None and self.camera_preview is None:
            return
        self.camera_preview = picture
        self._changed()


def preview_picture(frame: av.VideoFrame, max_width: int) -> np.ndarray:
    """``frame`` as an RGB picture at most ``max_width`` wide (even sizes, aspect kept), for previews."""
    width = max(2, min(max_width, frame.width) // 2 * 2)
    height = max(2, round(frame.height * width / frame.width) // 2 * 2)
    picture: np.ndarray = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    return picture
