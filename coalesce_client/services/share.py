"""One outgoing share: connect, pair with the PIN, negotiate WebRTC, stream, and end cleanly.

The sender verifies everything pairing vouches for: the receiver's TLS certificate (against the
fingerprint mDNS advertised, and through the PIN-keyed confirmation) and the DTLS fingerprint of the
answer. Errors are raised as the :mod:`coalesce_common.errors` types, whose messages are fit to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from aiortc import RTCIceServer, RTCPeerConnection, RTCSessionDescription

from coalesce_common import PROTOCOL_VERSION
from coalesce_common.errors import (
    IdentityMismatch,
    MediaError,
    PairingError,
    ProtocolError,
    ShareRefused,
    Throttled,
    WrongPin,
)
from coalesce_common.media.capture import CameraSource, CaptureSource, ScreenSource, list_monitors
from coalesce_common.media.encoding import prefer_codec
from coalesce_common.media.peer import new_peer_connection
from coalesce_common.media.tracks import CaptureTrack
from coalesce_common.protocol import (
    Answer,
    Bye,
    Challenge,
    Denied,
    DenyReason,
    Error,
    Hello,
    JoinDecision,
    JoinRequest,
    Message,
    Offer,
    Pair,
    Role,
    SenderRole,
    SignalingSession,
    Welcome,
)
from coalesce_common.protocol.pairing import PairingKey, SenderPairing
from coalesce_common.signaling import ChannelClosed, SignalingChannel
from coalesce_common.signaling.websocket import connect
from coalesce_common.tls import normalise_fingerprint

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)

PinProvider = Callable[[str], Awaitable[str | None]]
JoinRequestHandler = Callable[[str], Awaitable[bool]]
"""Asked, as a moderator, whether the named sender may share; ``True`` lets it in."""
"""Asked for the PIN with the receiver's name when the receiver needs one; ``None`` cancels."""


@dataclass(frozen=True)
class ShareTarget:
    """Where to share: an address, and the certificate fingerprint mDNS advertised for it, if any."""

    host: str
    port: int
    fingerprint: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.host}:{self.port})" if self.name else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ShareOptions:
    sender_name: str = socket.gethostname()
    pin: str | None = None
    screen: int | None = 1  # mss monitor index; None shares no screen
    camera: str | int | None = None  # camera index or a video file
    fps: float = 30.0
    display: str | None = None  # X display to capture; None: $DISPLAY
    connect_timeout: float = 10.0
    media_timeout: float = 15.0
    moderator: bool = False  # pair with the room's moderator PIN and answer join requests


class ShareState(enum.Enum):
    CONNECTING = "connecting"
    PAIRING = "pairing"
    NEGOTIATING = "negotiating"
    SHARING = "sharing"
    ENDED = "ended"


ChannelFactory = Callable[[ShareTarget, float], Awaitable[SignalingChannel]]


async def _websocket_channel(target: ShareTarget, timeout: float) -> SignalingChannel:
    return await connect(target.host, target.port, timeout=timeout)


