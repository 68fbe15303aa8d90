"""The outgoing video track: a capture source seen as an aiortc ``MediaStreamTrack``.

This module owns frame timing on the sending side. aiortc's own ``VideoStreamTrack`` stamps frames a
fixed 1/30 s apart, so when encoding falls behind, timestamps drift from real time and the receiver
builds up delay; :class:`CaptureTrack` stamps each frame with the wall clock instead. It also keeps the
stream alive while the picture is still (a stalled capture), by re-sending a copy of the last frame, and it
can switch to another source mid-stream (:meth:`CaptureTrack.switch_source`: another screen) without the
receiver seeing a new track: timestamps go on from where they were.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import av
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

from coalesce_common.errors import MediaError
from coalesce_common.media.capture import CaptureSource
from coalesce_common.media.limits import FrameHints, StreamLimits

logger = logging.getLogger(__name__)

STALL_RESEND_AFTER = 1.0
"""Seconds without a new captured frame after which the last one is sent again, so the receiver keeps
seeing a live stream (and a decoder that lost packets gets something to recover from)."""


def _copy_frame(frame: av.VideoFrame) -> av.VideoFrame:
    # A fresh frame over a copy of the pixels: the encoder may still hold (and mutate the picture type of)
    # the frame it was given last time.
    return av.VideoFrame.from_numpy_buffer(frame.to_ndarray(format="yuv420p"), "yuv420p")


class CaptureTrack(MediaStreamTrack):
    """A video track fed by a :class:`CaptureSource`; the source starts on the first :meth:`recv`.

    The source can be switched (:meth:`switch_source`), or taken away (``None``: the track is *parked*
    and :meth:`recv` waits, sending nothing, until a source is switched in). The track itself never
    ends for that, which matters: aiortc's RTP sender stops for good when its track's ``recv`` raises.
    """

    kind = "video"

    def __init__(
        self, source: CaptureSource | None, *, stall_resend_after: float = STALL_RESEND_AFTER
    ) -> None:
        super().__init__()
        self._source = source
        self._source_changed = asyncio.Event()
        self._stall_resend_after = stall_resend_after
        self._start_time: float | None = None
        self._last_pts = -1
        self.captured_at: float | None = None
        """When the frame ``recv`` returned last was taken (its timestamp's moment), for the stream's
        sender reports (:mod:`coalesce_common.media.sending`)."""
        self._last_frame: av.VideoFrame | None = None
        self._limits: StreamLimits | None = None
        self._keyframe_wanted = False

    @property
    def source(self) -> CaptureSource | None:
        """Where the frames come from now; ``None`` while parked."""
        return self._source

    @property
    def last_frame(self) -> av.VideoFrame | None:
        """The frame last handed to the encoder (previews, picture sizes); ``None`` before the first."""
        return self._last_frame

    def switch_source(self, source: CaptureSource | None) -> CaptureSource | None:
        """Feed the track from ``source`` (``None``: park it); return the old source, for the caller to stop.

        The new source starts on the next frame wanted; until its first frame the track repeats the last
        one (after the stall delay), so the picture never goes blank. Timestamps go on where they were.
        """
        previous, self._source = self._source, source
        if source is not None:
            source.limits = self._limits
        self._source_changed.set()
        return previous

    @property
    def limits(self) -> StreamLimits | None:
        return self._limits

    def set_limits(self, limits: StreamLimits | None) -> None:
        """What the room asks of this stream (``None``: nothing): the capture scales and paces to it from
        its next frame on, whichever source feeds the track, and the encoder caps its bitrate."""
        self._limits = limits
        if self._source is not None:
            self._source.limits = limits

    def request_keyframe(self) -> None:
        """Have the encoder make the next frame a key frame (the room asks after a layout change)."""
        self._keyframe_wanted = True

    async def recv(self) -> av.VideoFrame:
        """The newest captured frame, stamped with the time since the first one (90 kHz clock)."""
        if self.readyState != "live":
            raise MediaStreamError
        try:
            frame = await self._next_frame()
        except MediaError as exc:
            self.stop()
            raise MediaStreamError(str(exc)) from exc
        now = time.monotonic()
        if self._start_time is None:
            self._start_time = now
        # Strictly increasing even if two frames come within one clock tick.
        pts = max(int((now - self._start_time) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self.captured_at = now
        if self._limits is not None or self._keyframe_wanted:
            frame.opaque = FrameHints(
                max_bitrate=None if self._limits is None else self._limits.max_bitrate,
                keyframe=self._keyframe_wanted,
            )
            self._keyframe_wanted = False
        else:
            frame.opaque = None  # a re-sent copy, or a frame from before the limits went away
        self._last_pts = pts
        self._last_frame = frame
        return frame

    async def _next_frame(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            self._source_changed.clear()
            source = self._source
            if source is None:  # parked: wait for a source (or the end)
                await self._source_changed.wait()
                continue
            source.start(asyncio.get_running_loop())  # the first source, or one switched to
            try:
                return await source.slot.get(timeout=self._stall_resend_after)
            except TimeoutError:
                if source is self._source and self._last_frame is not None:
                    return _copy_frame(self._last_frame)
                # Nothing captured yet (a failing source raises), or switched meanwhile: look again.
            except MediaError:
                if source is self._source:
                    raise
                # The source was switched (and the old one stopped) while we waited: read the new one.

    def stop(self) -> None:
        """End the track and tell its capture thread to stop; safe to call more than once.

        Never waits for the thread (aiortc calls this on the event loop when the connection closes):
        whoever owns the source joins it with :meth:`CaptureSource.aclose`.
        """
        super().stop()
        self._source_changed.set()  # a parked recv() wakes up and ends
        if self._source is not None:
            self._source.request_stop()


class ConnectionTrack(MediaStreamTrack):
    """One peer connection's hold on a track that outlives it (a share's capture, kept across reconnects).

    aiortc stops a sender's track when the sender's connection fails (its RTP loop ends on the transport's
    ``ConnectionError``) or closes; stopping this ends this connection's hold only, and the capture goes
    on for the next connection's hold. :attr:`captured_at` is the held track's, for the sender reports.
    """

    def __init__(self, held: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = held.kind
        self.held = held

    @property
    def captured_at(self) -> float | None:
        captured: float | None = getattr(self.held, "captured_at", None)
        return captured

    async def recv(self) -> Frame | Packet[Any]:
        if self.readyState != "live" or self.held.readyState != "live":
            raise MediaStreamError
        return await self.held.recv()
