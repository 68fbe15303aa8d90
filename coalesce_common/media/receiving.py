"""The receiving side's tuning: a jitter buffer that releases frames early, and bigger ICE socket buffers.

- :class:`FrameEndJitterBuffer` hands a video frame to the decoder as soon as its last packet (the RTP
  marker bit) is in. aiortc's buffer waits for the first packet of the *next* frame, which delays every
  frame by a whole frame interval (17 ms at 60 fps, measured on loopback).
- :data:`UDP_RECEIVE_BUFFER` for the ICE sockets: aiortc sends each frame's packets back to back with no
  pacer, so a key frame arrives as a burst of hundreds of packets; aioice's 256 KiB receive buffer
  overflowed on 1080p key frames, and every loss stalled the stream until a retransmission or a new key
  frame (p95 latency 800 ms on a static 1080p page, 24 ms with 1 MiB). A bigger buffer is not better: a
  receiver short of CPU then queues seconds of video instead of losing some. The kernel caps the size
  at ``net.core.rmem_max`` (4 MiB on the benchmark machine; Debian's default is 208 KiB, where this
  changes nothing and only pacing at the sender would help).

:mod:`coalesce_common.media.aiortc_patches` puts both in place of aiortc's and aioice's own.
"""

from __future__ import annotations

import logging

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

logger = logging.getLogger(__name__)

UDP_RECEIVE_BUFFER = 1024 * 1024
"""Bytes of receive buffer asked for on each ICE host socket (aioice asks for 256 KiB): room for a 1080p or
4K key frame's burst, not for seconds of backlog."""


class FrameEndJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, releasing a video frame at its last packet instead of the next frame's first.

    A frame is complete when the packets from the oldest one held form an unbroken run of one timestamp
    that ends with the marker bit, which RTP senders (aiortc, browsers) set on a frame's last packet. A
    frame whose marker was lost is still completed the old way, by the first packet of the next frame.
    Audio buffers (with prefetch) keep aiortc's behaviour.
    """

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if not self._is_video or self._prefetch:
            return super()._remove_frame(sequence_number)  # type: ignore[no-any-return]
        origin = self._origin
        if origin is None:
            return None
        packets: list[RtpPacket] = []
        timestamp: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return None  # a gap: wait for the missing packet (or its retransmission)
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                return self._release(packets, timestamp, count)
            packets.append(packet)
            if packet.marker:
                return self._release(packets, timestamp, count + 1)
        return None

    def _release(self, packets: list[RtpPacket], timestamp: int, count: int) -> JitterFrame:
        self.remove(count)
        return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
