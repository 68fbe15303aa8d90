"""Sender reports that say when a timestamp was captured (coalesce_common.media.sending)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiortc.clock
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

from coalesce_common.media import receiving, sending
from coalesce_common.media.peer import new_peer_connection
from coalesce_common.media.sound import BLOCK, CHANNELS, SoundTrack, SystemSound


async def sender_of(captured_at: float | None) -> tuple[RTCPeerConnection, RTCRtpSender]:
    """A real sender of a sound track whose last frame was captured at ``captured_at``."""
    track = SoundTrack(None)
    track.captured_at = captured_at
    pc = new_peer_connection()
    return pc, pc.addTrack(track)


def report(rtp_timestamp: int) -> RtcpSrPacket:
    info = RtcpSenderInfo(ntp_timestamp=0, rtp_timestamp=rtp_timestamp, packet_count=1, octet_count=1)
    return RtcpSrPacket(ssrc=1, sender_info=info)


async def test_a_report_moves_on_by_the_lag_from_capture_to_the_wire() -> None:
    pc, sender = await sender_of(time.monotonic() - 0.05)
    await pc.close()
    sending.note_encoded(sender, 48_000)
    lag = sending.capture_lag(sender)
    assert lag is not None and 0.05 <= lag < 0.1
    sr = report(2**32 - 100)
    sending.place_report(sender, sr)
    assert sr.sender_info.rtp_timestamp == (2**32 - 100 + round(lag * 48_000)) % 2**32  # wraps


async def test_a_track_that_has_not_captured_yet_keeps_aiortcs_reports() -> None:
    pc, sender = await sender_of(None)
    await pc.close()
    sending.note_encoded(sender, 90_000)
    sr = report(1234)
    sending.place_report(sender, sr)
    assert sending.capture_lag(sender) is None and sr.sender_info.rtp_timestamp == 1234


class LateSound(SystemSound):
    """A capture whose every block was played 300 ms before it is taken (a slow sound server)."""

    def take(self) -> tuple[np.ndarray, float] | None:
        return np.zeros((BLOCK, CHANNELS), dtype=np.int16), time.monotonic() - 0.3


async def test_the_room_places_sound_at_when_it_was_played_not_sent() -> None:
    """Over a real loopback connection with the patches in: the sender reports put each decoded frame of
    sound 300 ms before it was sent, when the laptop played it (aiortc's own reports put it at its send)."""
    pc_out, pc_in = new_peer_connection(), new_peer_connection()
    pc_out.addTrack(SoundTrack(LateSound()))
    arrivals: list[tuple[int, float]] = []
    arrived = asyncio.Event()

    async def read(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                arrivals.append((frame.pts, ntp_seconds()))
                arrived.set()

    readers: list[asyncio.Task[None]] = []
    pc_in.on("track", lambda track: readers.append(asyncio.ensure_future(read(track))))
    try:
        await pc_out.setLocalDescription(await pc_out.createOffer())
        await pc_in.setRemoteDescription(pc_out.localDescription)
        await pc_in.setLocalDescription(await pc_in.createAnswer())
        await pc_out.setRemoteDescription(pc_in.localDescription)
        receiver = pc_in.getTransceivers()[0].receiver
        async with asyncio.timeout(15):
            while receiving.sender_report(receiver) is None or not arrivals:
                arrived.clear()
                await arrived.wait()  # reports come with the frames: look again at the next one
        sr = receiving.sender_report(receiver)
        assert sr is not None
        pts, at = arrivals[-1]
        assert sr.sender_time(pts) - at == pytest.approx(-0.3, abs=0.1)  # both ends share a clock here
    finally:
        await pc_out.close()
        await pc_in.close()
        for reader in readers:
            reader.cancel()


def ntp_seconds() -> float:
    ntp = aiortc.clock.current_ntp_time()
    return (ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32
