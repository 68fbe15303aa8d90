"""Every process-wide change Coalesce makes to aiortc and aioice, put in place by :func:`install`.

aiortc and aioice have no hooks for what we change, but each looks the names below up as a module (or
class) attribute when it uses them, so replacing an attribute changes every connection made afterwards. The
logic lives in its concept module; this module only puts it in place of upstream's, after checking that
the installed aiortc and aioice are the series it was written for (:data:`WRITTEN_FOR`, as pyproject
pins them), and takes it away again (:func:`uninstall`, for tests that compare with upstream).

1. ``aiortc.rtcrtpsender.get_encoder`` (``RTCRtpSender`` imports it by name from ``aiortc.codecs``) asks
   :func:`~coalesce_common.media.encoding.tuned_encoder` first. aiortc's libx264 at ``medium``, level 3.1
   and 3 Mbps, rebuilt with a key frame on every 10% REMB change, held a 1080p sender loop at 31 fps on
   2 cores; ultrafast/zerolatency with screen-sized caps and hysteresis reached 92.
2. ``aiortc.codecs.vpx.number_of_threads`` becomes :func:`~coalesce_common.media.encoding.vp8_threads`:
   aiortc's gives VP8 1 thread at 1080p on 8 CPUs or fewer (22 fps); 2 threads gave 44.
3. ``aiortc.rtcrtpreceiver.JitterBuffer`` (imported by name, built in ``RTCRtpReceiver.__init__``) becomes
   :class:`~coalesce_common.media.receiving.FrameEndJitterBuffer`: a video frame leaves at its last
   packet instead of the next frame's first, one frame interval (17 ms at 60 fps) earlier.
4. ``aioice.turn.UDP_SOCKET_BUFFER_SIZE`` (also read by ``aioice.ice`` for host sockets) is raised to
   :data:`~coalesce_common.media.receiving.UDP_RECEIVE_BUFFER`: 256 KiB overflowed on 1080p key-frame
   bursts (p95 latency 800 ms on a static 1080p page, 24 ms with 1 MiB).
5. ``aioice.ice.get_host_addresses`` is filtered by :func:`~coalesce_common.media.ice.host_addresses`:
   127.0.0.1 for peers on one machine, and the ``only`` list that pins tests to loopback.
6. ``aioice.turn.create_turn_endpoint`` (called by ``aioice.ice.relayed_candidate``) goes by the
   :class:`~coalesce_common.net.turn.TurnRoute` of the peer connection gathering, if it has one: TURN
   over TCP/TLS through the proxy and trusting the cloud's CA, which aioice cannot do.
7. ``aiortc.rtcrtpreceiver.TimestampMapper`` becomes
   :class:`~coalesce_common.media.receiving.UnwrappedTimestamps` (decoded frames keep the sender's RTP
   timestamps), and ``RTCRtpReceiver._handle_rtcp_packet`` also hands each RTCP sender report to
   :func:`~coalesce_common.media.receiving.note_sender_report`: aiortc keeps neither, and lip sync needs
   both to place sound and picture on the sender's clock.
8. ``RTCRtpSender._next_encoded_frame`` also notes how long ago its frame was captured
   (:func:`~coalesce_common.media.sending.note_encoded`), and ``RTCRtpSender._send_rtcp`` moves each
   sender report's RTP timestamp on by that (:func:`~coalesce_common.media.sending.place_report`): the
   reports say when a timestamp was captured, not sent, as libwebrtc's do, so the room lines the sound
   up with the picture as they were played and painted on the laptop.

9. ``aioice.ice.server_reflexive_candidate`` (called by name for each host socket) is not run from a
   loopback socket towards a STUN server elsewhere (:func:`~coalesce_common.media.ice.stun_can_answer`):
   that query is never answered, and aioice waited its 5 s gathering limit for it, so every peer-to-peer
   share through a cloud on another machine started 5 s late (6.0 s to the first frame in
   ``tests/ladder``, 1.0 s after).

``tests/media/test_aiortc_patches.py`` fails when an upgrade breaks any of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ssl import SSLContext
from types import ModuleType
from typing import Any

import aioice
import aioice.ice
import aioice.turn
import aiortc
import aiortc.codecs.vpx
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
from aiortc.codecs.base import Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCEncodedFrame, RTCRtpSender
from aiortc.rtp import AnyRtcpPacket, RtcpSrPacket

from coalesce_common.errors import MediaError
from coalesce_common.media import encoding, ice, receiving, sending
from coalesce_common.net import turn

logger = logging.getLogger(__name__)

WRITTEN_FOR = {"aiortc": "1.16", "aioice": "0.13"}
"""The release series (major.minor) each library's patches were written and tested against."""


