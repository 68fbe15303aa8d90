"""The tuned encoders: settings, bitrate hysteresis and codec preference.

Their installation into aiortc is tested in ``test_aiortc_patches.py``.
"""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from coalesce_common.media import encoding
from coalesce_common.media.encoding import (
    TunedH264Encoder,
    TunedVp8Encoder,
    encoder_threads,
    h264_level,
    prefer_codec,
)

H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def frames(width: int, height: int, count: int, fps: int = 30) -> list[av.VideoFrame]:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, size=(height * 3 // 2, width), dtype=np.uint8)
    result = []
    for index in range(count):
        frame = av.VideoFrame.from_ndarray(np.roll(base, index * 4, axis=1), format="yuv420p")
        frame.pts = index * 90000 // fps
        frame.time_base = fractions.Fraction(1, 90000)
        result.append(frame)
    return result


@pytest.mark.parametrize(
    ("size", "level"),
    [((640, 480), "4.2"), ((1920, 1080), "4.2"), ((1920, 1200), "5.1"), ((2560, 1440), "5.1")],
)
def test_h264_level_fits_the_frame_size(size: tuple[int, int], level: str) -> None:
    assert h264_level(*size) == level


def test_h264_level_at_4k_depends_on_the_rate() -> None:
    assert h264_level(3840, 2160, fps=30) == "5.1"
    assert h264_level(3840, 2160, fps=60) == "5.2"


def test_encoder_threads_never_exceed_the_cpus() -> None:
    assert encoder_threads(1920, 1080, cpus=1) == 1
    assert encoder_threads(1920, 1080, cpus=2) == 2
    assert encoder_threads(1920, 1080, cpus=16) == 4
    assert encoder_threads(3840, 2160, cpus=16) == 8


def test_h264_encoder_is_set_up_for_low_latency_screen_content() -> None:
    encoder = TunedH264Encoder()
    assert encoder.target_bitrate == encoding.H264_DEFAULT_BITRATE
    first, *rest = frames(320, 240, 5)
    nal_units = list(encoder._encode_frame(first, force_keyframe=False))
    for frame in rest:
        payloads, timestamp = encoder.encode(frame)
        assert payloads, "zerolatency: every frame comes out at once"
        assert timestamp == frame.pts
    # The options as libx264 applied them: its SEI carries them as text, the SPS carries the level.
    sps = next(nal for nal in nal_units if nal[0] & 0x1F == 7)
    assert sps[1] == 66, "Baseline profile"
    assert sps[3] == 42, "level 4.2"
    sei = next(nal for nal in nal_units if b"x264 - core" in nal)
    options = dict(
        item.split("=", 1)
        for item in sei.split(b"options: ")[1].split(b"\x00")[0].decode().split()
        if "=" in item
    )
    assert options["bframes"] == "0"
    assert options["keyint"] == "60"
    assert options["me"] == "dia" and options["subme"] == "0", "preset ultrafast"
    assert options["sliced_threads"] == "1" and options["mbtree"] == "0", "tune zerolatency"
    assert options["bitrate"] == str(encoding.H264_DEFAULT_BITRATE // 1000)
    assert encoder.codec is not None and encoder.codec.time_base == fractions.Fraction(1, 90000)


def test_h264_pts_above_30_fps_stay_distinct() -> None:
    encoder = TunedH264Encoder()
    for frame in frames(160, 120, 4, fps=60):
        pts = frame.pts
        encoder.encode(frame)
        assert frame.pts == pts, "the encoder must not squash 60 fps timestamps into 1/30 s steps"


def test_small_bandwidth_changes_keep_the_encoder_and_big_ones_rebuild_it() -> None:
    encoder = TunedH264Encoder()
    first, second, third = frames(160, 120, 3)
    encoder.encode(first)
    codec = encoder.codec
    encoder.target_bitrate = int(encoding.H264_DEFAULT_BITRATE * 1.3)  # aiortc would rebuild (>10%)
    encoder.encode(second)
    assert encoder.codec is codec
    assert encoder.target_bitrate == encoding.H264_DEFAULT_BITRATE
    encoder.target_bitrate = encoding.H264_DEFAULT_BITRATE // 4
    encoder.encode(third)
    assert encoder.codec is not codec
    assert encoder.codec is not None and encoder.codec.bit_rate == encoding.H264_DEFAULT_BITRATE // 4


def test_bandwidth_estimates_are_clamped_to_our_caps() -> None:
    encoder = TunedH264Encoder()
    encoder.target_bitrate = 10**9
    assert encoder.target_bitrate == encoding.H264_MAX_BITRATE
    encoder.target_bitrate = 1
    assert encoder.target_bitrate == encoding.H264_MIN_BITRATE
    vp8 = TunedVp8Encoder()
    vp8.target_bitrate = 10**9
    assert vp8.target_bitrate == encoding.VP8_MAX_BITRATE


def test_vp8_encoder_encodes_at_the_raised_rate() -> None:
    encoder = TunedVp8Encoder()
    for frame in frames(320, 240, 3):
        payloads, _ = encoder.encode(frame)
        assert payloads
    assert encoder.codec is not None
    assert encoder.codec.bit_rate == encoding.VP8_DEFAULT_BITRATE


def first_video_codec(sdp: str) -> str:
    media = next(line for line in sdp.splitlines() if line.startswith("m=video"))
    payload_type = media.split()[3]
    rtpmap = next(line for line in sdp.splitlines() if line.startswith(f"a=rtpmap:{payload_type} "))
    return rtpmap.split()[1].split("/")[0]


async def test_prefer_codec_puts_h264_first_in_the_offer() -> None:
    pc = RTCPeerConnection()
    try:
        default = pc.addTransceiver("video", direction="sendonly")
        preferred = pc.addTransceiver("video", direction="sendonly")
        assert prefer_codec(preferred)
        assert not prefer_codec(default, mime="video/AV1")
        offer = await pc.createOffer()
        sections = offer.sdp.split("m=video")
        assert first_video_codec("m=video" + sections[1]) == "VP8"  # aiortc's own order
        assert first_video_codec("m=video" + sections[2]) == "H264"
    finally:
        await pc.close()
