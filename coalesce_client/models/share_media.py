"""The one place that reaches into a live :class:`Share`'s media: link statistics, pause, camera preview.

:class:`Share` exposes no media API yet, so everything here goes through :func:`peer_connection` (the
share's private ``_pc``) and, for picture sizes and the preview, :func:`_last_sent_frame` (a
:class:`CaptureTrack`'s private ``_last_frame``); the selected ICE pair comes from aioice's private state
in :func:`_nominated_pair`. When the services grow public accessors, only those three functions change.

Statistics come from aiortc's ``RTCPeerConnection.getStats()`` (bytes sent per stream, round trip from the
receiver's RTCP reports) plus the capture tracks (frames sent, picture size). Pausing detaches the capture
tracks from their RTP senders (``RTCRtpSender.replaceTrack(None)``): nothing more is encoded or sent and
the room display keeps showing the last picture; resuming puts the same tracks back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.stats import RTCOutboundRtpStreamStats, RTCRemoteInboundRtpStreamStats

from coalesce_client.models.session import LinkStatus
from coalesce_client.services.share import Share
from coalesce_common.media.tracks import CaptureTrack

logger = logging.getLogger(__name__)


def peer_connection(share: Share) -> RTCPeerConnection | None:
    """The share's peer connection once negotiation has begun (wanted: a public ``Share.peer_connection``)."""
    return share._pc


def _last_sent_frame(track: CaptureTrack) -> av.VideoFrame | None:
    """The frame the track last handed to the encoder (wanted: a public ``CaptureTrack.last_frame``)."""
    frame: av.VideoFrame | None = track._last_frame
    return frame


def _nominated_pair(sender: RTCRtpSender) -> Any | None:
    """aioice's selected candidate pair for the sender's transport, when aioice keeps one where we look."""
    try:
        connection = sender.transport.transport._connection
        pairs = dict(connection._nominated)
    except AttributeError:
        return None
    return pairs.get(1) or next(iter(pairs.values()), None)


def _route(senders: list[RTCRtpSender]) -> str | None:
    """``"relayed"`` when media goes through TURN, ``"peer-to-peer"`` when not, ``None`` when unknown."""
    for sender in senders:
        pair = _nominated_pair(sender)
        if pair is not None:
            types = {pair.local_candidate.type, pair.remote_candidate.type}
            return "relayed" if "relay" in types else "peer-to-peer"
        try:
            local = {c.type for c in sender.transport.transport.iceGatherer.getLocalCandidates()}
        except AttributeError:
            continue
        if local == {"relay"}:
            return "relayed"
        if local and "relay" not in local:
            return "peer-to-peer"
    return None


class MediaTap:
    """Reads and steers one share's media: :meth:`sample` for the status line, :meth:`pause`/:meth:`resume`.

    ``clock`` is injectable so tests can check rates without waiting.
    """

    def __init__(self, share: Share, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._share = share
        self._clock = clock
        self._detached: list[tuple[RTCRtpSender, CaptureTrack]] = []
        self._last_time: float | None = None
        self._last_frames = 0
        self._last_bytes = 0

    @property
    def paused(self) -> bool:
        return bool(self._detached)

    def _senders(self) -> list[RTCRtpSender]:
        pc = peer_connection(self._share)
        return list(pc.getSenders()) if pc is not None else []

    def _tracks(self) -> list[CaptureTrack]:
        attached = [s.track for s in self._senders() if isinstance(s.track, CaptureTrack)]
        return attached + [track for _, track in self._detached]

    def pause(self) -> bool:
        """Stop sending new pictures; ``False`` when there was nothing to pause."""
        if self._detached:
            return True
        for sender in self._senders():
            track = sender.track
            if isinstance(track, CaptureTrack):
                sender.replaceTrack(None)
                self._detached.append((sender, track))
        return bool(self._detached)

    def resume(self) -> None:
        for sender, track in self._detached:
            if track.readyState == "live":
                sender.replaceTrack(track)
        self._detached.clear()

    async def sample(self) -> LinkStatus:
        """The link as it is now; rates are averaged since the previous call."""
        pc = peer_connection(self._share)
        if pc is None:
            return LinkStatus()
        senders = self._senders()
        stats: list[object] = []
        try:
            stats = list((await pc.getStats()).values())
        except Exception as exc:  # a closing connection: report what the tracks alone tell
            logger.debug("getStats failed: %s", exc)
        bytes_sent = sum(s.bytesSent for s in stats if isinstance(s, RTCOutboundRtpStreamStats))
        round_trips = [
            s.roundTripTime
            for s in stats
            if isinstance(s, RTCRemoteInboundRtpStreamStats) and s.roundTripTime is not None
        ]
        tracks = self._tracks()
        main = next((t for t in tracks if t.source_kind == "screen"), tracks[0] if tracks else None)
        frames = 0
        width = height = None
        if main is not None:
            slot = main.source.slot
            frames = slot.frames_put - slot.frames_dropped
            frame = _last_sent_frame(main)
            if frame is not None:
                width, height = frame.width, frame.height
        now = self._clock()
        fps = kbps = None
        if self._last_time is not None and now > self._last_time:
            elapsed = now - self._last_time
            fps = 0.0 if self.paused else max(0.0, (frames - self._last_frames) / elapsed)
            kbps = max(0.0, (bytes_sent - self._last_bytes) * 8 / 1000 / elapsed)
        self._last_time, self._last_frames, self._last_bytes = now, frames, bytes_sent
        return LinkStatus(
            route=_route(senders),
            width=width,
            height=height,
            fps=fps,
            round_trip_ms=max(round_trips) * 1000 if round_trips else None,
            kbps=kbps,
        )

    def picture(self, kind: str, max_width: int) -> np.ndarray | None:
        """The last ``kind`` ("camera", "screen") picture sent, as RGB at most ``max_width`` wide."""
        for track in self._tracks():
            if track.source_kind != kind:
                continue
            frame = _last_sent_frame(track)
            if frame is None:
                return None
            width = min(max_width, frame.width) // 2 * 2
            height = max(2, round(frame.height * width / frame.width) // 2 * 2)
            picture: np.ndarray = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
            return picture
        return None
