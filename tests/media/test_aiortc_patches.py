"""Every aiortc/aioice patch still fits upstream, goes in and comes out, and does what it was made for.

This file is the one to run after upgrading aiortc or aioice. For each patch it checks that upstream still
has the attribute with the shape we replace, still looks it up by name when it uses it (else replacing it
changes nothing), that :func:`install` replaces it and :func:`uninstall` restores it, and that the tuned
behaviour is in effect. The regression tests for the speed fixes the benchmark found are here too:

- An H.264 encoder given a bandwidth estimate that is not a whole number of kbit/s rebuilt its codec,
  and so sent a key frame, on every frame (libx264 reports the rate back rounded).
- aiortc's jitter buffer held each video frame until the next frame's first packet arrived.
- aioice's 256 KiB socket buffers overflowed on key-frame bursts.

And the hardware H.264 encoders, tried before libx264: one that cannot open falls back to the next.
TURN through a real proxy and TLS with the cloud's CA is ``tests/proxy/test_turn_adapter.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

import aioice
import aioice.ice
import aioice.turn
import aiortc
import aiortc.clock
import aiortc.codecs
import aiortc.codecs.vpx
import aiortc.rtcdtlstransport
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
import numpy as np
import pytest
from aiortc import RTCIceServer
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from coalesce_common.errors import MediaError
from coalesce_common.media import aiortc_patches, encoding, ice, receiving
from coalesce_common.media.aiortc_patches import PATCHES, UnsupportedLibraryVersion
from coalesce_common.media.encoding import TunedH264Encoder, TunedVp8Encoder
from coalesce_common.media.peer import new_peer_connection
from coalesce_common.media.receiving import GAP_GIVE_UP, FrameEndJitterBuffer
from coalesce_common.media.sound import SoundTrack
from coalesce_common.net.turn import TurnEndpoint, TurnRoute

H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


@pytest.fixture(autouse=True)
def upstream_first() -> Iterator[None]:
    """Each test starts from aiortc's and aioice's own behaviour and leaves it so."""
    aiortc_patches.uninstall()
    yield
    aiortc_patches.uninstall()


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def looks_up(function: Callable[..., Any], name: str) -> bool:
    """Whether ``function``'s code reads ``name`` as a global or an attribute when it runs."""
    return name in function.__code__.co_names


# --- the version check -------------------------------------------------------------------------------


def test_the_installed_versions_are_the_ones_the_patches_were_written_for() -> None:
    aiortc_patches.check_versions()  # what pyproject pins; an upgrade past the pins lands here first
    assert aiortc.__version__.startswith(aiortc_patches.WRITTEN_FOR["aiortc"] + ".")
    assert aioice.__version__.startswith(aiortc_patches.WRITTEN_FOR["aioice"] + ".")


@pytest.mark.parametrize(("module", "version"), [(aiortc, "1.17.0"), (aioice, "0.14.1"), (aiortc, "2.16.0")])
def test_an_unknown_version_is_refused_clearly_and_nothing_is_patched(
    monkeypatch: pytest.MonkeyPatch, module: Any, version: str
) -> None:
    monkeypatch.setattr(module, "__version__", version)
    with pytest.raises(UnsupportedLibraryVersion) as raised:
        aiortc_patches.install()
    assert isinstance(raised.value, MediaError)
    assert (raised.value.package, raised.value.version) == (module.__name__, version)
    assert version in str(raised.value) and "pip install" in str(raised.value)
    assert not aiortc_patches.installed()
    assert aiortc.rtcrtpsender.get_encoder is aiortc.codecs.get_encoder  # type: ignore[attr-defined]


# --- every patch: upstream's shape, install, uninstall ---------------------------------------------

