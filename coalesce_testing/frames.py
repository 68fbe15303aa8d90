"""``FakeSource``: a decoded track with a picture set by hand, for the views that read frame sources."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from coalesce_receiver.models.room import Picture, Size
from coalesce_receiver.services.pictures import PictureFeed, convert_rgb_array

Rgb = tuple[int, int, int]


class FakeSource:
    """A :class:`~coalesce_receiver.models.room.FrameSource` showing ``picture``: an RGB array, a solid
    colour of ``size`` (width, height), or nothing yet (None).

    :meth:`paint` (or :meth:`show`) swaps in a new frame (a new array object, as a real sink does), which a
    watcher gets through the same :class:`~coalesce_receiver.services.pictures.PictureFeed` (a worker
    thread) as from a real sink; ``reads`` counts :meth:`latest_rgb` calls, ``frames`` the frames shown.
    ``stats()`` reports ``frames`` if given, else the frames so far.
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
        self.frames = 0
        self.feed: PictureFeed[np.ndarray] = PictureFeed(convert_rgb_array, kind)
        if isinstance(picture, np.ndarray):
            self.show(picture)
        elif picture is not None:
            self.paint(picture)

    def paint(self, colour: Rgb) -> None:
        width, height = self._size
        frame = np.empty((height, width, 3), dtype=np.uint8)
        frame[:, :] = colour
        self.show(frame)

    def show(self, frame: np.ndarray) -> None:
        """Make ``frame`` (an RGB array; anything else is dropped by the feed) the newest frame."""
        self._frame = frame
        self.frames += 1
        height, width = frame.shape[:2] if frame.ndim >= 2 else (0, 0)
        self.feed.offer(frame, (int(width), int(height)), self.frames)

    def clear(self) -> None:
        self._frame = None
        self.feed.clear()

    def watch(self, box: Size, on_picture: Callable[[], None]) -> None:
        self.feed.watch(box, on_picture)

    def unwatch(self) -> None:
        self.feed.unwatch()

    def latest_picture(self) -> Picture | None:
        return self.feed.latest()

    def latest_rgb(self) -> np.ndarray | None:
        self.reads += 1
        return self._frame

    def stats(self) -> dict[str, object]:
        height, width = (0, 0) if self._frame is None else self._frame.shape[:2]
        frames = self.frames if self._frames is None else self._frames
        return {"kind": self.kind, "frames": frames, "width": width, "height": height, "fps": self._fps}