class UnsupportedLibraryVersion(MediaError):
    """aiortc or aioice is a version these patches were not written for."""

    def __init__(self, package: str, version: str) -> None:
        series = WRITTEN_FOR[package]
        major, minor = series.split(".")
        super().__init__(
            f"Coalesce was written for {package} {series}, but {package} {version} is installed, and its "
            f"media tuning may not work with it. Install {package} {series} (pip install "
            f"'{package}>={series},<{major}.{int(minor) + 1}') or a Coalesce release made for "
            f"{package} {version}."
        )
        self.package = package
        self.version = version


def check_versions() -> None:
    """Raise :class:`UnsupportedLibraryVersion` unless aiortc and aioice are the series patched here."""
    for package, version in (("aiortc", aiortc.__version__), ("aioice", aioice.__version__)):
        if version.split(".")[:2] != WRITTEN_FOR[package].split("."):
            raise UnsupportedLibraryVersion(package, version)


@dataclass(frozen=True)
class Patch:
    module: ModuleType | type
    """The module, or the class, whose attribute is replaced."""
    name: str
    replacement: Callable[[Any], Any]
    """Given upstream's value, what goes in its place."""

    @property
    def target(self) -> str:
        owner = self.module
        if isinstance(owner, ModuleType):
            return f"{owner.__name__}.{self.name}"
        return f"{owner.__module__}.{owner.__qualname__}.{self.name}"


def _tuned_encoder_first(upstream: Callable[[RTCRtpCodecParameters], Encoder]) -> Callable[..., Encoder]:
    def get_encoder(codec: RTCRtpCodecParameters) -> Encoder:
        tuned = encoding.tuned_encoder(codec)
        return tuned if tuned is not None else upstream(codec)

    return get_encoder


def _filtered_host_addresses(upstream: Callable[[bool, bool], list[str]]) -> Callable[..., list[str]]:
    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ice.host_addresses(upstream(use_ipv4, use_ipv6), use_ipv4=use_ipv4)

    return get_host_addresses


def _routed_turn_endpoints(upstream: turn.CreateTurnEndpoint) -> turn.CreateTurnEndpoint:
    async def create_turn_endpoint(
        protocol_factory: Any,
        server_addr: tuple[str, int],
        username: str | None,
        password: str | None,
        lifetime: int = aioice.turn.DEFAULT_ALLOCATION_LIFETIME,
        channel_refresh_time: int = aioice.turn.DEFAULT_CHANNEL_REFRESH_TIME,
        ssl: bool | SSLContext | None = None,
        transport: str = "udp",
    ) -> turn.TurnEndpoint:
        args = (
            protocol_factory,
            server_addr,
            username,
            password,
            lifetime,
            channel_refresh_time,
            ssl,
            transport,
        )
        route = turn.active_route()
        if route is None:
            return await upstream(*args)
        return await route.create_endpoint(upstream, *args)

    return create_turn_endpoint


ReflexiveCandidate = Callable[[Any, tuple[str, int]], Awaitable[tuple[Any, None]]]


