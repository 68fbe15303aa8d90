"""``FakeSource``: a decoded track with a picture set by hand, for the views that read frame sources."""

from __future__ import annotations

import numpy as np

Rgb = tuple[int, int, int]


class FakeSource:
    """A :class:`~coalesce_receiver.models.room.FrameSource` showing ``picture``: an RGB array, a solid
    colour of ``size`` (width, height), or nothing yet (None).

    :meth:`paint` swaps in a new frame (a new array object, as a real sink does); ``reads`` counts
    :meth:`latest_rgb` calls. ``stats()`` reports ``frames`` if given, else the reads so far.
    """

    def __init__(
        self,
        kind: str,
        picture: np.ndarray | Rgb | None,
        *,
        size: tuple[int, int] = (1280, 720),
        frames: int | None = None,
        fps: float = 0.0,
    ) -> None:
        self.kind = kind
        self.reads = 0
        self._size = size
        self._frames = frames
        self._fps = fps
        self._frame: np.ndarray | None = None
        if isinstance(picture, np.ndarray):
            self._frame = picture
        elif picture is not None:
            self.paint(picture)

    def paint(self, colour: Rgb) -> None:
        width, height = self._size
        frame = np.empty((height, width, 3), dtype=np.uint8)
        frame[:, :] = colour
        self._frame = frame

    def clear(self) -> None:
        self._frame = None

    def latest_rgb(self) -> np.ndarray | None:
        self.reads += 1
        return self._frame

    def stats(self) -> dict[str, object]:
        height, width = (0, 0) if self._frame is None else self._frame.shape[:2]
        frames = self.reads if self._frames is None else self._frames
        return {"kind": self.kind, "frames": frames, "width": width, "height": height, "fps": self._fps}
