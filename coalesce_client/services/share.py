"""One outgoing share: connect, pair with the PIN, negotiate WebRTC, stream, and end cleanly.

The sender verifies everything pairing vouches for: the receiver's TLS certificate (against the
fingerprint mDNS advertised, and through the PIN-keyed confirmation) and the DTLS fingerprint of the
answer. Errors are raised as the :mod:`coalesce_common.errors` types, whose messages are fit to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeVar

import av
from aiortc import MediaStreamTrack, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from coalesce_client.services.link_stats import LinkSampler, MediaRoute, ShareStats, last_report
from coalesce_common import PROTOCOL_VERSION
from coalesce_common.errors import (
    CoalesceError,
    ControlRefused,
    IdentityMismatch,
    MediaError,
    ModeratorDeclined,
    NoModerator,
    PairingError,
    ProtocolError,
    RoomFull,
    RoomLocked,
    ShareRefused,
    SignalingError,
    SoundUnavailable,
    Throttled,
    WrongPin,
)
from coalesce_common.logutil import RateLimitedLog
from coalesce_common.media.capture import CameraSource, CaptureSource, ScreenSource, list_monitors
from coalesce_common.media.encoding import prefer_codec
from coalesce_common.media.ice import offered_addresses
from coalesce_common.media.limits import StreamLimits
from coalesce_common.media.peer import new_peer_connection
from coalesce_common.media.sound import SoundTrack, open_system_sound
from coalesce_common.media.tracks import CaptureTrack, ConnectionTrack
from coalesce_common.protocol import (
    Answer,
    Bye,
    Challenge,
    Constraints,
    Denied,
    DenyReason,
    EndReason,
    Error,
    Hello,
    JoinDecision,
    JoinRequest,
    MediaState,
    Message,
    Offer,
    Pair,
    Refused,
    Role,
    RoomCommand,
    RoomControl,
    RoomState,
    SenderRole,
    SessionState,
    SignalingSession,
    Waiting,
    Welcome,
)
from coalesce_common.protocol.pairing import PairingKey, SenderPairing
from coalesce_common.signaling import ChannelClosed, SignalingChannel
from coalesce_common.signaling.websocket import connect
from coalesce_common.tls import normalise_fingerprint

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)
N = TypeVar("N", bound=Message)

PinProvider = Callable[[str], Awaitable[str | None]]
"""Asked for the PIN with the receiver's name when the receiver needs one; ``None`` cancels."""
JoinRequestHandler = Callable[[str], Awaitable[bool]]
"""Asked, as a moderator, whether the named sender may share; ``True`` lets it in."""
EndExplainer = Callable[[EndReason], Awaitable[EndReason]]
"""Asked, when a share ends by a failure, whether something else explains it (the cloud cut this device
off: media fails first, and "suspended by your administrator" is the truth); returns the reason to keep."""
UNEXPLAINED_ENDS: Final = frozenset(
    {EndReason.MEDIA_FAILED, EndReason.CONNECTION_LOST, EndReason.CLOUD_DISCONNECTED, EndReason.REFUSED}
)
"""The ends an :data:`EndExplainer` is asked about (``refused``: a reconnecting share whose login the cloud
refused, because an administrator cut the device off meanwhile)."""

COME_BACK_ENDS: Final = frozenset({EndReason.MEDIA_FAILED, EndReason.CONNECTION_LOST})
"""A room's ``bye`` with one of these reasons is a lost connection to this share, which reconnects (the
room's notice of it arrives when the link returns, over signaling that outlived the media: XMPP)."""
RECONNECT_FOR: Final = 120.0
"""Seconds a share whose connection was lost keeps trying to come back (the room keeps its tile as long)."""
RECONNECT_CONNECT: Final = 4.0
"""Seconds a reconnect attempt gives the connection to the room (or the cloud) before the next attempt:
short, because a connection begun while the link was down waits for TCP's ever longer SYN retries."""
RECONNECT_PAUSES: Final = (0.5, 1.0, 2.0)
"""Seconds between attempts (then the last, again): short, so a share is back soon after the link."""
LOST_PEER_CLOSE: Final = 2.0
"""Seconds the end of a share waits for lost connections' peer connections to finish closing (over a dead
link aioice retries the deletion of a TURN allocation for half a minute; they finish on their own)."""
MEDIA_SILENCE: Final = 6.0
"""Seconds without a receiver report from the room (RTCP; one about every second while media reaches it)
after which a share's connection counts as lost and it reconnects."""
NETWORK_POLL: Final = 1.0
"""Seconds between looks at this computer's addresses: one that changes (Wi-Fi to Ethernet, a VPN up)
reconnects the share at once, rather than when its media fails half a minute later."""
RELAY_WAIT: Final = 3.0
"""Seconds the offer waits for the relay search (``relay_finder``) by default, then leaves without it."""
ConnectionListener = Callable[[bool], None]
"""Told ``False`` when a share's connection is lost (it reconnects) and ``True`` when it is back."""


