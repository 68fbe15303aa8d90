"""Video capture: grabbing the screen or a camera in a thread and handing the newest frame to asyncio.

This module owns the capture threads and the frames they make. A :class:`CaptureSource` runs one thread
that grabs, converts to I420 with OpenCV and wraps the result zero-copy in an ``av.VideoFrame``; the frame
goes into a :class:`FrameSlot`, which keeps only the newest one, so a slow consumer (the encoder) skips
stale frames instead of building up delay. :class:`ScreenSource` grabs a monitor with mss;
:class:`CameraSource` reads a camera or a video file with OpenCV (a file is how tests stand in for a camera,
and it goes through the very same code). Failures in the thread become a :class:`MediaError` that the
consumer gets from :meth:`FrameSlot.get`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import threading
import time
from typing import Any, ClassVar, Self

import av
import cv2
import mss
import numpy as np

from coalesce_common.errors import MediaError
from coalesce_common.media.limits import StreamLimits

logger = logging.getLogger(__name__)

DEFAULT_CAMERA_FPS = 30.0
"""Pace for a camera or file that does not report a usable frame rate."""

MAX_NATIVE_FPS = 240.0
"""A reported frame rate above this is treated as bogus (some backends report 1000 or 90000)."""

STOP_JOIN_TIMEOUT = 5.0
"""How long :meth:`CaptureSource.stop` and :meth:`~CaptureSource.aclose` wait for the thread; a grab blocked
in a driver can take a while."""


class FrameSlot:
    """Newest-frame hand-off from one producer thread to one asyncio consumer.

    :meth:`put` never queues: a frame that was not taken before the next one arrives is dropped (and
    counted). :meth:`get` returns only frames newer than the last one it returned. After :meth:`close`,
    :meth:`get` raises the error it was closed with once no newer frame is left.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: av.VideoFrame | None = None
        self._put_count = 0
        self._taken_count = 0  # the value of _put_count when get() last returned a frame
        self._dropped = 0
        self._error: MediaError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()

    @property
    def frames_put(self) -> int:
        return self._put_count

    @property
    def frames_dropped(self) -> int:
        """Frames overwritten by a newer one before :meth:`get` took them."""
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._error is not None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake waiters on ``loop`` (also done by the first :meth:`get`)."""
        with self._lock:
            self._loop = loop

    def put(self, frame: av.VideoFrame) -> None:
        """Offer ``frame`` as the newest one; safe from any thread."""
        with self._lock:
            if self._frame is not None and self._put_count > self._taken_count:
                self._dropped += 1
            self._frame = frame
            self._put_count += 1
            loop = self._loop
        self._wake(loop)

    def close(self, error: MediaError | None = None) -> None:
        """End the hand-off: pending and later :meth:`get` calls raise ``error`` (by default "stopped")."""
        with self._lock:
            if self._error is None:
                self._error = error or MediaError("The capture has stopped.")
            loop = self._loop
        self._wake(loop)

    # The timeout is part of the contract (the track re-sends after it), hence not left to the caller.
    async def get(self, timeout: float | None = None) -> av.VideoFrame:
        """Wait for a frame newer than the last one returned; ``TimeoutError`` after ``timeout`` seconds."""
        self.bind(asyncio.get_running_loop())
        async with asyncio.timeout(timeout):
            while True:
                # Clear before checking: a put() after the check schedules a set() that wakes the wait below.
                self._wakeup.clear()
                with self._lock:
                    if self._frame is not None and self._put_count > self._taken_count:
                        self._taken_count = self._put_count
                        return self._frame
                    if self._error is not None:
                        raise self._error
                await self._wakeup.wait()

    def _wake(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is None:
            return  # nobody has waited yet; the first get() will see the frame
        with contextlib.suppress(RuntimeError):  # the consumer's loop is closed: no one is left to wake
            loop.call_soon_threadsafe(self._wakeup.set)


class CaptureSource(abc.ABC):
    """A capture thread that puts converted frames into :attr:`slot` at most :attr:`fps` times a second.

    Subclasses open their device in :meth:`_open` (in the thread, because capture libraries are not
    thread-safe), grab one frame per :meth:`_grab` and release the device in :meth:`_close`.
    """

    kind: ClassVar[str]
    """``"screen"`` or ``"camera"``: the track kind the receiver shows it as."""

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.slot = FrameSlot()
        self.error: MediaError | None = None
        """Why the thread ended, if it failed; also raised by :meth:`FrameSlot.get`."""
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.limits: StreamLimits | None = None
        """What the room asked for (:mod:`coalesce_common.media.limits`): frames larger than its size are
        scaled down in the thread, and it grabs no faster than its rate. Set it from any thread."""

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the thread (once; later calls do nothing); frames wake waiters on ``loop``."""
        if self._thread is not None:
            return
        self.slot.bind(loop or asyncio.get_running_loop())
        self._thread = threading.Thread(target=self._run, name=f"coalesce-{self.kind}-capture", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Tell the thread to stop, without waiting for it; safe from any thread, and on the event loop."""
        self._stopping.set()

    def stop(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        """Stop the thread and wait for it to release the device; safe to call more than once.

        This blocks for up to ``timeout``: async code uses :meth:`aclose` instead.
        """
        self.request_stop()
        self._join(timeout)
        self.slot.close()

    async def aclose(self, timeout: float = STOP_JOIN_TIMEOUT) -> None:
        """:meth:`stop` without blocking the event loop: the wait for the thread runs in a worker thread."""
        self.request_stop()
        await asyncio.to_thread(self._join, timeout)
        self.slot.close()

    async def __aenter__(self) -> Self:
        self.start(asyncio.get_running_loop())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s capture thread did not stop within %.1f s", self.kind, timeout)

    def _run(self) -> None:
        try:
            try:
                self._open()
                self._capture_loop()
            finally:
                self._close()  # also after a half-done _open(), so subclasses release what they got
        except MediaError as exc:
            self._fail(exc)
        except Exception as exc:
            error = MediaError(f"{self.kind.capitalize()} capture failed: {exc}")
            error.__cause__ = exc
            self._fail(error)

    def _capture_loop(self) -> None:
        next_due = time.monotonic()
        while not self._stopping.is_set():
            self.slot.put(self._grab())
            limits = self.limits
            # self.fps is read after _open(), which may learn the device's own rate.
            fps = self.fps if limits is None else min(self.fps, limits.max_fps)
            next_due += 1.0 / fps
            delay = next_due - time.monotonic()
            if delay <= 0:
                # Behind schedule: carry on from now rather than grabbing a burst to catch up.
                next_due = time.monotonic()
            elif self._stopping.wait(delay):
                break

    def _fail(self, error: MediaError) -> None:
        self.error = error
        logger.error("%s capture stopped: %s", self.kind, error, exc_info=error.__cause__ is not None)
        self.slot.close(error)

    def _shrink(self, image: np.ndarray) -> np.ndarray:
        """``image`` scaled down to the room's limits (area averaging keeps text legible), if it is larger."""
        limits = self.limits
        size = None if limits is None else limits.fit(image.shape[1], image.shape[0])
        return image if size is None else cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _grab(self) -> av.VideoFrame: ...

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the device; called even if :meth:`_open` failed part-way."""


def _even(image: np.ndarray) -> np.ndarray:
    """Crop to even width and height (a view), as 4:2:0 chroma needs."""
    height, width = image.shape[:2]
    return image[: height - height % 2, : width - width % 2]


def _wrap_i420(i420: np.ndarray) -> av.VideoFrame:
    """Wrap OpenCV's I420 layout (Y rows, then U, then V, in an array of 1.5 x height rows) as a frame."""
    height = i420.shape[0] * 2 // 3
    if height % 4:
        # PyAV 18's from_numpy_buffer takes the height as rows // 6 * 4, so for a height of 2 mod 4 (1050,
        # say) it drops two rows and reads chroma from the wrong offset. from_ndarray copies, correctly.
        return av.VideoFrame.from_ndarray(i420, format="yuv420p")
    # Zero-copy: the frame keeps the array alive; cvtColor made it fresh, so nothing writes to it again
    # while the encoder reads it in aiortc's thread pool.
    return av.VideoFrame.from_numpy_buffer(i420, "yuv420p")


def _open_mss(display: str | None) -> Any:
    factory = getattr(mss, "MSS", None) or mss.mss  # mss.MSS from 10.2 on; mss.mss before (deprecated after)
    try:
        return factory(display=display) if display else factory()
    except Exception as exc:
        where = f"X display {display!r}" if display else "the screen"
        raise MediaError(f"Cannot capture {where}: {exc}. Is a graphical session running?") from exc


def _describe_monitors(monitors: list[dict[str, int]]) -> list[dict[str, int]]:
    return [
        {"index": index, "width": m["width"], "height": m["height"], "left": m["left"], "top": m["top"]}
        for index, m in enumerate(monitors)
        if index > 0  # mss's entry 0 is the bounding box of all monitors, not a monitor
    ]


def list_monitors(display: str | None = None) -> list[dict[str, int]]:
    """The monitors a :class:`ScreenSource` can capture: ``index`` (mss numbering, from 1), size, origin."""
    with _open_mss(display) as grabber:
        return _describe_monitors(grabber.monitors)


class ScreenSource(CaptureSource):
    """Captures one monitor with mss (``monitor`` as mss numbers them: 1 is the first, 0 all of them)."""

    kind = "screen"

    def __init__(self, monitor: int = 1, fps: float = 30, display: str | None = None) -> None:
        super().__init__(fps)
        self.monitor = monitor
        self.display = display
        self._grabber: Any = None
        self._region: dict[str, int] = {}

    def _open(self) -> None:
        # Created here, in the capture thread: an mss instance must stay on the thread that made it.
        self._grabber = _open_mss(self.display)
        monitors = self._grabber.monitors
        if not 0 <= self.monitor < len(monitors):
            available = ", ".join(
                f"{m['index']} ({m['width']}x{m['height']} at {m['left']},{m['top']})"
                for m in _describe_monitors(monitors)
            )
            raise MediaError(
                f"There is no monitor {self.monitor}; available monitors: {available or 'none'}. "
                "Pick one of those indexes."
            )
        self._region = dict(monitors[self.monitor])
        logger.info("capturing monitor %d: %s", self.monitor, self._region)

    def _grab(self) -> av.VideoFrame:
        shot = self._grabber.grab(self._region)
        bgra = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        return _wrap_i420(cv2.cvtColor(_even(self._shrink(bgra)), cv2.COLOR_BGRA2YUV_I420))

    def _close(self) -> None:
        if self._grabber is not None:
            self._grabber.close()
            self._grabber = None


class CameraSource(CaptureSource):
    """Reads a camera (an index, or a digit string like ``"0"``) or a video file, looped, with OpenCV.

    With ``fps=None`` it paces to the device's or file's own rate.
    """

    kind = "camera"

    def __init__(self, spec: str | int, fps: float | None = None) -> None:
        super().__init__(fps or DEFAULT_CAMERA_FPS)
        self.spec: str | int = int(spec) if isinstance(spec, str) and spec.isdigit() else spec
        self._fps_requested = fps
        self._capture: cv2.VideoCapture | None = None

    def _open(self) -> None:
        capture = cv2.VideoCapture(self.spec)
        if not capture.isOpened():
            capture.release()
            what = f"camera {self.spec}" if isinstance(self.spec, int) else f"video file {self.spec!r}"
            raise MediaError(f"Cannot open {what}: check that it exists and that no other program uses it.")
        self._capture = capture
        if self._fps_requested is None:
            native = capture.get(cv2.CAP_PROP_FPS)
            if 0 < native <= MAX_NATIVE_FPS:
                self.fps = native
        logger.info("capturing camera %r at %.1f fps", self.spec, self.fps)

    def _grab(self) -> av.VideoFrame:
        assert self._capture is not None
        ok, bgr = self._capture.read()
        if not ok:
            # End of a file: rewind, which loops it. A camera cannot seek, so a failed read stays failed.
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
            if not ok:
                raise MediaError(f"Camera {self.spec!r} stopped delivering frames: was it unplugged?")
        return _wrap_i420(cv2.cvtColor(_even(self._shrink(bgr)), cv2.COLOR_BGR2YUV_I420))

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
