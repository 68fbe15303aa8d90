"""The receiving end of a video track, and the files the receiver writes about what it shows.

This module owns decoded frames on the receiver. :class:`TrackSink` drains one remote aiortc track,
keeps only its newest frame (views show the present, never a backlog) and counts frames, size and rate;
it is the :class:`~coalesce_receiver.models.room.FrameSource` that views read. :class:`StatsWriter`
and :class:`SnapshotWriter` are views too: once a second they write the room's track statistics as
JSON and each track's newest frame as PNG, replacing files atomically so readers (monitoring, tests)
never see a half-written one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from coalesce_common.media.receiving import SenderReport
from coalesce_receiver.models.room import FrameSource, Picture, RoomModel, Size
from coalesce_receiver.services.lip_sync import PictureClock
from coalesce_receiver.services.pictures import PictureFeed, convert_video_frame
from coalesce_receiver.services.speaker import RoomSpeaker

logger = logging.getLogger(__name__)

FPS_WINDOW = 2.0
"""Seconds of frame arrivals the frame rate is measured over."""


HELD_EARLY = 0.002
"""Seconds before it is due that a held frame may be shown (the event loop's timers are that coarse)."""


FrameHook = Callable[[av.VideoFrame], None]
"""Called with every decoded frame, on the event loop, before it becomes the sink's newest frame."""


class TrackSink:
    """Consumes a remote video track; implements :class:`~coalesce_receiver.models.room.FrameSource`.

    ``on_frame`` sees every decoded frame once, as it arrives (the benchmark reads its timecode there):
    keep it short, it runs on the event loop between two frames.
    """

    def __init__(self, track: MediaStreamTrack, kind: str, *, on_frame: FrameHook | None = None) -> None:
        self.track = track
        self.kind = kind
        self.on_frame = on_frame
        self.frames = 0
        self.width = 0
        self.height = 0
        self.ended = asyncio.Event()
        """Set when :meth:`run` has returned: the track ended or failed."""
        self._frame: av.VideoFrame | None = None
        # latest_rgb() may run in a worker thread (snapshots) while run() replaces the frame.
        self._rgb_lock = threading.Lock()
        self._rgb_frame: av.VideoFrame | None = None
        self._rgb: np.ndarray | None = None
        self._started_at: float | None = None
        self._arrivals: collections.deque[float] = collections.deque()
        self._frame_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._pictures: PictureFeed[av.VideoFrame] = PictureFeed(convert_video_frame, kind)
        self._box: Size | None = None
        self.on_box: Callable[[Size | None], None] | None = None
        """Called (on the thread that watches: the event loop's) when the box the track is shown in
        changes, ``None`` when no view shows it any more: the share tells its sender what the tile needs."""
        self.sender_report: Callable[[], SenderReport | None] | None = None
        """The track's latest RTCP sender report, if the share gave a way to it: then :attr:`picture`
        follows when its frames reach the glass, which the share's sound is played in step with."""
        self.picture = PictureClock()
        self._held: collections.deque[tuple[float, av.VideoFrame, int]] = collections.deque()
        """Frames held for the share's sound (lip sync), each with when it is due, oldest first."""

    @property
    def latest_frame(self) -> av.VideoFrame | None:
        return self._frame

    async def run(self) -> None:
        """Receive frames until the track ends; returns then (never raises for an ended track)."""
        try:
            while True:
                try:
                    frame = await self.track.recv()
                except MediaStreamError:
                    break
                if isinstance(frame, av.VideoFrame):
                    self._accept(frame)
        finally:
            logger.debug("%s track %s ended after %d frames", self.kind, self.track.id, self.frames)
            self._pictures.close()
            self.ended.set()
            self._release_waiters(everyone=True)
            await asyncio.to_thread(self._pictures.join, 1.0)  # its conversion thread ends with the track

    async def wait_for_frames(self, count: int) -> bool:
        """Wait until ``count`` frames have arrived (``True``) or the track ended first (``False``)."""
        if self.frames < count and not self.ended.is_set():
            waiter = asyncio.get_running_loop().create_future()
            self._frame_waiters.append((count, waiter))
            try:
                await waiter
            finally:
                self._frame_waiters = [(n, w) for n, w in self._frame_waiters if w is not waiter]
        return self.frames >= count

    def _release_waiters(self, everyone: bool = False) -> None:
        for count, waiter in self._frame_waiters:
            if (everyone or self.frames >= count) and not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Forget the newest frame (the sender stopped this source): views show nothing until the next."""
        self._frame = None
        with self._rgb_lock:
            self._rgb_frame = self._rgb = None
        self._pictures.clear()
        self._held.clear()  # held frames of the stopped source are never shown
        self.picture = PictureClock()  # its timing was of frames no longer shown

    def watch(self, box: Size, on_picture: Callable[[], None]) -> None:
        self._pictures.watch(box, on_picture)
        self._set_box(box)

    def unwatch(self) -> None:
        self._pictures.unwatch()
        self._set_box(None)

    def _set_box(self, box: Size | None) -> None:
        if box != self._box:
            self._box = box
            if self.on_box is not None:
                self.on_box(box)

    def latest_picture(self) -> Picture | None:
        return self._pictures.latest()

    def _accept(self, frame: av.VideoFrame) -> None:
        if self.on_frame is not None:
            self.on_frame(frame)
        now = time.monotonic()
        if self._started_at is None:
            self._started_at = now
        report = self.sender_report() if self.sender_report is not None else None
        if report is not None and frame.pts is not None:
            self.picture.saw(report.sender_time(frame.pts), now)
        self._frame = frame
        self.frames += 1
        self.width = frame.width
        self.height = frame.height
        self._arrivals.append(now)
        self._forget_arrivals_before(now - FPS_WINDOW)
        hold = self.picture.hold
        if hold <= 0 and not self._held:
            self._pictures.offer(frame, (frame.width, frame.height), self.frames)
        else:  # held for the share's sound (lip sync); never before a frame held longer
            show_at = max(now + hold, self._held[-1][0] if self._held else now)
            self._held.append((show_at, frame, self.frames))
            asyncio.get_running_loop().call_later(show_at - now, self._show_due)
        if self._frame_waiters:
            self._release_waiters()

    def _show_due(self) -> None:
        """Show the held frames that are due, in order (each frame's timer may fire a little early or
        late; whichever fires shows every frame due by then)."""
        now = time.monotonic() + HELD_EARLY
        while self._held and self._held[0][0] <= now:
            _, frame, number = self._held.popleft()
            self._pictures.offer(frame, (frame.width, frame.height), number)

    def _forget_arrivals_before(self, cutoff: float) -> None:
        while self._arrivals and self._arrivals[0] < cutoff:
            self._arrivals.popleft()

    @property
    def fps(self) -> float:
        """Frames per second over the last :data:`FPS_WINDOW` seconds (0 when frames stopped coming)."""
        if self._started_at is None:
            return 0.0
        now = time.monotonic()
        self._forget_arrivals_before(now - FPS_WINDOW)
        if now - self._started_at >= FPS_WINDOW:
            return len(self._arrivals) / FPS_WINDOW
        # Young stream: the window is not full yet, so measure between the arrivals seen so far.
        if len(self._arrivals) < 2:
            return 0.0
        return (len(self._arrivals) - 1) / (self._arrivals[-1] - self._arrivals[0])

    def latest_rgb(self) -> np.ndarray | None:
        """The newest frame as RGB (h, w, 3) ``uint8``, converted once per frame; thread-safe."""
        frame = self._frame
        if frame is None:
            return None
        with self._rgb_lock:
            if self._rgb_frame is frame:
                return self._rgb
        rgb: np.ndarray = frame.to_ndarray(format="rgb24")
        with self._rgb_lock:
            self._rgb_frame, self._rgb = frame, rgb
        return rgb

    def stats(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 1),
            "held_ms": round(self.picture.hold * 1000),
        }


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def stats_document(model: RoomModel, speaker: RoomSpeaker | None = None) -> dict[str, object]:
    """What :class:`StatsWriter` writes: every share with its tracks' :meth:`FrameSource.stats`, and the
    room's sound output (:meth:`RoomSpeaker.stats`) when it has one."""
    document: dict[str, object] = {
        "shares": [
            {
                "sender": share.sender_name,
                "share_id": share.share_id,
                "tracks": [source.stats() for source in share.tracks.values()],
            }
            for share in model.shares
        ]
    }
    if speaker is not None:
        document["sound"] = speaker.stats()
    return document


def snapshot_filename(sender: str, kind: str) -> str:
    """``<sender>-<kind>.png`` with anything but letters, digits, ``-`` and ``_`` replaced by ``_``."""

    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"

    return f"{safe(sender)}-{safe(kind)}.png"


class _PeriodicWriter:
    """Runs :meth:`write_now` at start, every ``interval`` seconds, and once more at :meth:`aclose`."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self.writes = 0
        """Completed writes, for callers that wait for fresh output (see :meth:`wait_for_writes`)."""
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._written = asyncio.Condition()
        self._closed = False
        self._failing = False

    def start(self) -> None:
        """Start writing (from the event loop); later calls do nothing."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=type(self).__name__)

    async def aclose(self) -> None:
        """Stop, after one last write; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        if self._task is not None:
            await self._task  # it makes the last write on its way out

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def wait_for_writes(self, count: int) -> None:
        """Return once :attr:`writes` has reached ``count``."""
        async with self._written:
            await self._written.wait_for(lambda: self.writes >= count)

    async def write_now(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_due = loop.time()
        while True:
            await self._write_logged()
            # A fixed rate, not a fixed pause: "every second" must hold even when a write takes a while.
            next_due = max(next_due + self.interval, loop.time())
            try:
                await asyncio.wait_for(self._stopping.wait(), next_due - loop.time())
            except TimeoutError:
                continue
            break
        await self._write_logged()

    async def _write_logged(self) -> None:
        try:
            await self.write_now()
        except Exception as exc:
            # Once per failure streak: a full disk must not flood the log every second. The writer carries
            # on, since the room display matters more than its reports. A full disk or a process out of
            # descriptors is the machine's state, in one line; anything else is a bug, with its traceback.
            if not self._failing:
                logger.log(
                    logging.WARNING if isinstance(exc, OSError) else logging.ERROR,
                    "%s could not write (%s); it tries again every %g s",
                    type(self).__name__,
                    exc,
                    self.interval,
                    exc_info=not isinstance(exc, OSError),
                )
            self._failing = True
            return
        self._failing = False
        async with self._written:
            self.writes += 1
            self._written.notify_all()


class StatsWriter(_PeriodicWriter):
    """Keeps ``path`` a JSON document of the room's shares and their tracks' statistics (and of the room's
    ``speaker``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        model: RoomModel,
        interval: float = 1.0,
        *,
        speaker: RoomSpeaker | None = None,
    ) -> None:
        super().__init__(interval)
        self.path = Path(path)
        self.model = model
        self.speaker = speaker

    async def write_now(self) -> None:
        # The model is read here, on the event loop; only the file IO goes to a thread.
        data = json.dumps(stats_document(self.model, self.speaker), indent=2).encode()
        await asyncio.to_thread(_atomic_write, self.path, data)


class SnapshotWriter(_PeriodicWriter):
    """Keeps ``<sender>-<kind>.png`` in ``directory`` showing each track's newest frame."""

    def __init__(self, directory: str | os.PathLike[str], model: RoomModel, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.directory = Path(directory)
        self.model = model
        self._written_images: dict[Path, np.ndarray] = {}  # only touched by the one worker-thread call

    async def write_now(self) -> None:
        jobs = [
            (self.directory / snapshot_filename(share.sender_name, kind), source)
            for share in self.model.shares
            for kind, source in share.tracks.items()
        ]
        if jobs:
            await asyncio.to_thread(self._write_snapshots, jobs)

    def _write_snapshots(self, jobs: list[tuple[Path, FrameSource]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path, source in jobs:
            rgb = source.latest_rgb()
            if rgb is None or rgb is self._written_images.get(path):
                continue  # no frame yet, or the same frame as last time
            ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if not ok:
                logger.warning(
                    "could not encode a %dx%d snapshot for %s", rgb.shape[1], rgb.shape[0], path.name
                )
                continue
            _atomic_write(path, png.tobytes())
            self._written_images[path] = rgb