@dataclass(frozen=True)
class Relay:
    """The TURN relay a connection's media may use: its ICE servers, how media reaches it, for people
    (``over TLS through the eu relay``), and whether media goes only through it (``only``)."""

    ice_servers: list[RTCIceServer]
    path: str
    only: bool = False


RelayFinder = Callable[[], Awaitable[Relay | None]]
"""Looks for the relay of the next connection (each connection's network may differ): ``None`` when there
is none, or raises a :class:`CoalesceError` that fails the attempt (a share that cannot go without one)."""

SCREEN: Final = "screen"
CAMERA: Final = "camera"
SECTIONS: Final = (SCREEN, CAMERA)
"""The video sections every offer carries, in this order; a section without a source sends nothing."""
SOUND: Final = "sound"
"""The audio section every offer carries after them: what the computer plays, when the user shares it."""


class _Unchanged(enum.Enum):
    UNCHANGED = enum.auto()


UNCHANGED: Final = _Unchanged.UNCHANGED
"""For :meth:`Share.set_sources`: keep this source as it is."""


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
    replace_oldest: bool = False  # in a full room that allows it, take the oldest share's place
    sound: bool = False  # also share what this computer plays (never the microphone)
    sound_device: str | None = None  # the output whose sound is shared; None: the default output
    codec: str = "video/H264"  # offered first; the receiver may pick another it prefers
    reconnect_for: float = RECONNECT_FOR  # seconds to keep trying after the connection is lost; 0: end


class ShareState(enum.Enum):
    CONNECTING = "connecting"
    PAIRING = "pairing"
    WAITING_FOR_APPROVAL = "waiting-for-approval"  # a moderated room decides
    NEGOTIATING = "negotiating"
    SHARING = "sharing"
    RECONNECTING = "reconnecting"  # the connection was lost: pairing again with the same PIN
    ENDED = "ended"


ChannelFactory = Callable[[ShareTarget, float], Awaitable[SignalingChannel]]


async def _websocket_channel(target: ShareTarget, timeout: float) -> SignalingChannel:
    return await connect(target.host, target.port, timeout=timeout)