UPSTREAM_SHAPE: dict[str, Callable[[Any], bool]] = {
    "aiortc.rtcrtpsender.get_encoder": lambda value: (
        parameters(value) == ["codec"]
        and looks_up(aiortc.rtcrtpsender.RTCRtpSender._next_encoded_frame, "get_encoder")
    ),
    "aiortc.codecs.vpx.number_of_threads": lambda value: (
        parameters(value) == ["pixels", "cpus"] and looks_up(Vp8Encoder.encode, "number_of_threads")
    ),
    "aiortc.rtcrtpreceiver.JitterBuffer": lambda value: (
        value is JitterBuffer
        and parameters(value) == ["capacity", "prefetch", "is_video"]
        and looks_up(aiortc.rtcrtpreceiver.RTCRtpReceiver.__init__, "JitterBuffer")
    ),
    "aiortc.rtcrtpreceiver.TimestampMapper": lambda value: (
        parameters(value.map) == ["self", "timestamp"]
        and looks_up(aiortc.rtcrtpreceiver.RTCRtpReceiver.__init__, "TimestampMapper")
    ),
    "aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtcp_packet": lambda value: (
        parameters(value) == ["self", "packet"]
        and inspect.iscoroutinefunction(value)
        and looks_up(aiortc.rtcdtlstransport.RTCDtlsTransport._handle_rtcp_data, "_handle_rtcp_packet")
    ),
    "aiortc.rtcrtpsender.RTCRtpSender._next_encoded_frame": lambda value: (
        parameters(value) == ["self", "codec"]
        and inspect.iscoroutinefunction(value)
        and looks_up(aiortc.rtcrtpsender.RTCRtpSender._run_rtp, "_next_encoded_frame")
    ),
    "aiortc.rtcrtpsender.RTCRtpSender._send_rtcp": lambda value: (
        parameters(value) == ["self", "packets"]
        and inspect.iscoroutinefunction(value)
        and looks_up(aiortc.rtcrtpsender.RTCRtpSender._run_rtcp, "_send_rtcp")
    ),
    "aioice.turn.UDP_SOCKET_BUFFER_SIZE": lambda value: (
        isinstance(value, int)
        and looks_up(aioice.ice.Connection.get_component_candidates, "UDP_SOCKET_BUFFER_SIZE")
        and looks_up(aioice.turn.create_turn_endpoint, "UDP_SOCKET_BUFFER_SIZE")
    ),
    "aioice.ice.get_host_addresses": lambda value: (
        parameters(value) == ["use_ipv4", "use_ipv6"]
        and looks_up(aioice.ice.Connection.gather_candidates, "get_host_addresses")
    ),
    "aioice.turn.create_turn_endpoint": lambda value: (
        parameters(value)
        == [
            "protocol_factory",
            "server_addr",
            "username",
            "password",
            "lifetime",
            "channel_refresh_time",
            "ssl",
            "transport",
        ]
        and looks_up(aioice.ice.relayed_candidate, "create_turn_endpoint")
    ),
    "aioice.ice.server_reflexive_candidate": lambda value: (
        parameters(value) == ["protocol", "stun_server"]
        and inspect.iscoroutinefunction(value)
        and looks_up(aioice.ice.Connection.get_component_candidates, "server_reflexive_candidate")
    ),
}


def test_every_patch_is_checked_here() -> None:
    assert sorted(p.target for p in PATCHES) == sorted(UPSTREAM_SHAPE)


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.target)
def test_each_patch_fits_upstream_is_installed_once_and_uninstalled(patch: aiortc_patches.Patch) -> None:
    upstream = getattr(patch.module, patch.name)
    assert UPSTREAM_SHAPE[patch.target](upstream), f"{patch.target} changed upstream: the patch needs a look"
    aiortc_patches.install()
    replaced = getattr(patch.module, patch.name)
    assert replaced != upstream
    aiortc_patches.install()
    assert getattr(patch.module, patch.name) is replaced, "a second install wrapped the first"
    aiortc_patches.uninstall()
    assert getattr(patch.module, patch.name) == upstream
    assert not aiortc_patches.installed()


def test_turn_route_relies_on_aioices_turn_classes() -> None:
    """:class:`TurnRoute` builds aioice's TCP TURN client itself and hands it to ``TurnTransport._connect``.

    (It works through a real proxy in ``tests/proxy/test_turn_adapter.py``.)
    """
    assert parameters(aioice.turn.TurnClientTcpProtocol) == [
        "server",
        "username",
        "password",
        "lifetime",
        "channel_refresh_time",
    ]
    assert parameters(aioice.turn.TurnTransport) == ["inner_protocol"]
    assert parameters(aioice.turn.TurnTransport._connect) == ["self", "protocol"]


