"""The receiving side's tuning: a jitter buffer that releases frames early, bigger ICE socket buffers, and
the sender's clock for lip sync.

- :class:`FrameEndJitterBuffer` hands a video frame to the decoder as soon as its last packet (the RTP
  marker bit) is in. aiortc's buffer waits for the first packet of the *next* frame, which delays every
  frame by a whole frame interval (17 ms at 60 fps, measured on loopback). Sound packets (each a whole
  Opus frame) go on at once: aiortc held four of them back (80 ms), and a lost one stopped the sound until
  16 more had come (320 ms). The room's speaker has a jitter buffer of its own, paced by the picture.
- :class:`UnwrappedTimestamps` lets decoded frames keep their sender's RTP timestamp (aiortc counts from
  the first frame it decoded) and :func:`sender_report` keeps each receiver's latest RTCP sender report:
  together they say when, on the sender's clock, a frame of sound or picture was sent
  (:meth:`SenderReport.sender_time`), which is how the room plays a share's sound in step with its
  picture.
- :data:`UDP_RECEIVE_BUFFER` for the ICE sockets: aiortc sends each frame's packets back to back with no
  pacer, so a key frame arrives as a burst of hundreds of packets; aioice's 256 KiB receive buffer
  overflowed on 1080p key frames, and every loss stalled the stream until a retransmission or a new key
  frame (p95 latency 800 ms on a static 1080p page, 24 ms with 1 MiB). A bigger buffer is not better: a
  receiver short of CPU then queues seconds of video instead of losing some. The kernel caps the size
  at ``net.core.rmem_max`` (4 MiB on the benchmark machine; Debian's default is 208 KiB, where this
  changes nothing and only pacing at the sender would help).

:mod:`coalesce_common.media.aiortc_patches` puts them in place of aiortc's and aioice's own.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtcpSrPacket, RtpPacket

logger = logging.getLogger(__name__)

GAP_GIVE_UP = 1.0
"""Seconds a missing video packet holds the frames behind it back before it is given up as lost (its
resending, asked for by NACK, takes a round trip: well under this, even on a slow link)."""
SOUND_REORDER = 2
"""Sound packets that may arrive behind a missing one before it is given up as lost (40 ms)."""
RTP_CLOCK_RATES = {"audio": 48_000, "video": 90_000}
"""RTP timestamp units per second: Opus always counts at 48 kHz, video codecs at 90 kHz."""

UDP_RECEIVE_BUFFER = 1024 * 1024
"""Bytes of receive buffer asked for on each ICE host socket (aioice asks for 256 KiB): room for a 1080p or
4K key frame's burst, not for seconds of backlog."""


class FrameEndJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, releasing a video frame at its last packet instead of the next frame's first.

    A frame is complete when the packets from the oldest one held form an unbroken run of one timestamp
    that ends with the marker bit, which RTP senders (aiortc, browsers) set on a frame's last packet. A
    frame whose marker was lost is still completed the old way, by the first packet of the next frame.
    Audio buffers (with prefetch) keep aiortc's behaviour.

    A missing video packet is waited for (aiortc asks for it again meanwhile) for :data:`GAP_GIVE_UP`
    seconds, then given up: the packets up to the end of the frame it was in are dropped, the next frame
    goes on, and a key frame is asked for. aiortc's buffer waited until 512 more packets had come: after
    an outage longer than the sender keeps packets for resending (128), 17 s of frozen picture at 30 fps.
    """

    def __init__(
        self,
        capacity: int,
        prefetch: int = 0,
        is_video: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(capacity, prefetch=prefetch, is_video=is_video)
        self._clock = clock
        self._stuck_since: float | None = None  # when a gap first held the next frame back
        self._gave_up = False  # a gap was given up since the last add(): ask for a key frame

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if self._gave_up:
            self._gave_up = False
            pli = True
        return pli, frame

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if not self._is_video:
            return self._next_sound()
        origin = self._origin
        if origin is None:
            return None
        packets: list[RtpPacket] = []
        timestamp: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return self._wait_or_give_up(count)  # a gap: wait for the missing packet's resending
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                return self._release(packets, timestamp, count)
            packets.append(packet)
            if packet.marker:
                return self._release(packets, timestamp, count + 1)
        return None

    def _wait_or_give_up(self, gap: int) -> JitterFrame | None:
        """Packet ``gap`` (counted from the oldest held) is missing: wait, or after :data:`GAP_GIVE_UP`
        drop everything up to the end of the first frame held after it, and go on from there."""
        now = self._clock()
        if self._stuck_since is None:
            self._stuck_since = now
            return None
        if now - self._stuck_since < GAP_GIVE_UP:
            return None
        assert self._origin is not None
        for count in range(gap + 1, self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is not None and packet.marker:
                self.remove(count + 1)
                self._stuck_since = None
                self._gave_up = True
                logger.debug("gave up a missing video packet after %g s", GAP_GIVE_UP)
                return self._remove_frame(self._origin)
        return None  # no frame ends after the gap yet

    def _release(self, packets: list[RtpPacket], timestamp: int, count: int) -> JitterFrame:
        self.remove(count)
        self._stuck_since = None
        return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]

    def _next_sound(self) -> JitterFrame | None:
        """The oldest sound packet held, as a frame of its own; a missing one is given up once
        :data:`SOUND_REORDER` later ones wait behind it (the decoder then hears a gap, not a stall)."""
        if self._origin is None:
            return None
        for _ in range(self._capacity):
            packet = self._packets[self._origin % self._capacity]
            if packet is not None:
                self.remove(1)
                return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]
            if sum(held is not None for held in self._packets) < SOUND_REORDER:
                return None  # wait: it may only be late
            self.remove(1)
        return None


class UnwrappedTimestamps:
    """In place of aiortc's ``TimestampMapper``: a frame's timestamp is the sender's RTP timestamp, counted
    on past 2**32 when it wraps, so an RTCP sender report can place it on the sender's clock. aiortc's
    mapper counts from the first frame decoded, which no report can be matched with."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._extended = 0

    def map(self, timestamp: int) -> int:
        if self._last is None:
            self._extended = timestamp
        else:
            self._extended += _signed_difference(timestamp, self._last)
        self._last = timestamp
        return self._extended


def _signed_difference(timestamp: int, reference: int) -> int:
    """``timestamp - reference`` for 32-bit RTP timestamps: the short way round, across a wrap."""
    return (timestamp - reference + 2**31) % 2**32 - 2**31


@dataclass(frozen=True)
class SenderReport:
    """An RTCP sender report: at ``sender_seconds`` on the sender's wall clock (NTP) it was sending the
    RTP timestamp ``rtp_timestamp``; ``clock_rate`` is the stream's timestamp units per second."""

    sender_seconds: float
    rtp_timestamp: int
    clock_rate: int

    def sender_time(self, timestamp: int) -> float:
        """When, on the sender's clock, the frame with RTP timestamp ``timestamp`` was sent."""
        units = _signed_difference(timestamp % 2**32, self.rtp_timestamp)
        return self.sender_seconds + units / self.clock_rate


_reports: weakref.WeakKeyDictionary[RTCRtpReceiver, SenderReport] = weakref.WeakKeyDictionary()


def note_sender_report(receiver: RTCRtpReceiver, packet: RtcpSrPacket) -> None:
    """Keep ``packet`` as ``receiver``'s latest sender report (called for every RTCP SR it handles)."""
    kind = receiver.track.kind if receiver.track is not None else None
    rate = RTP_CLOCK_RATES.get(kind or "")
    if rate is None:
        return
    ntp = packet.sender_info.ntp_timestamp
    seconds = (ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32
    _reports[receiver] = SenderReport(seconds, packet.sender_info.rtp_timestamp, rate)


def sender_report(receiver: RTCRtpReceiver) -> SenderReport | None:
    """``receiver``'s latest RTCP sender report, ``None`` before the first (a second or so into a share)."""
    return _reports.get(receiver)
