"""What a live share's media link is doing, as :class:`ShareStats`: aiortc's statistics plus the capture's.

This module owns reading a sending peer connection's statistics: bytes and packets from the outbound RTP
reports, the round trip from the receiver's RTCP reports, the negotiated codec from the answer, and the
route from the selected ICE candidate pair. That last one is the one read of aioice's private state in the
sender (aiortc has no public accessor for the selected pair); ``tests/e2e`` checks both routes, so an
aioice upgrade that moves it fails a test rather than the status line.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.stats import RTCOutboundRtpStreamStats, RTCRemoteInboundRtpStreamStats

from coalesce_common.media.capture import CaptureSource

logger = logging.getLogger(__name__)


class MediaRoute(enum.Enum):
    """How the media reaches the receiver."""

    PEER_TO_PEER = "peer-to-peer"
    RELAYED = "relayed"  # through a TURN server


@dataclass(frozen=True)
class ShareStats:
    """A share's media as :meth:`Share.stats` sees it; ``None`` where not known (yet).

    Rates (``fps``, ``kbps``) are averaged since the previous :meth:`Share.stats` call (or the start);
    counters are totals since the start. ``width``/``height`` are the main picture's (the screen if
    shared, else the camera), ``round_trip_ms`` is the worst of the receiver's RTCP reports.
    """

    route: MediaRoute | None = None
    relay: str = ""
    """How relayed media reaches the relay ("over TLS through the local relay, via the proxy ..."); "" when
    not relayed or not known."""
    codec: str = ""
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    round_trip_ms: float | None = None
    kbps: float | None = None
    bytes_sent: int = 0
    packets_sent: int = 0
    frames_captured: int = 0
    frames_dropped: int = 0
    paused: bool = False


async def last_report(senders: list[RTCRtpSender]) -> datetime | None:
    """When the room last sent a receiver report (RTCP, about one a second while it gets media) for any
    of ``senders``; ``None`` before the first."""
    latest: datetime | None = None
    for sender in senders:
        try:
            reports = (await sender.getStats()).values()
        except Exception as exc:  # a closing connection: it has nothing more to say
            logger.debug("getStats failed: %s", exc)
            continue
        for report in reports:
            if isinstance(report, RTCRemoteInboundRtpStreamStats) and (
                latest is None or report.timestamp > latest
            ):
                latest = report.timestamp
    return latest


class LinkSampler:
    """Turns a share's peer connection and sources into :class:`ShareStats`, rates since the last sample.

    ``clock`` is injectable so tests can check rates without waiting.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: tuple[float, int, int] | None = None  # (time, main frames, bytes) at the last sample

    async def sample(
        self,
        pc: RTCPeerConnection,
        senders: list[RTCRtpSender],
        sources: dict[str, CaptureSource],
        *,
        main: CaptureSource | None,
        main_frame: av.VideoFrame | None,
        paused: bool,
    ) -> ShareStats:
        reports: list[object] = []
        try:
            reports = list((await pc.getStats()).values())
        except Exception as exc:  # a closing connection: report what the sources alone tell
            logger.debug("getStats failed: %s", exc)
        outbound = [r for r in reports if isinstance(r, RTCOutboundRtpStreamStats)]
        round_trips = [
            r.roundTripTime
            for r in reports
            if isinstance(r, RTCRemoteInboundRtpStreamStats) and r.roundTripTime is not None
        ]
        bytes_sent = sum(r.bytesSent for r in outbound)
        frames = main.slot.frames_put - main.slot.frames_dropped if main else 0
        now = self._clock()
        fps = kbps = None
        if self._last is not None and now > self._last[0]:
            then, last_frames, last_bytes = self._last
            fps = 0.0 if paused else max(0.0, (frames - last_frames) / (now - then))
            kbps = max(0.0, (bytes_sent - last_bytes) * 8 / 1000 / (now - then))
        self._last = (now, frames, bytes_sent)
        return ShareStats(
            route=_route(senders),
            codec=_negotiated_codec(pc),
            width=main_frame.width if main_frame else None,
            height=main_frame.height if main_frame else None,
            fps=fps,
            round_trip_ms=max(round_trips) * 1000 if round_trips else None,
            kbps=kbps,
            bytes_sent=bytes_sent,
            packets_sent=sum(r.packetsSent for r in outbound),
            frames_captured=sum(source.slot.frames_put for source in sources.values()),
            frames_dropped=sum(source.slot.frames_dropped for source in sources.values()),
            paused=paused,
        )


def _negotiated_codec(pc: RTCPeerConnection) -> str:
    """The codec the answer put first on the first video section, e.g. ``H264``."""
    description = pc.remoteDescription
    if description is None:
        return ""
    payload_type = ""
    for line in description.sdp.splitlines():
        if line.startswith("m=video"):
            fields = line.split()
            payload_type = fields[3] if len(fields) > 3 else ""
        elif payload_type and line.startswith(f"a=rtpmap:{payload_type} "):
            return line.split()[1].split("/")[0]
    return ""


def _nominated_pair(sender: RTCRtpSender) -> Any | None:
    """aioice's selected candidate pair for the sender's transport (aiortc has no public accessor).

    aioice's private state, read here only (see the module docstring).
    """
    try:
        connection = sender.transport.transport._connection
        pairs = dict(connection._nominated)
    except AttributeError:
        return None
    return pairs.get(1) or next(iter(pairs.values()), None)


def _route(senders: list[RTCRtpSender]) -> MediaRoute | None:
    """Relayed when media goes through TURN, peer to peer when not, ``None`` when unknown."""
    for sender in senders:
        pair = _nominated_pair(sender)
        if pair is not None:
            types = {pair.local_candidate.type, pair.remote_candidate.type}
            return MediaRoute.RELAYED if "relay" in types else MediaRoute.PEER_TO_PEER
        try:
            local = {c.type for c in sender.transport.transport.iceGatherer.getLocalCandidates()}
        except AttributeError:
            continue
        if local == {"relay"}:
            return MediaRoute.RELAYED
        if local and "relay" not in local:
            return MediaRoute.PEER_TO_PEER
    return None