# --- encoders -----------------------------------------------------------------------------------------


def _frames(count: int, width: int = 160, height: int = 120) -> list[av.VideoFrame]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, size=(height * 3 // 2, width), dtype=np.uint8)
    frames = []
    for index in range(count):
        frame = av.VideoFrame.from_ndarray(np.roll(base, index * 4, axis=1), format="yuv420p")
        # At the rate the H.264 encoder opens at before measuring (INITIAL_FPS), so that it is rebuilt
        # only for what a test changes.
        frame.pts = round(index * 90000 / encoding.INITIAL_FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        frames.append(frame)
    return frames


def sender_encoder(codec: RTCRtpCodecParameters) -> object:
    """The encoder RTCRtpSender would make: it calls the name it imported."""
    return aiortc.rtcrtpsender.get_encoder(codec)  # type: ignore[attr-defined]


def test_senders_get_the_tuned_encoders_and_aiortcs_for_the_rest() -> None:
    aiortc_patches.install()
    assert isinstance(sender_encoder(H264), TunedH264Encoder)
    assert isinstance(sender_encoder(VP8), TunedVp8Encoder)
    assert type(sender_encoder(OPUS)) is OpusEncoder
    aiortc_patches.uninstall()
    assert type(sender_encoder(H264)) is H264Encoder
    assert type(sender_encoder(VP8)) is Vp8Encoder


def test_vp8_gets_more_than_one_thread_at_1080p() -> None:
    cpus = os.cpu_count() or 1
    assert aiortc.codecs.vpx.number_of_threads(1920 * 1080, 2) == 1  # aiortc's own choice
    aiortc_patches.install()
    assert aiortc.codecs.vpx.number_of_threads(1920 * 1080, 2) == 2
    if cpus >= 2:
        # A real encoder asks at encode time: the patched name reaches the open codec.
        encoder = TunedVp8Encoder()
        (frame,) = _frames(1, 640, 480)
        assert encoder.encode(frame)[0]
        assert encoder.codec is not None
        assert encoder.codec.thread_count == encoding.vp8_threads(640 * 480, cpus) == 2


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


# --- the jitter buffer and socket buffers ------------------------------------------------------------


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


def test_aiortcs_own_buffer_holds_the_frame_until_the_next_one_starts() -> None:
    """What the patch is for: if upstream ever releases at the marker, this fails and the patch can go."""
    buffer = JitterBuffer(capacity=128, is_video=True)
    released = list(_feed(buffer, [_packet(10, 3000), _packet(11, 3000, marker=True), _packet(12, 4500)]))
    assert released[:2] == [None, None]
    assert released[2] is not None and released[2].timestamp == 3000


def test_a_frame_with_a_gap_waits_for_the_missing_packet() -> None:
    buffer = FrameEndJitterBuffer(capacity=128, is_video=True)
    assert list(_feed(buffer, [_packet(20, 3000), _packet(22, 3000, marker=True)])) == [None, None]
    (frame,) = _feed(buffer, [_packet(21, 3000)])  # the retransmission fills the gap
    assert frame is not None and frame.data == bytes([20, 21, 22])


def test_a_packet_that_never_comes_is_given_up_and_a_key_frame_asked_for() -> None:
    """After an outage the lost packets are past resending: the picture goes on a second later."""
    now = [0.0]
    buffer = FrameEndJitterBuffer(capacity=512, is_video=True, clock=lambda: now[0])
    held = [_packet(20, 3000), _packet(22, 3000, marker=True), _packet(23, 4500, marker=True)]
    assert list(_feed(buffer, held)) == [None, None, None]  # 21 is missing: waited for
    now[0] = GAP_GIVE_UP - 0.1
    assert buffer.add(_packet(24, 6000, marker=True)) == (False, None)  # still waited for
    now[0] = GAP_GIVE_UP + 0.1
    pli, frame = buffer.add(_packet(25, 7500, marker=True))
    assert pli  # the decoder lost a reference: a key frame is asked for
    assert frame is not None and frame.timestamp == 4500  # the frame with the gap is dropped, the next goes
    _, frame = buffer.add(_packet(26, 9000, marker=True))
    assert frame is not None and frame.timestamp == 6000


def test_a_frame_without_a_marker_is_released_by_the_next_frame_as_before() -> None:
    buffer = FrameEndJitterBuffer(capacity=128, is_video=True)
    released = list(_feed(buffer, [_packet(30, 3000), _packet(31, 3000), _packet(32, 4500)]))
    assert released[:2] == [None, None]
    frame = released[2]
    assert frame is not None and frame.timestamp == 3000 and frame.data == bytes([30, 31])


def test_sound_packets_go_on_at_once_where_aiortc_held_four_back() -> None:
    packets = [_packet(40 + i, 960 * i, marker=True) for i in range(6)]
    ours = [f and f.data for f in _feed(FrameEndJitterBuffer(capacity=16, prefetch=4), packets)]
    assert ours == [bytes([40 + i]) for i in range(6)]
    theirs = [f and f.data for f in _feed(JitterBuffer(capacity=16, prefetch=4), packets)]
    assert theirs[:4] == [None] * 4, "if upstream stops holding sound back, this part of the patch can go"


def test_a_lost_sound_packet_is_given_up_once_two_more_have_come() -> None:
    buffer = FrameEndJitterBuffer(capacity=16, prefetch=4)
    assert [f and f.data for f in _feed(buffer, [_packet(50, 0), _packet(52, 1920)])] == [bytes([50]), None]
    (late,) = _feed(buffer, [_packet(51, 960)])  # only late: it still plays, in order
    assert late is not None and late.data == bytes([51])
    (next_one,) = _feed(buffer, [_packet(54, 3840)])  # 52 is next, and waiting
    assert next_one is not None and next_one.data == bytes([52])
    # 53 is lost: held up by one packet, then given up when a second one comes behind it
    assert [f and f.data for f in _feed(buffer, [_packet(55, 4800)])] == [bytes([54])]
    # aiortc's buffer stayed stuck until 16 packets were behind the gap (320 ms of silence)
    stuck = JitterBuffer(capacity=16, prefetch=4)
    released = [f for f in _feed(stuck, [_packet(60 + i, 960 * i) for i in range(6) if i != 1]) if f]
    assert len(released) == 0


def test_frames_keep_the_senders_rtp_timestamps_unwrapped() -> None:
    mapper = receiving.UnwrappedTimestamps()
    assert [mapper.map(t) for t in (2**32 - 960, 2**32 - 480, 480, 1440)] == [
        2**32 - 960,
        2**32 - 480,
        2**32 + 480,
        2**32 + 1440,
    ]
    report = receiving.SenderReport(sender_seconds=100.0, rtp_timestamp=2**32 - 48_000, clock_rate=48_000)
    assert report.sender_time(2**32 + 48_000) == pytest.approx(102.0)  # after the wrap: 2 s later
    assert report.sender_time(2**32 - 96_000) == pytest.approx(99.0)


async def test_decoded_sound_and_picture_are_placed_on_the_senders_clock() -> None:
    """Over a real loopback connection: once the sender's first RTCP reports are in, the time each report
    puts on a decoded frame is when it was sent, give or take the loopback's delay (here both ends share a
    clock). With aiortc's own timestamps the frames counted from zero, and this was hours off."""
    sending, receiving_pc = new_peer_connection(), new_peer_connection()
    sending.addTrack(SoundTrack(None))
    sending.addTrack(VideoStreamTrack())
    arrivals: dict[str, tuple[int, float]] = {}
    arrived = asyncio.Event()

    async def read(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                arrivals[track.kind] = (frame.pts, ntp_seconds())
                arrived.set()

    readers: list[asyncio.Task[None]] = []
    receiving_pc.on("track", lambda track: readers.append(asyncio.ensure_future(read(track))))
    try:
        await sending.setLocalDescription(await sending.createOffer())
        await receiving_pc.setRemoteDescription(sending.localDescription)
        await receiving_pc.setLocalDescription(await receiving_pc.createAnswer())
        await sending.setRemoteDescription(receiving_pc.localDescription)
        receivers = {t.receiver.track.kind: t.receiver for t in receiving_pc.getTransceivers()}
        assert sorted(receivers) == ["audio", "video"]
        async with asyncio.timeout(15):
            while any(receiving.sender_report(r) is None for r in receivers.values()) or len(arrivals) < 2:
                arrived.clear()
                await arrived.wait()  # reports come with the frames: look again at the next one
        for kind, receiver in receivers.items():
            report = receiving.sender_report(receiver)
            assert report is not None and report.clock_rate == receiving.RTP_CLOCK_RATES[kind]
            pts, arrived = arrivals[kind]
            assert abs(arrived - report.sender_time(pts)) < 0.25, kind
    finally:
        await sending.close()
        await receiving_pc.close()
        for reader in readers:
            reader.cancel()


def ntp_seconds() -> float:
    ntp = aiortc.clock.current_ntp_time()
    return (ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32


def test_tuning_installs_the_jitter_buffer_and_socket_buffers_and_untuning_restores_them() -> None:
    assert aiortc.rtcrtpreceiver.JitterBuffer is JitterBuffer  # type: ignore[attr-defined]
    default_buffer = aioice.turn.UDP_SOCKET_BUFFER_SIZE
    aiortc_patches.install()
    assert aiortc.rtcrtpreceiver.JitterBuffer is FrameEndJitterBuffer  # type: ignore[attr-defined]
    tuned_buffer = aioice.turn.UDP_SOCKET_BUFFER_SIZE
    assert tuned_buffer == max(receiving.UDP_RECEIVE_BUFFER, default_buffer)
    aiortc_patches.uninstall()
    assert aiortc.rtcrtpreceiver.JitterBuffer is JitterBuffer  # type: ignore[attr-defined]
    restored_buffer = aioice.turn.UDP_SOCKET_BUFFER_SIZE
    assert restored_buffer == default_buffer


# --- host addresses ---------------------------------------------------------------------------------


@pytest.fixture
def default_host_policy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ice.HOST_ADDRESSES_ENV, raising=False)
    ice.reset_host_addresses_policy()
    yield
    ice.reset_host_addresses_policy()


@pytest.mark.usefixtures("default_host_policy")
def test_aioice_leaves_out_loopback_and_the_patch_adds_it_last() -> None:
    plain = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    assert "127.0.0.1" not in plain
    aiortc_patches.install()
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == [*plain, "127.0.0.1"]


# --- TURN routes ------------------------------------------------------------------------------------


class RecordingRoute(TurnRoute):
    """A route that notes each TURN connection it is asked for and fails it (aioice then goes on without)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[tuple[str, int], str]] = []

    async def create_endpoint(
        self, upstream: Any, protocol_factory: Any, server_addr: tuple[str, int], *args: Any
    ) -> TurnEndpoint:
        self.asked.append((server_addr, args[-1]))
        raise ConnectionRefusedError("recorded")


def turn_servers(port: int) -> list[RTCIceServer]:
    return [RTCIceServer(urls=f"turn:127.0.0.1:{port}?transport=tcp", username="u", credential="p")]


async def gather(servers: list[RTCIceServer]) -> None:
    pc = new_peer_connection(servers, relay_only=True)
    try:
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers here
    finally:
        await pc.close()


async def test_each_peer_connection_opens_turn_by_its_own_route(
    free_tcp_port_factory: Callable[[], int],
) -> None:
    first, second = RecordingRoute(), RecordingRoute()
    first_port, second_port = free_tcp_port_factory(), free_tcp_port_factory()
    # Built one after the other, gathering at the same time: no route wins over the other.
    first_servers = first.attach(turn_servers(first_port))
    second_servers = second.attach(turn_servers(second_port))
    await asyncio.gather(gather(first_servers), gather(second_servers))
    assert aiortc_patches.installed()
    assert first.asked == [(("127.0.0.1", first_port), "tcp")]
    assert second.asked == [(("127.0.0.1", second_port), "tcp")]


async def test_a_peer_connection_without_a_route_leaves_turn_to_aioice(
    free_tcp_port_factory: Callable[[], int],
) -> None:
    route = RecordingRoute()
    routed_port, unrouted_port = free_tcp_port_factory(), free_tcp_port_factory()
    routed = route.attach(turn_servers(routed_port))
    # aioice's own connection to the unrouted port is refused; the route never hears of it.
    await asyncio.gather(gather(routed), gather(turn_servers(unrouted_port)))
    assert route.asked == [(("127.0.0.1", routed_port), "tcp")]