class Share:
    """Use as ``async with Share(target, options) as share: await share.wait_ended()``.

    While sharing, the media can be steered without ending the share: :meth:`pause` and :meth:`resume`,
    :meth:`set_sources` to show another screen or turn the camera on or off, :meth:`stats` for the link
    and :meth:`latest_frame` for previews. Every offer carries a screen and a camera section (see
    :data:`SECTIONS`), so none of these needs a renegotiation: a section's track is swapped or detached
    (``RTCRtpSender.replaceTrack``) and a ``media`` message tells the room which sections to show.
    """

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
        on_waiting: Callable[[], None] | None = None,
        relay_path: str = "",
        explain_end: EndExplainer | None = None,
        on_connection: ConnectionListener | None = None,
        relay_finder: RelayFinder | None = None,
        relay_wait: float | None = RELAY_WAIT,
    ) -> None:
        self.target = target
        # Looked for again at each connection (a LAN share's cloud relay; a remote share's ladder), while
        # the channel opens and the pairing runs; the offer waits for it up to relay_wait (None: no bound).
        self._relay_finder = relay_finder
        self._relay_wait = relay_wait
        self._relay_search: asyncio.Future[Relay | None] | None = None
        self._on_connection = on_connection
        self._pin_used: str | None = None  # the PIN that paired: a reconnect never asks the user again
        self.relay_path = relay_path
        """How relayed media reaches the relay, for people ("over TLS through the local relay"); "" on the
        LAN."""
        self._explain_end = explain_end
        self.options = options
        self._pin_provider = pin_provider
        self._on_waiting = on_waiting
        self._channel_factory = channel_factory
        self._ice_servers = ice_servers
        self._relay_only = relay_only
        self._on_join_request = on_join_request
        self._on_room: Callable[[RoomState], None] | None = None
        self._on_refused: Callable[[str], None] | None = None
        self.room: RoomState | None = None
        """How the room looks, for a moderator (``room`` messages); ``None`` until the room says."""
        self._session = SignalingSession(Role.SENDER)
        self._channel: SignalingChannel | None = None
        self._pc: RTCPeerConnection | None = None
        self._tracks: dict[str, CaptureTrack] = {}  # section -> its track (parked when the section is off)
        self._limits: dict[str, StreamLimits] = {}  # section -> what the room's tile for it needs
        self._peer_log = RateLimitedLog(logger)  # the room decides how often these would come
        self._senders: dict[str, RTCRtpSender] = {}  # section -> its RTP sender
        self._sound = SoundTrack(None)  # sends only while attached to the sound section
        self._sound_sender: RTCRtpSender | None = None
        self._holds: dict[int, ConnectionTrack] = {}  # id(track) -> this connection's hold on it
        self._closing: set[asyncio.Future[None]] = set()  # lost connections' peer connections, closing
        self._first_route = (ice_servers, relay_only, relay_path)  # before any relay search
        self.sound_problem: str | None = None
        """Why this computer's sound is not shared although it was asked for (``None``: it is, or was not
        asked for); the screen is shared all the same."""
        self._paused = False
        self._media_lock = asyncio.Lock()
        self._sampler = LinkSampler()
        self._watch: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._ended = asyncio.Event()
        self.state = ShareState.CONNECTING
        self.end_reason: EndReason | None = None
        self.receiver_name = target.name or target.label
        self.share_id = ""
        self.sender_id = uuid.uuid4().hex[:16]

    # -- public ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, pair and negotiate; return once media is connected. Cleans up if anything fails."""
        try:
            await self._start()
        except BaseException:
            await self._teardown(EndReason.FAILED)
            raise

    async def wait_ended(self) -> EndReason:
        """Wait until the share ends (stopped here, by the receiver, or by a failure); return why."""
        await self._ended.wait()
        assert self.end_reason is not None  # set before _ended
        return self.end_reason

    async def stop(self, reason: EndReason = EndReason.STOPPED) -> None:
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

    # -- media while sharing -------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def sources(self) -> dict[str, CaptureSource]:
        """The live capture source of each section that has one (``"screen"``, ``"camera"``)."""
        return {section: source for section in SECTIONS if (source := self._source(section)) is not None}

    async def pause(self) -> None:
        """Stop sending new pictures (the room keeps the last one and shows the share as paused)."""
        async with self._media_lock:
            if self._paused:
                return
            self._paused = True
            for sender in self._senders.values():
                sender.replaceTrack(None)
            if self._sound_sender is not None:
                self._sound_sender.replaceTrack(None)
            await self._announce_media()

    async def resume(self) -> None:
        """Send pictures again after :meth:`pause`."""
        async with self._media_lock:
            if not self._paused:
                return
            self._paused = False
            self._attach_tracks()
            await self._announce_media()

    async def set_sources(
        self,
        *,
        screen: int | _Unchanged | None = UNCHANGED,
        camera: str | int | _Unchanged | None = UNCHANGED,
    ) -> None:
        """Share another screen (``None``: no screen) and/or camera (``None``: none) without ending the share.

        Raises :class:`MediaError` (and changes nothing) when the screen does not exist or nothing would be
        left to share. Before :meth:`start` it only changes what :meth:`start` will capture.
        """
        new_screen = self.options.screen if isinstance(screen, _Unchanged) else screen
        new_camera = self.options.camera if isinstance(camera, _Unchanged) else camera
        async with self._media_lock:
            wanted = dataclasses.replace(self.options, screen=new_screen, camera=new_camera)
            if wanted == self.options:
                return
            if self._pc is None:
                await _check_sources(wanted)
                self.options = wanted
                return
            if self.state is ShareState.ENDED:
                raise MediaError("The share has ended: start a new one.")
            opened = await _open_sources(wanted, changed_from=self.options)
            self.options = wanted
            for section in SECTIONS:
                if section in opened:
                    await self._switch(section, opened[section])
                elif _wanted_none(wanted, section):
                    await self._detach(section)
            await self._announce_media()

    async def set_sound(self, on: bool) -> None:
        """Share this computer's sound, or stop sharing it, without ending the share.

        Raises :class:`SoundUnavailable` (and shares none) when it cannot be captured here. Before
        :meth:`start` it only changes what :meth:`start` will do.
        """
        async with self._media_lock:
            self.options = dataclasses.replace(self.options, sound=on)
            if self._pc is None:
                return
            if on and not self.sound:
                await self._open_sound()
                if self.sound_problem is not None:
                    raise SoundUnavailable(self.sound_problem)
            elif not on and (previous := self._sound.switch_capture(None)) is not None:
                previous.close()
                await asyncio.to_thread(previous.join, 2.0)
            if not self._paused and self._sound_sender is not None:
                self._sound_sender.replaceTrack(self._hold(self._sound) if self.sound else None)
            await self._announce_media()

    def set_sound_volume(self, volume: float) -> None:
        """How loud this share's sound is, 0 to 1, before it is sent (the room's own volume comes after)."""
        self._sound.volume = min(1.0, max(0.0, volume))

    def watch_room(
        self, on_room: Callable[[RoomState], None] | None, on_refused: Callable[[str], None] | None = None
    ) -> None:
        """As the room's moderator: call ``on_room`` with each new :attr:`room` (at once with the one
        known), and ``on_refused`` with the room's reason when it did not carry out a command."""
        self._on_room, self._on_refused = on_room, on_refused
        if on_room is not None and self.room is not None:
            on_room(self.room)

    async def control_room(self, command: RoomCommand, tile: int = 0, other: int = 0) -> None:
        """As the room's moderator: spotlight, swap or stop numbered tiles, or go back to the grid.

        What the room did shows in the next :attr:`room`; a refusal reaches ``on_refused``. Raises
        :class:`ProtocolError` if the share is not running.
        """
        if self._channel is None or self._session.state is not SessionState.ACTIVE:
            raise ProtocolError("the share is not running: nothing to steer yet", code="not-running")
        await self._send(RoomControl(command=command, tile=tile, other=other))

    async def stats(self) -> ShareStats:
        """The link as it is now; see :class:`~coalesce_client.services.link_stats.ShareStats`."""
        if self._pc is None:
            return ShareStats()
        sources = self.sources
        main = SCREEN if SCREEN in sources else CAMERA
        stats = await self._sampler.sample(
            self._pc,
            list(self._senders.values()),
            sources,
            main=sources.get(main),
            main_frame=self.latest_frame(main),
            paused=self._paused,
        )
        if stats.route is MediaRoute.RELAYED and self.relay_path:
            stats = dataclasses.replace(stats, relay=self.relay_path)
        return stats

    def latest_frame(self, section: str) -> av.VideoFrame | None:
        """The picture last sent from ``section`` (``"screen"``, ``"camera"``), for previews."""
        track = self._tracks.get(section)
        return track.last_frame if track is not None and track.source is not None else None

    # -- steps -------------------------------------------------------------------------------------

    async def _start(self) -> None:
        opts = self.options
        await self._look_for_relay()
        # a missing screen or camera is said before any PIN attempt is spent
        for section, source in (await _open_sources(opts)).items():
            self._tracks[section] = CaptureTrack(source)  # limits come later, from the room
        if opts.sound:
            await self._open_sound()
        self._channel = await self._channel_factory(self.target, opts.connect_timeout)
        if self.target.fingerprint and normalise_fingerprint(
            self.target.fingerprint
        ) != normalise_fingerprint(self._channel.tls_fingerprint):
            raise IdentityMismatch(
                f"{self.target.label} presented a TLS certificate other than the one it advertises on this "
                "network: someone may be impersonating the room display. The share was not started."
            )
        self._set_state(ShareState.PAIRING)
        key = await self._pair()
        self._set_state(ShareState.NEGOTIATING)
        try:
            await asyncio.wait_for(self._negotiate(key), opts.media_timeout)
        except TimeoutError as exc:
            raise MediaError(
                f"The media connection to {self.receiver_name} did not come up within "
                f"{opts.media_timeout:g} s: the network may have dropped, or it blocks media between you. "
                "Share again."
            ) from exc
        self._set_state(ShareState.SHARING)
        self._watch = asyncio.ensure_future(self._watch_session())
        self._spawn(self._watch_network())
        self._spawn(self._watch_media())
        logger.info("sharing to %s", self.receiver_name)

    async def _pair(self) -> PairingKey | None:
        """Hello to welcome, within the connect timeout plus a minute for typing the PIN, and, in a
        moderated room, as long as the room says it will take to decide (``waiting``)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.options.connect_timeout + 60) as deadline:
            key = await self._pair_steps(lambda seconds: deadline.reschedule(loop.time() + seconds + 10))
        return key

    async def _pair_steps(self, extend: Callable[[float], None]) -> PairingKey | None:
        assert self._channel is not None
        await self._send(
            Hello(
                v=PROTOCOL_VERSION,
                sender_name=self.options.sender_name[:64],
                sender_id=self.sender_id,
                role=SenderRole.MODERATOR if self.options.moderator else SenderRole.PRESENTER,
                replace_oldest=self.options.replace_oldest,
            )
        )
        challenge = await self._expect(Challenge)
        self.receiver_name = challenge.receiver_name
        key: PairingKey | None = None
        if challenge.pin_required:
            pin = self._pin_used or self.options.pin
            if pin is None and self._pin_provider is not None:
                pin = await self._pin_provider(challenge.receiver_name)
            if pin is None:
                raise PairingError(
                    f"{challenge.receiver_name} needs a PIN: enter the PIN shown on the room display."
                )
            pair, key = SenderPairing(pin).finish(challenge.spake, self._channel.tls_fingerprint)
            self._pin_used = pin
        else:
            pair = Pair()
        await self._send(pair)
        welcome = await self._expect_either(Welcome, Waiting)
        if isinstance(welcome, Waiting):
            self._set_state(ShareState.WAITING_FOR_APPROVAL)
            extend(welcome.seconds)
            logger.info("waiting up to %g s for %s to let us in", welcome.seconds, self.receiver_name)
            if self._on_waiting is not None:
                self._on_waiting()
            welcome = await self._expect(Welcome)
        if key is not None:
            key.verify_receiver_confirm(welcome.confirm, self._channel.tls_fingerprint)
        self.share_id = welcome.share_id
        return key

    async def _negotiate(self, key: PairingKey | None) -> None:
        await self._take_relay()
        pc = self._pc = new_peer_connection(self._ice_servers, relay_only=self._relay_only)
        self._holds = {}  # a new connection: new holds on the same tracks
        transceivers = []
        for section in SECTIONS:
            track = self._tracks.get(section)
            held = self._hold(track)
            transceiver = pc.addTransceiver(held if held is not None else "video", direction="sendonly")
            prefer_codec(transceiver, mime=self.options.codec)
            self._senders[section] = transceiver.sender
            transceivers.append((section, transceiver))
        sound_held = self._hold(self._sound) if self.sound else None
        sound = pc.addTransceiver(sound_held if sound_held is not None else "audio", direction="sendonly")
        self._sound_sender = sound.sender
        transceivers.append((SOUND, sound))
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def on_state() -> None:
            logger.debug("media connection %s", pc.connectionState)
            if pc.connectionState == "connected":
                connected.set()
            elif pc.connectionState in ("failed", "closed"):
                connected.set()
                if self.state is ShareState.SHARING and pc is self._pc:
                    self._lost(EndReason.MEDIA_FAILED)

        await pc.setLocalDescription(await pc.createOffer())
        offer_sdp = pc.localDescription.sdp
        tracks = {str(t.mid): section for section, t in transceivers}
        await self._send(Offer(sdp=offer_sdp, tracks=tracks, mac=key.offer_mac(offer_sdp) if key else None))
        answer = await self._expect(Answer)
        if key is not None:
            key.verify_answer_mac(offer_sdp, answer.sdp, answer.mac)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, AssertionError) as exc:
            raise ProtocolError(f"the receiver's SDP answer was rejected: {exc}", code="bad-sdp") from exc
        await self._announce_media()  # the room shows no section before it knows which are live
        await connected.wait()
        if pc.connectionState != "connected":
            raise MediaError(
                f"The media connection to {self.receiver_name} failed: this network may block UDP between "
                "your computer and the room display."
            )

    async def _watch_session(self) -> None:
        """After negotiation: join requests (for a moderator), then a bye or an error ends the share."""
        assert self._channel is not None
        try:
            while True:
                try:
                    message = self._session.receive(await self._channel.recv())
                except ControlRefused as exc:
                    self._peer_log.warning(
                        "refused", "%s sent a request this app refused: %s", self.receiver_name, exc
                    )
                    await self._send(self._session.refusal(exc))
                    continue
                if isinstance(message, JoinRequest):
                    self._spawn(self._answer(message))
                    continue
                if isinstance(message, Constraints):
                    self._follow(message)
                    continue
                if isinstance(message, RoomState):
                    self.room = message
                    if self._on_room is not None:
                        self._on_room(message)
                    continue
                if isinstance(message, Refused):
                    self._peer_log.warning(
                        "refused-us",
                        "%s refused our %s: %s",
                        self.receiver_name,
                        message.refused,
                        message.code,
                    )
                    if message.refused == RoomControl.TYPE and self._on_refused is not None:
                        self._on_refused(f"{self.receiver_name} did not do that: {message.message}.")
                    continue
                if isinstance(message, Bye):
                    reason = message.reason
                    if reason in COME_BACK_ENDS:  # the room lost our media (and keeps our tile a while)
                        self._lost(reason)
                        return
                else:
                    reason = EndReason.PEER_ERROR
                    logger.warning("%s ended the share with an error: %s", self.receiver_name, message)
                break
        except ChannelClosed:
            self._lost(EndReason.CONNECTION_LOST)
            return
        except ProtocolError as exc:
            reason = EndReason.PROTOCOL_ERROR
            logger.warning("%s sent something unexpected: %s", self.receiver_name, exc)
        logger.info("the receiver ended the share (%s)", reason)
        await self._teardown(reason)

    # -- reconnecting ------------------------------------------------------------------------------

    def _lost(self, reason: EndReason) -> None:
        """The media or the signaling stopped: reconnect for ``reconnect_for`` seconds, or end."""
        if self.state is not ShareState.SHARING:
            return
        if self.options.reconnect_for <= 0:
            self._spawn(self._teardown(reason))
            return
        self._set_state(ShareState.RECONNECTING)
        logger.warning("the connection to %s was lost (%s): reconnecting", self.receiver_name, reason)
        if self._on_connection is not None:
            self._on_connection(False)
        self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        """Pair again (the same PIN) on a new channel and a new peer connection, the tracks unchanged,
        until it works or ``reconnect_for`` has passed; then the share ends, ``network-lost``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.reconnect_for
        pauses = iter(RECONNECT_PAUSES)
        attempt = 0
        while True:
            await self._drop_connection()
            attempt += 1
            try:
                async with asyncio.timeout(max(0.1, deadline - loop.time())):
                    await self._connect_again()
            except (OSError, TimeoutError, ChannelClosed, SignalingError, MediaError, ProtocolError) as exc:
                if loop.time() >= deadline:
                    logger.warning("%s did not come back: the share ends", self.receiver_name)
                    await self._drop_connection()
                    await self._teardown(EndReason.NETWORK_LOST)
                    return
                logger.info("reconnecting to %s, attempt %d: %s", self.receiver_name, attempt, exc)
                await asyncio.sleep(min(next(pauses, RECONNECT_PAUSES[-1]), max(0.0, deadline - loop.time())))
                continue
            except Throttled as exc:  # the room's pace for hellos: wait as it says
                await asyncio.sleep(
                    min(exc.retry_after or RECONNECT_PAUSES[-1], max(0.0, deadline - loop.time()))
                )
                continue
            except CoalesceError as exc:  # refused this time (the PIN changed, the room is locked, full)
                logger.warning("%s refused the reconnecting share: %s", self.receiver_name, exc)
                await self._drop_connection()
                await self._teardown(EndReason.REFUSED)
                return
            logger.info("reconnected to %s after %d attempt(s)", self.receiver_name, attempt)
            if self._on_connection is not None:
                self._on_connection(True)
            return

    async def _connect_again(self) -> None:
        opts = self.options
        self._session = SignalingSession(Role.SENDER)
        self._set_state(ShareState.RECONNECTING)
        await self._look_for_relay()
        self._channel = await self._channel_factory(self.target, min(opts.connect_timeout, RECONNECT_CONNECT))
        key = await self._pair()
        await asyncio.wait_for(self._negotiate(key), opts.media_timeout)
        self._set_state(ShareState.SHARING)
        self._watch = asyncio.ensure_future(self._watch_session())
        self._spawn(self._watch_network())
        self._spawn(self._watch_media())

    async def _watch_network(self) -> None:
        """Reconnect as soon as this computer's addresses change (the old path is gone, or a new one came)."""
        pc = self._pc
        before = await asyncio.to_thread(offered_addresses)
        while self.state is ShareState.SHARING and self._pc is pc:
            await asyncio.sleep(NETWORK_POLL)
            now = await asyncio.to_thread(offered_addresses)
            if now != before and self.state is ShareState.SHARING and self._pc is pc:
                logger.info("this computer's addresses changed (%s to %s)", sorted(before), sorted(now))
                self._lost(EndReason.CONNECTION_LOST)
                return

    async def _look_for_relay(self) -> None:
        """Start the relay's search for this connection (the offer needs it), ending an earlier one."""
        await self._end_relay_search()
        if self._relay_finder is not None:
            self._relay_search = asyncio.ensure_future(self._relay_finder())

    async def _end_relay_search(self) -> None:
        search, self._relay_search = self._relay_search, None
        if search is not None:
            search.cancel()
            await asyncio.gather(search, return_exceptions=True)

    async def _watch_media(self) -> None:
        """Reconnect when the room has sent no receiver report for :data:`MEDIA_SILENCE` seconds while this
        share sent it media: the link is gone, although ICE's consent checks would take half a minute to
        say so (and closing its TURN allocations over the dead link as long again)."""
        loop = asyncio.get_running_loop()
        pc = self._pc
        heard, latest = loop.time(), None
        while self.state is ShareState.SHARING and self._pc is pc:
            await asyncio.sleep(NETWORK_POLL)
            sending = self._sending()
            if self._paused or not sending:  # nothing sent, so nothing reported
                heard = loop.time()
                continue
            report = await last_report(sending)
            if report is not None and report != latest:
                heard, latest = loop.time(), report
            elif loop.time() - heard > MEDIA_SILENCE and self.state is ShareState.SHARING and self._pc is pc:
                logger.info("no report from %s for %g s", self.receiver_name, MEDIA_SILENCE)
                self._lost(EndReason.MEDIA_FAILED)
                return

    def _sending(self) -> list[RTCRtpSender]:
        """The RTP senders media goes out on now: a video section with a source (a parked one sends
        nothing), and the sound section while it is shared (silence included)."""
        sending = [
            sender
            for section, sender in self._senders.items()
            if sender.track is not None
            and (track := self._tracks.get(section)) is not None
            and track.source is not None
        ]
        if self._sound_sender is not None and self._sound_sender.track is not None:
            sending.append(self._sound_sender)
        return sending

    async def _take_relay(self) -> None:
        """Use the relay the search found, waiting for it at most ``relay_wait`` seconds."""
        search, self._relay_search = self._relay_search, None
        if search is None:
            return
        self._ice_servers, self._relay_only, self.relay_path = self._first_route  # not a lost one's relay
        try:
            found = await asyncio.wait_for(search, self._relay_wait)
        except TimeoutError:
            logger.info("the relay was not found in %g s: LAN only", self._relay_wait)
            return
        if found is not None:
            self._ice_servers, self.relay_path, self._relay_only = found.ice_servers, found.path, found.only
            logger.info("the relay is offered (%s)", self.relay_path)

    async def _drop_connection(self) -> None:
        """Close the peer connection and the channel of a lost connection; the capture goes on."""
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        self._watch = None
        pc, self._pc = self._pc, None
        if pc is not None:
            # The old senders take no more frames (the next connection gets them all); their holds on the
            # tracks (ConnectionTrack) end with them, the capture goes on.
            for sender in [*self._senders.values(), self._sound_sender]:
                if sender is not None:
                    sender.replaceTrack(None)
            closing = asyncio.ensure_future(pc.close())  # the new connection need not wait for its end
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        channel, self._channel = self._channel, None
        if channel is not None:  # broken, so its closing handshake would wait out its time-out: not here
            self._spawn(_close_quietly(channel))

    def _follow(self, constraints: Constraints) -> None:
        """Scale, pace and cap a section as the room's tile for it needs (see :mod:`~.media.limits`)."""
        limits = StreamLimits(
            max_width=constraints.max_width,
            max_height=constraints.max_height,
            max_fps=constraints.max_fps,
            max_bitrate=constraints.max_bitrate,
        )
        self._limits[constraints.track] = limits
        track = self._tracks.get(constraints.track)
        if track is not None:
            track.set_limits(limits)
            if constraints.keyframe:
                track.request_keyframe()
        logger.debug(
            "the room asks for %s at most %dx%d, %g fps, %d bit/s",
            constraints.track,
            limits.max_width,
            limits.max_height,
            limits.max_fps,
            limits.max_bitrate,
        )

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

    # -- media plumbing ------------------------------------------------------------------------------

    def _attach_tracks(self) -> None:
        for section, sender in self._senders.items():
            sender.replaceTrack(self._hold(self._tracks.get(section)))
        if self._sound_sender is not None:
            self._sound_sender.replaceTrack(self._hold(self._sound) if self.sound else None)

    def _hold(self, track: MediaStreamTrack | None) -> ConnectionTrack | None:
        """This connection's hold on ``track`` (made at its first use), which aiortc may stop at will."""
        if track is None:
            return None
        held = self._holds.get(id(track))
        if held is None or held.held is not track:
            held = self._holds[id(track)] = ConnectionTrack(track)
        return held

    @property
    def sound(self) -> bool:
        """Whether this computer's sound is being shared."""
        return self._sound.capture is not None

    async def _open_sound(self) -> None:
        """Start capturing the sound; when that cannot be done, say why in :attr:`sound_problem`."""
        try:
            capture = await asyncio.to_thread(open_system_sound, self.options.sound_device)
        except SoundUnavailable as exc:
            self.sound_problem = str(exc)
            logger.info("sharing without sound: %s", exc)
            return
        self.sound_problem = None
        previous = self._sound.switch_capture(capture)
        if previous is not None:
            previous.close()
            await asyncio.to_thread(previous.join, 2.0)

    def _source(self, section: str) -> CaptureSource | None:
        track = self._tracks.get(section)
        return track.source if track is not None else None

    async def _switch(self, section: str, source: CaptureSource) -> None:
        """Feed ``section`` from ``source``: its track goes on (timestamps continue) if it has one."""
        track = self._tracks.get(section)
        if track is None:
            track = self._tracks[section] = CaptureTrack(source)
            track.set_limits(self._limits.get(section))
            if not self._paused:
                self._senders[section].replaceTrack(self._hold(track))
            return
        previous = track.switch_source(source)
        if previous is not None:
            await previous.aclose()

    async def _detach(self, section: str) -> None:
        """Send nothing from ``section``: its track is parked (never ended: aiortc's sender would stop)."""
        track = self._tracks.get(section)
        if track is not None and (previous := track.switch_source(None)) is not None:
            await previous.aclose()

    async def _announce_media(self) -> None:
        with contextlib.suppress(ChannelClosed, ProtocolError):  # a closing session ends the share anyway
            await self._send(
                MediaState(
                    screen=self._source(SCREEN) is not None,
                    camera=self._source(CAMERA) is not None,
                    paused=self._paused,
                    sound=self.sound,
                )
            )

    # -- plumbing ----------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _expect(self, kind: type[M]) -> M:
        return await self._expect_either(kind, kind)

    async def _expect_either(self, kind: type[M], other: type[N]) -> M | N:
        assert self._channel is not None
        message = self._session.receive(await self._channel.recv())
        if isinstance(message, Denied):
            raise _denied_error(message, self.receiver_name, moderator=self.options.moderator)
        if isinstance(message, Error):
            if message.code == "tampered":
                raise IdentityMismatch(message.message)
            raise ShareRefused(f"{self.receiver_name} refused the share: {message.message}")
        if isinstance(message, Bye):
            said = message.reason.describe(self.receiver_name)
            raise ShareRefused(said or f"{self.receiver_name} ended the session.")
        if not isinstance(message, (kind, other)):
            raise ProtocolError(f"expected {kind.TYPE!r}, got {message.TYPE!r}", code="out-of-order")
        return message

    async def _send(self, message: Message) -> None:
        assert self._channel is not None
        await self._channel.send(self._session.send(message))

    def _set_state(self, state: ShareState) -> None:
        if state is not self.state:
            logger.debug("share %s -> %s", self.state.value, state.value)
            self.state = state

    async def _teardown(self, reason: EndReason) -> None:
        if self.state is ShareState.ENDED:
            await self._ended.wait()
            return
        self._set_state(ShareState.ENDED)
        await self._end_relay_search()
        if self._explain_end is not None and reason in UNEXPLAINED_ENDS:
            reason = await self._explain_end(reason)
        self.end_reason = reason
        current = asyncio.current_task()
        if self._watch is not None and self._watch is not current:
            self._watch.cancel()
        background = [task for task in self._background if task is not current]
        for task in background:
            task.cancel()
        tracks = list(self._tracks.values())
        # Capture threads are joined off the loop first, so the tracks' own stop (which aiortc also calls
        # when the connection closes) finds them ended and returns at once.
        await asyncio.gather(*(source.aclose() for source in self.sources.values()))
        for track in tracks:
            track.stop()
        capture = self._sound.capture
        self._sound.stop()  # its capture thread ends after its current 20 ms read
        if capture is not None:
            await asyncio.to_thread(capture.join, 2.0)
        if self._pc is not None:  # closed like a lost one: over a dead link it would take half a minute
            closing = asyncio.ensure_future(self._pc.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        if self._channel is not None:
            await self._channel.aclose(reason)
        await asyncio.gather(*background, return_exceptions=True)
        if self._closing:  # peer connections' ends: never cut short (aioice would leave tasks behind)
            _, slow = await asyncio.wait(self._closing, timeout=LOST_PEER_CLOSE)
            if slow:
                logger.info("%d lost media connection(s) still closing: left to finish", len(slow))
        self._ended.set()


async def _close_quietly(channel: SignalingChannel) -> None:
    with contextlib.suppress(Exception):  # it is broken: that is why it is being closed
        await channel.aclose(EndReason.CONNECTION_LOST)


def _wanted_none(options: ShareOptions, section: str) -> bool:
    """Whether ``options`` share nothing in ``section``."""
    return (options.screen if section == SCREEN else options.camera) is None


async def _check_sources(options: ShareOptions) -> None:
    """Raise :class:`MediaError` when ``options`` name a screen that does not exist, or nothing at all."""
    if options.screen is None and options.camera is None:
        raise MediaError("Nothing to share: choose a screen, a camera, or both.")
    if options.screen is not None and options.screen != 0:
        monitors = await asyncio.to_thread(list_monitors, options.display)
        if not any(m["index"] == options.screen for m in monitors):
            sizes = ", ".join(f"{m['index']} ({m['width']}x{m['height']})" for m in monitors) or "none"
            raise MediaError(f"There is no screen {options.screen} to share; screens here: {sizes}.")


async def _open_sources(
    options: ShareOptions, *, changed_from: ShareOptions | None = None
) -> dict[str, CaptureSource]:
    """New (not yet started) sources for the sections of ``options`` that differ from ``changed_from``."""
    await _check_sources(options)
    sources: dict[str, CaptureSource] = {}
    if options.screen is not None and (changed_from is None or changed_from.screen != options.screen):
        sources[SCREEN] = ScreenSource(options.screen, fps=options.fps, display=options.display)
    if options.camera is not None and (changed_from is None or changed_from.camera != options.camera):
        sources[CAMERA] = CameraSource(options.camera)
    return sources


def _denied_error(denied: Denied, receiver: str, *, moderator: bool) -> PairingError:
    if denied.reason is DenyReason.WRONG_PIN:
        return WrongPin(retry_after=denied.retry_after, moderator=moderator)
    if denied.reason is DenyReason.THROTTLED:
        return Throttled(denied.retry_after or 1.0)
    if denied.reason is DenyReason.TAMPERED:
        return IdentityMismatch(
            f"{receiver} saw another certificate than you did: "
            "someone may be between you and the room display."
        )
    if denied.reason is DenyReason.NO_MODERATOR:
        return NoModerator(receiver)
    if denied.reason is DenyReason.DECLINED:
        return ModeratorDeclined(receiver)
    if denied.reason is DenyReason.FULL:
        return RoomFull(receiver, replaceable=denied.replaceable)
    if denied.reason is DenyReason.LOCKED:
        return RoomLocked(receiver)
    if denied.reason is DenyReason.VERSION:
        return ShareRefused(
            f"{receiver} runs another version of Coalesce: update this app or the room display, then retry."
        )
    return ShareRefused(f"{receiver} refused the share: {denied.message}")