def _no_stun_from_loopback(upstream: ReflexiveCandidate) -> ReflexiveCandidate:
    async def server_reflexive_candidate(protocol: Any, stun_server: tuple[str, int]) -> tuple[Any, None]:
        if not await ice.stun_can_answer(protocol.local_candidate.host, stun_server):
            raise ConnectionError(f"no STUN query from loopback to {stun_server[0]}")
        return await upstream(protocol, stun_server)

    return server_reflexive_candidate


RtcpHandler = Callable[[RTCRtpReceiver, AnyRtcpPacket], Awaitable[None]]


def _noting_sender_reports(upstream: RtcpHandler) -> RtcpHandler:
    async def _handle_rtcp_packet(self: RTCRtpReceiver, packet: AnyRtcpPacket) -> None:
        if isinstance(packet, RtcpSrPacket):
            receiving.note_sender_report(self, packet)
        await upstream(self, packet)

    return _handle_rtcp_packet


EncodedFrames = Callable[[RTCRtpSender, RTCRtpCodecParameters], Awaitable[RTCEncodedFrame | None]]


def _noting_capture_lag(upstream: EncodedFrames) -> EncodedFrames:
    async def _next_encoded_frame(self: RTCRtpSender, codec: RTCRtpCodecParameters) -> RTCEncodedFrame | None:
        encoded = await upstream(self, codec)
        if encoded is not None:
            sending.note_encoded(self, codec.clockRate)
        return encoded

    return _next_encoded_frame


RtcpSend = Callable[[RTCRtpSender, list[AnyRtcpPacket]], Awaitable[None]]


def _capture_timed_reports(upstream: RtcpSend) -> RtcpSend:
    async def _send_rtcp(self: RTCRtpSender, packets: list[AnyRtcpPacket]) -> None:
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                sending.place_report(self, packet)
        await upstream(self, packets)

    return _send_rtcp


PATCHES: tuple[Patch, ...] = (
    Patch(aiortc.rtcrtpsender, "get_encoder", _tuned_encoder_first),
    Patch(aiortc.codecs.vpx, "number_of_threads", lambda _: encoding.vp8_threads),
    Patch(aiortc.rtcrtpreceiver, "JitterBuffer", lambda _: receiving.FrameEndJitterBuffer),
    Patch(aioice.turn, "UDP_SOCKET_BUFFER_SIZE", lambda size: max(receiving.UDP_RECEIVE_BUFFER, size)),
    Patch(aioice.ice, "get_host_addresses", _filtered_host_addresses),
    Patch(aioice.turn, "create_turn_endpoint", _routed_turn_endpoints),
    Patch(aiortc.rtcrtpreceiver, "TimestampMapper", lambda _: receiving.UnwrappedTimestamps),
    Patch(RTCRtpReceiver, "_handle_rtcp_packet", _noting_sender_reports),
    Patch(RTCRtpSender, "_next_encoded_frame", _noting_capture_lag),
    Patch(RTCRtpSender, "_send_rtcp", _capture_timed_reports),
    Patch(aioice.ice, "server_reflexive_candidate", _no_stun_from_loopback),
)

_upstream: list[tuple[Patch, Any]] = []
"""Upstream's values of the patched attributes, while the patches are installed."""


def install() -> None:
    """Put every patch in place, for connections made from now on; idempotent.

    Raises :class:`UnsupportedLibraryVersion`, changing nothing, on an aiortc or aioice it does not know.
    """
    check_versions()
    if _upstream:
        return
    for patch in PATCHES:
        original = getattr(patch.module, patch.name)
        _upstream.append((patch, original))
        setattr(patch.module, patch.name, patch.replacement(original))
    logger.debug("aiortc/aioice patched: %s", ", ".join(p.target for p in PATCHES))


def uninstall() -> None:
    """Give aiortc and aioice back their own behaviour; does nothing if not installed."""
    while _upstream:
        patch, original = _upstream.pop()
        setattr(patch.module, patch.name, original)


def installed() -> bool:
    return bool(_upstream)
