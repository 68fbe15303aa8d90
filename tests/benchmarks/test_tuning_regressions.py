"""Regression tests for the speed fixes the benchmark found in ``coalesce_common.media.encoding``.

They sit beside the benchmark that found them; ``tests/media/test_encoding.py`` is their natural home.

- An H.264 encoder given a bandwidth estimate that is not a whole number of kbit/s rebuilt its codec,
  and so sent a key frame, on every frame (libx264 reports the rate back rounded).
- aiortc's jitter buffer held each video frame until the next frame's first packet arrived.
- aioice's 256 KiB socket buffers overflowed on key-frame bursts.

And the hardware H.264 encoders, tried before libx264: one that cannot open falls back to the next.
"""

from __future__ import annotations

import fractions
from collections.abc import Iterator

import aioice.turn
import aiortc.rtcrtpreceiver
import av
import numpy as np
import pytest
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from coalesce_common.media import encoding, receiving
from coalesce_common.media.encoding import (
    TunedH264Encoder,
)
from coalesce_common.media.receiving import FrameEndJitterBuffer, tune_receiving, untune_receiving


def _frames(count: int, width: int = 160, height: int = 120) -> list[av.VideoFrame]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, size=(height * 3 // 2, width), dtype=np.uint8)
    frames = []
    for index in range(count):
        frame = av.VideoFrame.from_ndarray(np.roll(base, index * 4, axis=1), format="yuv420p")
        frame.pts = index * 1500
        frame.time_base = fractions.Fraction(1, 90000)
        frames.append(frame)
    return frames


def test_h264_encoder_keeps_its_codec_after_an_estimate_in_odd_bits_per_second() -> None:
    encoder = TunedH264Encoder()
    first, *rest = _frames(5)
    encoder.encode(first)
    encoder.target_bitrate = 8_014_880  # a real REMB value: more than the rebuild threshold away
    encoder.encode(rest[0])
    codec = encoder.codec
    assert codec is not None
    for frame in rest[1:]:
        payloads, _ = encoder.encode(frame)
        assert payloads
        assert encoder.codec is codec, "the codec was rebuilt (with a key frame) though the target held still"


def _packet(sequence: int, timestamp: int, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=sequence, timestamp=timestamp, marker=int(marker))
    packet._data = bytes([sequence % 256])  # type: ignore[attr-defined]  # set by the receiver's depayloader
    return packet


def _feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> Iterator[JitterFrame | None]:
    for packet in packets:
        _, frame = buffer.add(packet)
        yield frame


def test_a_video_frame_is_released_with_its_last_packet() -> None:
    buffer = FrameEndJitterBuffer(capacity=128, is_video=True)
    released = list(_feed(buffer, [_packet(10, 3000), _packet(11, 3000), _packet(12, 3000, marker=True)]))
    assert released[:2] == [None, None]
    frame = released[2]
    assert frame is not None and frame.timestamp == 3000 and frame.data == bytes([10, 11, 12])
    # The next frame starts clean.
    (frame,) = _feed(buffer, [_packet(13, 4500, marker=True)])
    assert frame is not None and frame.timestamp == 4500 and frame.data == bytes([13])


def test_a_frame_with_a_gap_waits_for_the_missing_packet() -> None:
    buffer = FrameEndJitterBuffer(capacity=128, is_video=True)
    assert list(_feed(buffer, [_packet(20, 3000), _packet(22, 3000, marker=True)])) == [None, None]
    (frame,) = _feed(buffer, [_packet(21, 3000)])  # the retransmission fills the gap
    assert frame is not None and frame.data == bytes([20, 21, 22])


def test_a_frame_without_a_marker_is_released_by_the_next_frame_as_before() -> None:
    buffer = FrameEndJitterBuffer(capacity=128, is_video=True)
    released = list(_feed(buffer, [_packet(30, 3000), _packet(31, 3000), _packet(32, 4500)]))
    assert released[:2] == [None, None]
    frame = released[2]
    assert frame is not None and frame.timestamp == 3000 and frame.data == bytes([30, 31])


def test_audio_buffers_keep_aiortcs_prefetch() -> None:
    ours = FrameEndJitterBuffer(capacity=16, prefetch=4)
    theirs = JitterBuffer(capacity=16, prefetch=4)
    packets = [_packet(40 + i, 960 * i, marker=True) for i in range(8)]
    assert [f and f.data for f in _feed(ours, packets)] == [f and f.data for f in _feed(theirs, packets)]


@pytest.fixture
def untuned() -> Iterator[None]:
    untune_receiving()
    yield
    untune_receiving()


@pytest.mark.usefixtures("untuned")
def test_tuning_installs_the_jitter_buffer_and_socket_buffers_and_untuning_restores_them() -> None:
    assert aiortc.rtcrtpreceiver.JitterBuffer is JitterBuffer  # type: ignore[attr-defined]
    default_buffer = aioice.turn.UDP_SOCKET_BUFFER_SIZE
    tune_receiving()
    assert aiortc.rtcrtpreceiver.JitterBuffer is FrameEndJitterBuffer  # type: ignore[attr-defined]
    tuned_buffer = aioice.turn.UDP_SOCKET_BUFFER_SIZE
    assert tuned_buffer == max(receiving.UDP_RECEIVE_BUFFER, default_buffer)
    untune_receiving()
    assert aiortc.rtcrtpreceiver.JitterBuffer is JitterBuffer  # type: ignore[attr-defined]
    restored_buffer = aioice.turn.UDP_SOCKET_BUFFER_SIZE
    assert restored_buffer == default_buffer


@pytest.fixture
def fresh_encoder_choice(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    failed: set[str] = set()
    monkeypatch.setattr(encoding, "_FAILED_H264_ENCODERS", failed)
    return failed


def test_encoders_that_cannot_open_fall_back_to_libx264(
    monkeypatch: pytest.MonkeyPatch, fresh_encoder_choice: set[str]
) -> None:
    # libx264rgb with a preset x264 rejects stands in for a hardware encoder without its device: it is
    # created fine and fails at the first frame, as h264_nvenc does on a machine without a GPU.
    monkeypatch.setitem(encoding.HARDWARE_H264_ENCODERS, "libx264rgb", {"preset": "no-such-preset"})
    monkeypatch.setenv("COALESCE_H264_ENCODERS", "h264_not_in_ffmpeg,libx264rgb")
    assert encoding.h264_encoder_candidates() == ["h264_not_in_ffmpeg", "libx264rgb", "libx264"]
    encoder = TunedH264Encoder()
    first, second = _frames(2)
    payloads, _ = encoder.encode(first)
    assert payloads
    assert encoder.codec is not None and encoder.codec.name == "libx264"
    assert fresh_encoder_choice == {"h264_not_in_ffmpeg", "libx264rgb"}
    # Later encoders skip the ones that failed.
    assert encoding.h264_encoder_candidates() == ["libx264"]
    assert TunedH264Encoder().encode(second)[0]


def test_the_default_order_tries_hardware_first_and_libx264_last(
    monkeypatch: pytest.MonkeyPatch, fresh_encoder_choice: set[str]
) -> None:
    monkeypatch.delenv("COALESCE_H264_ENCODERS", raising=False)
    candidates = encoding.h264_encoder_candidates()
    assert candidates[0] == "h264_nvenc"
    assert candidates[-1] == "libx264"
    assert set(candidates[:-1]) == set(encoding.HARDWARE_H264_ENCODERS)
