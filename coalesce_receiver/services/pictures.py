"""Pictures for the room's glass: each new frame of a track scaled to the box a view shows it in and turned
into the display's pixel layout, in a worker thread, the newest frame winning.

The window used to poll every track at 30 Hz and convert full-size frames to RGB on the GUI thread, then
let Qt scale them while painting: at most 30 fps on screen, up to a frame of delay, and a 1080p frame's
conversion and scaling (about 15 ms here) on the thread that also runs the event loop. A
:class:`PictureFeed` does that work where it does not hold the loop: FFmpeg's swscale (through PyAV's
``reformat``) and OpenCV both release the GIL while they scale, so a 1080p60 share is converted on the
second core while the loop receives and paints. The view is told (:attr:`on_picture`, from the worker
thread) and paints the picture 1:1.

Frames arrive faster than they can be converted only on an overloaded box; then the feed drops the older
pending frame (a room shows the present, never a backlog).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import av
import cv2
import numpy as np

from coalesce_common.logutil import RateLimitedLog
from coalesce_receiver.models.room import Picture, Size, fit_size

logger = logging.getLogger(__name__)

F = TypeVar("F")

Converter = Callable[[F, Size], np.ndarray]
"""``(frame, size) -> pixels``: the frame scaled to ``size`` as B, G, R, X ``uint8`` of shape (h, w, 4)."""

_LOG_INTERVAL_S = 30.0


def convert_video_frame(frame: av.VideoFrame, size: Size) -> np.ndarray:
    """A decoded frame scaled by swscale (area averaging when shrinking, so text stays legible) to BGRX."""
    width, height = size
    shrinking = width < frame.width or height < frame.height
    scaled = frame.reformat(
        width=width,
        height=height,
        format="bgra",
        interpolation="AREA" if shrinking else "BILINEAR",
        threads=1,  # one scaling thread per track: the box's other core decodes and paints
    )
    # FFmpeg pads rows (to 32 or 64 bytes), so most widths come as a strided view: one copy makes the rows
    # contiguous for the QImage that shares them.
    pixels: np.ndarray = np.ascontiguousarray(scaled.to_ndarray())
    return pixels


def convert_rgb_array(frame: np.ndarray, size: Size) -> np.ndarray:
    """An RGB ``uint8`` array (h, w, 3) scaled by OpenCV to BGRX; raises ``ValueError`` for anything else."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
        raise ValueError(f"expected an RGB uint8 array of shape (h, w, 3), got {frame.dtype} {frame.shape}")
    height, width = frame.shape[:2]
    if (width, height) != size:
        shrinking = size[0] < width or size[1] < height
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    pixels: np.ndarray = cv2.cvtColor(frame, cv2.COLOR_RGB2BGRA)
    return pixels


class PictureFeed(Generic[F]):
    """Scales the newest offered frame for one watcher, in a daemon thread started by :meth:`watch`.

    :meth:`offer` (from the event loop, on every frame) never waits for a conversion: it replaces the
    frame waiting to be converted, if any. :meth:`close` ends the feed for good (the track ended).
    """

    def __init__(self, convert: Converter[F], name: str) -> None:
        self._convert = convert
        self._name = name
        self._cond = threading.Condition()
        self._box: Size | None = None
        self._on_picture: Callable[[], None] | None = None
        self._last: tuple[F, Size, int] | None = None  # the newest frame offered, kept for a new box
        self._pending: tuple[F, Size, int] | None = None
        self._latest: Picture | None = None
        self._thread: threading.Thread | None = None
        self._stopped: threading.Thread | None = None  # the thread unwatch() last told to end
        self._generation = 0  # a thread runs while this is its own; unwatch() moves it on
        self._closed = False
        self._log = RateLimitedLog(logger, _LOG_INTERVAL_S)  # frames come from remote peers
        self.converted = 0
        """Pictures delivered since the feed was made (tests and stats read it)."""

    @property
    def watched(self) -> bool:
        return self._box is not None

    @property
    def box(self) -> Size | None:
        """The box the watcher shows pictures in (device pixels), ``None`` when unwatched."""
        return self._box

    def watch(self, box: Size, on_picture: Callable[[], None]) -> None:
        with self._cond:
            if self._closed:
                return
            changed = box != self._box
            self._box, self._on_picture = box, on_picture
            if changed and self._last is not None and self._pending is None:
                self._pending = self._last  # show the newest frame at the new size now, not next frame
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run,
                    args=(self._generation,),
                    name=f"coalesce-{self._name}-pictures",
                    daemon=True,
                )
                self._thread.start()
            self._cond.notify()

    def unwatch(self) -> None:
        """Stop converting; never waits (it is called on the GUI thread): the thread ends after the
        conversion in progress, if any, and tells nobody of it."""
        with self._cond:
            self._box = self._on_picture = None
            self._pending = self._latest = None
            self._stopped, self._thread = self._thread, None
            self._generation += 1
            self._cond.notify_all()

    def close(self) -> None:
        """End the feed: no more pictures, and :meth:`watch` does nothing from now on."""
        with self._cond:
            self._closed = True
        self.unwatch()

    def join(self, timeout: float) -> None:
        """Wait (off the event loop) for the thread that :meth:`unwatch` or :meth:`close` stopped."""
        thread = self._stopped
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def offer(self, frame: F, frame_size: Size, number: int) -> None:
        """The track's newest frame (its ``number``-th); converted if someone watches."""
        with self._cond:
            self._last = (frame, frame_size, number)
            if self._box is not None:
                self._pending = self._last
                self._cond.notify()

    def clear(self) -> None:
        """Forget the newest frame and picture (the sender stopped this source); the watcher is told."""
        with self._cond:
            self._last = self._pending = self._latest = None
            on_picture = self._on_picture
        if on_picture is not None:
            on_picture()

    def latest(self) -> Picture | None:
        with self._cond:
            return self._latest

    def _run(self, generation: int) -> None:
        while True:
            with self._cond:
                while self._pending is None and generation == self._generation:
                    self._cond.wait()
                if generation != self._generation:
                    return
                assert self._pending is not None and self._box is not None
                (frame, frame_size, number), box = self._pending, self._box
                self._pending = None
            try:
                pixels = self._convert(frame, fit_size(frame_size, box))
            except Exception as exc:  # a frame from a remote peer: drop it, keep the feed
                self._log.warning(
                    "convert", "Could not prepare a %s frame for the screen: %s", self._name, exc
                )
                continue
            with self._cond:
                if generation != self._generation or self._box != box or self._last is None:
                    continue  # unwatched, resized or cleared meanwhile: the pending job (if any) wins
                self._latest = Picture(pixels, frame_size, number)
                self.converted += 1
                on_picture = self._on_picture
            if on_picture is not None:
                try:
                    on_picture()
                except Exception:  # the view went away meanwhile (a deleted tile): nothing to tell
                    logger.debug("the view of a %s picture is gone", self._name, exc_info=True)