class Share:
    """Use as ``async with Share(target, options) as share: await share.wait_ended()``."""

    def __init__(
        self,
        target: ShareTarget,
        options: ShareOptions,
        *,
        pin_provider: PinProvider | None = None,
        channel_factory: ChannelFactory = _websocket_channel,
        ice_servers: list[RTCIceServer] | None = None,
        relay_only: bool = False,
        on_join_request: JoinRequestHandler | None = None,
    ) -> None:
        self.target = target
        self.options = options
        self._pin_provider = pin_provider
        self._channel_factory = channel_factory
        self._ice_servers = ice_servers
        self._relay_only = relay_only
        self._on_join_request = on_join_request
        self._session = SignalingSession(Role.SENDER)
        self._channel: SignalingChannel | None = None
        self._pc: RTCPeerConnection | None = None
        self._sources: list[CaptureSource] = []
        self._tracks: list[CaptureTrack] = []
        self._watch: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._ended = asyncio.Event()
        self.state = ShareState.CONNECTING
        self.end_reason = ""
        self.receiver_name = target.name or target.label
        self.share_id = ""
        self.sender_id = uuid.uuid4().hex[:16]

    # -- public ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, pair and negotiate; return once media is connected. Cleans up if anything fails."""
        try:
            await self._start()
        except BaseException:
            await self._teardown("failed")
            raise

    async def wait_ended(self) -> str:
        """Wait until the share ends (stopped here, by the receiver, or by a failure); return why."""
        await self._ended.wait()
        return self.end_reason

    async def stop(self, reason: str = "stopped") -> None:
        """End the share: tell the receiver, close media, stop capture. Idempotent."""
        if self._channel is not None and self.state is not ShareState.ENDED:
            with contextlib.suppress(ChannelClosed, ProtocolError):
                await self._send(Bye(reason=reason))
        await self._teardown(reason)

    async def __aenter__(self) -> Share:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- steps -------------------------------------------------------------------------------------

    async def _start(self) -> None:
        opts = self.options
        await self._open_sources()  # a missing screen or camera is said before any PIN attempt is spent
        self._channel = await self._channel_factory(self.target, opts.connect_timeout)
        if self.target.fingerprint and normalise_fingerprint(
            self.target.fingerprint
        ) != normalise_fingerprint(self._channel.tls_fingerprint):
            raise IdentityMismatch(
                f"{self.target.label} presented a TLS certificate other than the one it advertises on this "
                "network: someone may be impersonating the room display. The share was not started."
            )
        self._set_state(ShareState.PAIRING)
        key = await asyncio.wait_for(self._pair(), opts.connect_timeout + 60)
        self._set_state(ShareState.NEGOTIATING)
        await asyncio.wait_for(self._negotiate(key), opts.media_timeout)
        self._set_state(ShareState.SHARING)
        self._watch = asyncio.ensure_future(self._watch_session())
        logger.info("sharing to %s", self.receiver_name)

    async def _pair(self) -> PairingKey | None:
        assert self._channel is not None
        await self._send(
            Hello(
                v=PROTOCOL_VERSION,
                sender_name=self.options.sender_name[:64],
                sender_id=self.sender_id,
                role=SenderRole.MODERATOR if self.options.moderator else SenderRole.PRESENTER,
            )
        )
        challenge = await self._expect(Challenge)
        self.receiver_name = challenge.receiver_name
        key: PairingKey | None = None
        if challenge.pin_required:
            pin = self.options.pin
            if pin is None and self._pin_provider is not None:
                pin = await self._pin_provider(challenge.receiver_name)
            if pin is None:
                raise PairingError(
                    f"{challenge.receiver_name} needs a PIN: enter the PIN shown on the room display."
                )
            pair, key = SenderPairing(pin).finish(challenge.spake, self._channel.tls_fingerprint)
        else:
            pair = Pair()
        await self._send(pair)
        welcome = await self._expect(Welcome)
        if key is not None:
            key.verify_receiver_confirm(welcome.confirm, self._channel.tls_fingerprint)
        self.share_id = welcome.share_id
        return key

    async def _negotiate(self, key: PairingKey | None) -> None:
        pc = self._pc = new_peer_connection(self._ice_servers, relay_only=self._relay_only)
        kinds: list[tuple[object, str]] = []
        for source in self._sources:
            track = CaptureTrack(source)
            self._tracks.append(track)
            transceiver = pc.addTransceiver(track, direction="sendonly")
            prefer_codec(transceiver)
            kinds.append((transceiver, source.kind))
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def on_state() -> None:
            logger.debug("media connection %s", pc.connectionState)
            if pc.connectionState == "connected":
                connected.set()
            elif pc.connectionState in ("failed", "closed"):
                connected.set()
                if self.state is ShareState.SHARING:
                    self._background.add(asyncio.ensure_future(self.stop("media-failed")))

        await pc.setLocalDescription(await pc.createOffer())
        offer_sdp = pc.localDescription.sdp
        tracks = {str(t.mid): kind for t, kind in kinds}  # type: ignore[attr-defined]
        await self._send(Offer(sdp=offer_sdp, tracks=tracks, mac=key.offer_mac(offer_sdp) if key else None))
        answer = await self._expect(Answer)
        if key is not None:
            key.verify_answer_mac(offer_sdp, answer.sdp, answer.mac)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProtocolError(f"the receiver's SDP answer was rejected: {exc}", code="bad-sdp") from exc
        await connected.wait()
        if pc.connectionState != "connected":
            raise MediaError(
                f"The media connection to {self.receiver_name} failed: this network may block UDP between "
                "your computer and the room display."
            )

    async def _open_sources(self) -> list[CaptureSource]:
        opts = self.options
        if opts.screen is not None:
            monitors = await asyncio.to_thread(list_monitors, opts.display)
            if opts.screen != 0 and not any(m["index"] == opts.screen for m in monitors):
                sizes = ", ".join(f"{m['index']} ({m['width']}x{m['height']})" for m in monitors) or "none"
                raise MediaError(f"There is no screen {opts.screen} to share; screens here: {sizes}.")
            self._sources.append(ScreenSource(opts.screen, fps=opts.fps, display=opts.display))
        if opts.camera is not None:
            self._sources.append(CameraSource(opts.camera))
        if not self._sources:
            raise MediaError("Nothing to share: choose a screen, a camera, or both.")
        return self._sources

    async def _watch_session(self) -> None:
        """After negotiation: join requests (for a moderator), then a bye or an error ends the share."""
        assert self._channel is not None
        try:
            while True:
                message = self._session.receive(await self._channel.recv())
                if isinstance(message, JoinRequest):
                    self._background.add(asyncio.ensure_future(self._answer(message)))
                    continue
                reason = (
                    message.reason
                    if isinstance(message, Bye)
                    else f"error: {getattr(message, 'message', '')}"
                )
                break
        except ChannelClosed:
            reason = "receiver-gone"
        except ProtocolError as exc:
            reason = f"protocol-error: {exc}"
        logger.info("the receiver ended the share (%s)", reason)
        await self._teardown(reason)

    async def _answer(self, request: JoinRequest) -> None:
        """Ask the moderator (``on_join_request``) about a waiting sender and send the decision."""
        approve = False
        if self._on_join_request is not None:
            try:
                approve = await self._on_join_request(request.sender_name)
            except Exception:
                logger.exception("the join-request callback failed; declining")
        with contextlib.suppress(ChannelClosed, ProtocolError):
            await self._send(JoinDecision(request_id=request.request_id, approve=approve))

    # -- plumbing ----------------------------------------------------------------------------------

    async def _expect(self, kind: type[M]) -> M:
        assert self._channel is not None
        message = self._session.receive(await self._channel.recv())
        if isinstance(message, Denied):
            raise _denied_error(message, self.receiver_name)
        if isinstance(message, Error):
            if message.code == "tampered":
                raise IdentityMismatch(message.message)
            raise ShareRefused(f"{self.receiver_name} refused the share: {message.message}")
        if isinstance(message, Bye):
            raise ShareRefused(f"{self.receiver_name} ended the session ({message.reason})")
        if not isinstance(message, kind):
            raise ProtocolError(f"expected {kind.TYPE!r}, got {message.TYPE!r}", code="out-of-order")
        return message

    async def _send(self, message: Message) -> None:
        assert self._channel is not None
        await self._channel.send(self._session.send(message))

    def _set_state(self, state: ShareState) -> None:
        if state is not self.state:
            logger.debug("share %s -> %s", self.state.value, state.value)
            self.state = state

    async def _teardown(self, reason: str) -> None:
        if self.state is ShareState.ENDED:
            await self._ended.wait()
            return
        self._set_state(ShareState.ENDED)
        self.end_reason = reason
        current = asyncio.current_task()
        if self._watch is not None and self._watch is not current:
            self._watch.cancel()
        for track in self._tracks:
            track.stop()
        if self._pc is not None:
            await self._pc.close()
        for source in self._sources:
            source.stop()
        if self._channel is not None:
            await self._channel.aclose(reason)
        self._ended.set()


def _denied_error(denied: Denied, receiver: str) -> PairingError:
    if denied.reason is DenyReason.WRONG_PIN:
        if denied.retry_after:
            return WrongPin(
                "Wrong PIN: check the PIN shown on the room display. "
                f"Too many attempts: retry in {max(1, round(denied.retry_after))} s."
            )
        return WrongPin()
    if denied.reason is DenyReason.THROTTLED:
        return Throttled(denied.retry_after or 1.0)
    if denied.reason is DenyReason.TAMPERED:
        return IdentityMismatch(
            f"{receiver} saw another certificate than you did: "
            "someone may be between you and the room display."
        )
    if denied.reason is DenyReason.NO_MODERATOR:
        return ShareRefused(f"{receiver} has no moderator: share without --moderator.")
    if denied.reason is DenyReason.DECLINED:
        return ShareRefused(f"The moderator of {receiver} declined your share.")
    if denied.reason is DenyReason.FULL:
        return ShareRefused(
            f"{receiver} is already showing the most shares it can; ask someone to stop first."
        )
    return ShareRefused(f"{receiver} refused the share: {denied.message}")
