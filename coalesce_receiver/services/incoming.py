"""One incoming share on the receiver: pairing, offer/answer, media sinks, and its clean end.

Everything a sender does is confined to its own :class:`IncomingShare`: a malformed, oversized,
out-of-order or hostile message earns that sender an ``error`` (or ``denied``) and a close, is logged
at a limited rate, and never touches another share.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from aiortc import MediaStreamTrack, RTCIceServer, RTCSessionDescription

from coalesce_common import PROTOCOL_VERSION
from coalesce_common.errors import ControlRefused, IdentityMismatch, ProtocolError, WrongPin
from coalesce_common.logutil import RateLimitedLog
from coalesce_common.media.peer import new_peer_connection
from coalesce_common.media.receiving import SenderReport, sender_report
from coalesce_common.protocol import (
    Answer,
    Bye,
    Challenge,
    Denied,
    DenyReason,
    EndReason,
    Error,
    Hello,
    JoinDecision,
    MediaState,
    Message,
    Offer,
    Pair,
    Refused,
    Role,
    RoomControl,
    RoomState,
    SenderRole,
    SessionState,
    SignalingSession,
    Waiting,
    Welcome,
)
from coalesce_common.protocol import JoinRequest as JoinRequestMessage
from coalesce_common.protocol.pairing import PairingKey, ReceiverPairing
from coalesce_common.protocol.sdp import dtls_fingerprints
from coalesce_common.signaling import ChannelClosed, SignalingChannel
from coalesce_common.signaling.websocket import WebSocketChannel
from coalesce_receiver.models.room import JoinRequest, RoomModel, ShareView, Size
from coalesce_receiver.services import tile_needs
from coalesce_receiver.services.lip_sync import PictureClock
from coalesce_receiver.services.sink import TrackSink
from coalesce_receiver.services.sound_sink import SoundSink
from coalesce_receiver.services.speaker import RoomSpeaker
from coalesce_receiver.services.throttle import HelloThrottle, PinThrottle

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)


def peer_log() -> RateLimitedLog:
    """The log for what peers do wrong; one per receiver, so a flood says one line whoever floods."""
    return RateLimitedLog(logger)


SinkFactory = Callable[[MediaStreamTrack, str], TrackSink]
"""Makes the sink for a remote track of a kind (``TrackSink`` by default; tests and benchmarks pass their
own to observe frames through :meth:`TrackSink.on_frame` or a subclass)."""


ROOM_FULL_NOTICE_S = 8.0
"""How long the box says that a share was turned away (the room was full or locked, or the moderator
said no)."""
LOCKED_NOTICE = (
    "Someone tried to share, but this room is locked: unlock it in this display's settings (Ctrl+S) to let "
    "new shares in."
)


class _Refused(Exception):
    """Pairing was answered with ``denied``; the session ends without an error message."""


def show_briefly(model: RoomModel, notice: str) -> None:
    """Put ``notice`` over the shares for :data:`ROOM_FULL_NOTICE_S` (unless another replaces it)."""
    model.set_notice(notice)

    def clear() -> None:
        if model.notice == notice:
            model.set_notice(None)

    asyncio.get_running_loop().call_later(ROOM_FULL_NOTICE_S, clear)


class IncomingShare:
    """Serves one sender's signaling channel from hello to bye."""

    def __init__(
        self,
        channel: SignalingChannel,
        *,
        model: RoomModel,
        receiver_id: str,
        pin: Callable[[], str | None],
        throttle: PinThrottle,
        hellos: HelloThrottle,
        log: RateLimitedLog,
        max_shares: int,
        handshake_timeout: float,
        unique_name: Callable[[str], str],
        ice_servers: list[RTCIceServer] | None = None,
        moderated: bool = False,
        moderation_timeout: float = 120.0,
        moderator_pin: Callable[[], str | None] = lambda: None,
        on_join_request: Callable[[JoinRequest], None] = lambda request: None,
        on_decision: Callable[[str, bool], None] = lambda share_id, approve: None,
        on_room_control: Callable[[RoomControl], None] = lambda control: None,
        make_room: Callable[[str], Awaitable[bool]] | None = None,
        speaker: RoomSpeaker | None = None,
        room_state: Callable[[], RoomState] = RoomState,
        sink_factory: SinkFactory = TrackSink,
        counted_as: str | None = None,
        keep_lost: Callable[[str], bool] = lambda share_id: False,
        on_return: Callable[[str], None] = lambda share_id: None,
    ) -> None:
        self._channel = channel
        self._keep_lost = keep_lost  # True: the room keeps this lost share's tile for its return
        self._on_return = on_return  # a share came back in the place of this (older) one
        self._model = model
        self._receiver_id = receiver_id
        self._pin = pin
        self._throttle = throttle
        self._hellos = hellos
        self._log = log
        self._max_shares = max_shares
        self._handshake_timeout = handshake_timeout
        self._unique_name = unique_name
        self._ice_servers = ice_servers
        self._moderated = moderated
        self._moderation_timeout = moderation_timeout
        self._decision: asyncio.Future[bool] | None = None
        self._moderator_pin = moderator_pin
        self._on_join_request = on_join_request
        self._on_decision = on_decision
        self._on_room_control = on_room_control
        self._make_room = make_room  # None: a full room turns newcomers away
        self._speaker = speaker  # None: this room plays no sound
        self._room_state = room_state
        self._told_room: RoomState | None = None
        self.is_moderator = False
        self._dropped = asyncio.Event()
        self._drop_reason = EndReason.DROPPED_BY_ROOM
        self._session = SignalingSession(Role.RECEIVER)
        self._source = channel.peer_address
        # Whose wrong PINs and hellos this channel's count with: its own, or a group's (web guests, whom
        # the cloud admits by the dozen, all count as one, so that new identities buy no new guesses).
        self._counted_as = counted_as or self._source
        self._share_id = uuid.uuid4().hex[:12]
        self._pc: RTCPeerConnection | None = None
        self._sink_factory = sink_factory
        self._sinks: dict[str, TrackSink] = {}  # every offered section's sink, live or not
        self._sink_tasks: list[asyncio.Task[None]] = []
        self._has_sound = False  # the offer's sound section arrived (at most one is heard)
        self._media_failed = asyncio.Event()
        self._shown = False
        self.end: EndReason | None = None
        self._boxes: dict[str, Size | None] = {}  # tiles that changed, not yet told to the sender
        self._told: dict[str, Size | None] = {}  # what the sender was last told, per track
        self._tell_timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()  # tiles change on the GUI thread, which runs this loop
        self._background: set[asyncio.Task[None]] = set()

    @property
    def share_id(self) -> str:
        return self._share_id

    @property
    def peer_address(self) -> str:
        """Who is sharing: an IP address on the LAN, a device's bare JID through the cloud."""
        return self._source

    async def run(self) -> EndReason:
        """Serve the channel until the share ends; never raises for anything the peer does."""
        try:
            hello, key = await asyncio.wait_for(self._pair(), self._handshake_timeout)
            if isinstance(self._channel, WebSocketChannel):  # paired: never shed to admit a stranger
                self._channel.mark_authenticated()
            await self._admit(hello, key)
            await asyncio.wait_for(self._negotiate(key), self._handshake_timeout)
            for request in self._model.join_requests:  # a moderator arriving late sees who is waiting
                await self.tell_moderator(request)
            await self.tell_room(self._room_state())
            self.end = await self._serve()
        except _Refused:
            self.end = EndReason.REFUSED
        except ProtocolError as exc:
            self._log.warning(f"{self._source}:{exc.code}", "share from %s: %s", self._source, exc)
            await self._send_quietly(Error(code=exc.code, message=str(exc)))
            self.end = EndReason.PROTOCOL_ERROR
        except IdentityMismatch as exc:
            self._log.warning(f"{self._source}:tampered", "share from %s refused: %s", self._source, exc)
            await self._send_quietly(Error(code="tampered", message=str(exc)))
            self.end = EndReason.REFUSED
        except TimeoutError:
            self._log.warning(f"{self._source}:timeout", "share from %s: handshake timed out", self._source)
            await self._send_quietly(Error(code="timeout", message="the handshake took too long"))
            self.end = EndReason.PROTOCOL_ERROR
        except ChannelClosed:
            self.end = self.end or EndReason.CONNECTION_LOST
        except asyncio.CancelledError:
            self.end = EndReason.RECEIVER_SHUTDOWN
            await self._send_quietly(Bye(reason=EndReason.RECEIVER_SHUTDOWN))
            raise
        except Exception as exc:
            # The last resort: whatever this sender's input set off ends its session only, in one
            # rate-limited line (the traceback only at debug level: an attacker must not flood the log).
            self._log.log(
                logging.ERROR,
                f"{self._source}:internal",
                "share from %s failed unexpectedly (%s); ending that share",
                self._source,
                type(exc).__name__,
            )
            logger.debug("the unexpected failure of the share from %s", self._source, exc_info=True)
            await self._send_quietly(Error(code="internal", message="the receiver hit an internal error"))
            self.end = EndReason.PROTOCOL_ERROR
        finally:
            await self._cleanup()
        return self.end or EndReason.CONNECTION_LOST

    # -- pairing -----------------------------------------------------------------------------------

    async def _pair(self) -> tuple[Hello, PairingKey | None]:
        """Run hello → challenge → pair; return the hello and the key (None for an open room).

        Raises :class:`_Refused` once it has answered ``denied``.
        """
        hello = await self._expect(Hello)
        if (wait := self._hellos.admit(self._counted_as)) > 0:  # before any SPAKE2 or aiortc work
            # One line for every flooding source together: many addresses must not mean many lines.
            self._log.warning(
                "hello-rate", "refusing hellos that come too fast (from %s, perhaps others)", self._source
            )
            await self._deny(DenyReason.THROTTLED, "too many attempts from your address", wait)
        pin = self._pin()
        if hello.role is SenderRole.MODERATOR:
            pin = self._moderator_pin()
            if pin is None:
                await self._deny(DenyReason.NO_MODERATOR, f"{self._model.name} has no moderator")
            self.is_moderator = True
        if hello.v != PROTOCOL_VERSION:
            await self._deny(DenyReason.VERSION, f"this receiver speaks protocol v{PROTOCOL_VERSION}")
        if self._model.locked and not self.is_moderator:
            show_briefly(self._model, LOCKED_NOTICE)  # before the PIN: no name a stranger could write
            await self._deny(DenyReason.LOCKED, f"{self._model.name} is locked")
        if self._full() and not (hello.replace_oldest and self._make_room is not None):
            self._tell_room_full(None)  # before the PIN: no name a stranger could write on the screen
            await self._deny_full()
        if pin is not None and (wait := self._throttle.retry_after(self._counted_as)) > 0:
            await self._deny(DenyReason.THROTTLED, "too many wrong PINs", wait)
        pairing = ReceiverPairing(pin) if pin is not None else None
        await self._send(
            Challenge(
                v=PROTOCOL_VERSION,
                receiver_name=self._model.name,
                receiver_id=self._receiver_id,
                pin_required=pairing is not None,
                spake=pairing.message if pairing else None,
            )
        )
        pair = await self._expect(Pair)
        key: PairingKey | None = None
        if pairing is not None:
            if (wait := self._throttle.retry_after(self._counted_as)) > 0:  # another attempt failed meanwhile
                await self._deny(DenyReason.THROTTLED, "too many wrong PINs", wait)
            # No await from the check above to the verdict below: parallel attempts cannot slip between.
            try:
                key = pairing.verify(pair, self._channel.tls_fingerprint)
            except WrongPin:
                wait = self._throttle.failure(self._counted_as)
                self._log.warning(f"{self._source}:pin", "wrong PIN from %s", self._source)
                await self._deny(DenyReason.WRONG_PIN, "wrong PIN", wait or None)
            except IdentityMismatch as exc:
                self._log.warning(f"{self._source}:tampered", "pairing from %s: %s", self._source, exc)
                await self._deny(DenyReason.TAMPERED, str(exc))
            self._throttle.success(self._counted_as)
        return hello, key

    async def _admit(self, hello: Hello, key: PairingKey | None) -> None:
        """Wait for the moderator's yes in a moderated room, then welcome the sender and show its tile.

        A sender whose earlier share is still in the room (its connection lost, or not yet known to be)
        is coming back: it takes that share's tile, name and place, and is not asked about again."""
        returning = None if self.is_moderator else self._model.returning(hello.sender_id)
        name = returning.sender_name if returning is not None else self._unique_name(hello.sender_name)
        if returning is not None:
            confirm = key.receiver_confirm(self._channel.tls_fingerprint) if key else None
            await self._send(Welcome(share_id=self._share_id, confirm=confirm))
            self._model.give_back(
                returning.share_id, ShareView(self._share_id, name, sender_id=hello.sender_id)
            )
            self._shown = True
            logger.info(
                "share %s from %s is back as share %s", returning.share_id, self._source, self._share_id
            )
            self._on_return(returning.share_id)
            return
        if self._moderated and not self.is_moderator:
            self._decision = asyncio.get_running_loop().create_future()
            request = JoinRequest(self._share_id, name, self._source)
            await self._send(Waiting(seconds=self._moderation_timeout))  # the sender says so to its user
            self._model.add_join_request(request)
            self._on_join_request(request)
            try:
                approved = await self._await_decision(self._decision)
            finally:
                self._model.remove_join_request(self._share_id)
            if not approved:
                show_briefly(
                    self._model, f"{name}'s share was not let in: the moderator said no, or did not answer."
                )
                await self._deny(DenyReason.DECLINED, "the moderator declined the share")
        if self._full() and hello.replace_oldest and self._make_room is not None:
            await self._make_room(name)  # paired (the PIN was right): only now may it end another share
        if self._full():
            self._tell_room_full(name)  # paired: a name the room may show
            await self._deny_full()
        confirm = key.receiver_confirm(self._channel.tls_fingerprint) if key else None
        await self._send(Welcome(share_id=self._share_id, confirm=confirm))
        self._model.add_share(ShareView(self._share_id, name, sender_id=hello.sender_id))
        self._shown = True

    def _full(self) -> bool:
        return len(self._model.shares) >= self._max_shares

    async def _deny_full(self) -> NoReturn:
        message = f"{self._model.name} is already showing {self._max_shares} shares"
        await self._send(
            Denied(reason=DenyReason.FULL, message=message, replaceable=self._make_room is not None)
        )
        raise _Refused(DenyReason.FULL)

    def _tell_room_full(self, sender_name: str | None) -> None:
        """Say at the box, for a few seconds, that someone (``sender_name`` once paired) could not share
        because the room is full."""
        notice = (
            f"{sender_name or 'Someone'} wants to share, but the room already shows {self._max_shares} "
            f"share{'s' if self._max_shares != 1 else ''}: stop one (its ✕, or Ctrl+1…4) to make room."
        )
        show_briefly(self._model, notice)

    async def _await_decision(self, decision: asyncio.Future[bool]) -> bool:
        """The moderator's answer (no answer in time is a no), or :class:`ChannelClosed` as soon as the
        sender gives up (its Cancel), so the request leaves the moderator's queue at once."""
        receive: asyncio.Future[str | bytes] = asyncio.ensure_future(self._channel.recv())
        try:
            waiting: set[asyncio.Future[Any]] = {decision, receive}
            done, _ = await asyncio.wait(
                waiting, timeout=self._moderation_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if decision in done:
                return decision.result()
            if receive in done:
                message = self._session.receive(receive.result())  # a bye closes the session: ...
                raise ChannelClosed(f"the sender left while waiting ({message.TYPE})")  # ... or out-of-order
            return False
        finally:
            receive.cancel()
            await asyncio.gather(receive, return_exceptions=True)

    def decide(self, approve: bool) -> None:
        """The moderator's answer for this waiting sender."""
        if self._decision is not None and not self._decision.done():
            self._decision.set_result(approve)

    async def tell_moderator(self, request: JoinRequest) -> None:
        """Pass a join request on to this moderator's sender."""
        if self.is_moderator and self._session.state is SessionState.ACTIVE:
            await self._send_quietly(
                JoinRequestMessage(request_id=request.share_id, sender_name=request.sender_name)
            )

    async def tell_room(self, state: RoomState) -> None:
        """Tell this moderator's sender how the room looks now, if that changed since it was last told."""
        if self.is_moderator and self._session.state is SessionState.ACTIVE and state != self._told_room:
            self._told_room = state
            await self._send_quietly(state)

    @property
    def leaving(self) -> bool:
        """Dropped at the box (or replaced), and on its way out."""
        return self._dropped.is_set()

    def drop(self, reason: EndReason = EndReason.DROPPED_BY_ROOM) -> None:
        """End this share from the box (the room's controls, or a newcomer taking its place)."""
        self._drop_reason = reason
        self._dropped.set()

    async def _deny(self, reason: DenyReason, message: str, retry_after: float | None = None) -> NoReturn:
        await self._send(Denied(reason=reason, message=message, retry_after=retry_after))
        raise _Refused(reason)

    # -- media -------------------------------------------------------------------------------------

    async def _negotiate(self, key: PairingKey | None) -> None:
        offer = await self._expect(Offer)
        dtls_fingerprints(offer.sdp)  # refuse an offer without DTLS before touching aiortc
        if key is not None:
            key.verify_offer_mac(offer.sdp, offer.mac)
        pc = self._pc = new_peer_connection(self._ice_servers)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
            kind = offer.tracks.get(str(mid), "screen")
            if track.kind == "audio" or kind == "sound":
                self._hear(track, kind)
                return
            if kind in self._sinks:
                return  # two sections claim one kind: the first wins, the other is never shown
            sink = self._sinks[kind] = self._sink_factory(track, kind)
            sink.on_box = functools.partial(self._tile_changed, kind)
            sink.sender_report = self._report_of(track)
            self._sink_tasks.append(asyncio.ensure_future(sink.run()))  # shown once the sender says live

        @pc.on("connectionstatechange")
        def on_state() -> None:
            logger.debug("share %s: media %s", self._share_id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                self._media_failed.set()

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, AssertionError) as exc:
            raise ProtocolError(f"the SDP offer was rejected: {exc}", code="bad-sdp") from exc
        local_sdp = pc.localDescription.sdp
        mac = key.answer_mac(offer.sdp, local_sdp) if key else None
        await self._send(Answer(sdp=local_sdp, mac=mac))
        logger.info(
            "share %s from %s (%s) negotiated", self._share_id, self._source, sorted(offer.tracks.values())
        )

    def _hear(self, track: MediaStreamTrack, kind: str) -> None:
        """A share's sound: played while the room says this share is audible. Any other audio section (or
        a video one claiming to be the sound) is drained unheard: an unread remote track would queue its
        frames without end."""
        wanted = track.kind == "audio" and kind == "sound" and not self._has_sound
        if not wanted:
            self._log.warning(
                f"{self._source}:stray-audio",
                "share from %s: ignoring an unexpected %s section offered as %r",
                self._source,
                track.kind,
                kind,
            )
        self._has_sound = self._has_sound or wanted
        speaker = self._speaker if wanted else None
        sink = SoundSink(
            track,
            speaker,
            lambda: self._model.audible == self._share_id,
            report=self._report_of(track),
            picture=self._picture,
        )
        self._sink_tasks.append(asyncio.ensure_future(sink.run()))

    def _report_of(self, track: MediaStreamTrack) -> Callable[[], SenderReport | None] | None:
        """How to read the RTCP sender reports of the stream ``track`` comes in on (lip sync)."""
        transceivers = self._pc.getTransceivers() if self._pc is not None else []
        receiver = next((t.receiver for t in transceivers if t.receiver.track is track), None)
        return functools.partial(sender_report, receiver) if receiver is not None else None

    def _picture(self) -> PictureClock | None:
        """The timing of the share's main picture (its screen, else its camera), which its sound follows;
        ``None`` while neither has shown a timed frame (a section offered but not sent has none)."""
        for kind in ("screen", "camera"):
            sink = self._sinks.get(kind)
            if sink is not None and sink.picture.offset is not None:
                return sink.picture
        return None

    async def _serve(self) -> EndReason:
        """After the answer only ``bye`` and ``error`` are legal; wait for them or for media failure."""
        receive = asyncio.ensure_future(self._channel.recv())
        failed = asyncio.ensure_future(self._media_failed.wait())
        dropped = asyncio.ensure_future(self._dropped.wait())
        try:
            while True:
                done, _ = await asyncio.wait({receive, failed, dropped}, return_when=asyncio.FIRST_COMPLETED)
                if dropped in done:
                    await self._send_quietly(Bye(reason=self._drop_reason))
                    return self._drop_reason
                if failed in done:
                    await self._send_quietly(Bye(reason=EndReason.MEDIA_FAILED))
                    return EndReason.MEDIA_FAILED
                try:
                    message = self._session.receive(receive.result())
                except ChannelClosed:
                    return EndReason.CONNECTION_LOST
                except ControlRefused as exc:
                    self._log.warning(
                        f"{self._source}:refused", "share from %s: refused %s", self._source, exc
                    )
                    await self._send(self._session.refusal(exc))
                    receive = asyncio.ensure_future(self._channel.recv())
                    continue
                if isinstance(message, Bye):
                    logger.info("share %s ended by the sender (%s)", self._share_id, message.reason)
                    return message.reason
                if isinstance(message, Error):
                    logger.info(
                        "share %s ended by the sender with an error (%s)", self._share_id, message.code
                    )
                    return EndReason.PEER_ERROR
                if isinstance(message, JoinDecision):
                    if not self.is_moderator:
                        raise ProtocolError("only a moderator may decide on join requests", code="forbidden")
                    self._on_decision(message.request_id, message.approve)
                elif isinstance(message, MediaState):
                    self._show_media(message)
                elif isinstance(message, RoomControl):
                    await self._room_control(message)
                elif isinstance(message, Refused):
                    self._log.warning(
                        f"{self._source}:refused-us",
                        "share %s refused the room's %s (%s)",
                        self._share_id,
                        message.refused,
                        message.code,
                    )
                receive = asyncio.ensure_future(self._channel.recv())
        finally:
            for task in (receive, failed, dropped):
                task.cancel()
            await asyncio.gather(receive, failed, dropped, return_exceptions=True)

    async def _room_control(self, control: RoomControl) -> None:
        """A moderator's command, carried out; anyone else's, or one naming no tile, refused."""
        try:
            if not self.is_moderator:
                why = "only the room's moderator may change its layout"
                forbidden = ControlRefused(why, code="forbidden")
                forbidden.message_type = control.TYPE
                raise forbidden
            self._on_room_control(control)
        except ControlRefused as exc:
            self._log.warning(f"{self._source}:refused", "share from %s: refused %s", self._source, exc)
            await self._send(self._session.refusal(exc))
        else:
            logger.info("moderator %s: %s %s", self._share_id, control.command, control.tile or "")

    # -- receiver-driven quality ---------------------------------------------------------------------

    def _tile_changed(self, kind: str, box: Size | None) -> None:
        """A tile showing ``kind`` changed size (or went away): tell the sender once the layout settles."""
        self._boxes[kind] = box
        if self._tell_timer is not None:
            self._tell_timer.cancel()
        self._tell_timer = self._loop.call_later(tile_needs.DEBOUNCE_S, self._tell_sender)

    def _tell_sender(self) -> None:
        self._tell_timer = None
        changed = [(kind, box) for kind, box in self._boxes.items() if self._told.get(kind, ...) != box]
        self._boxes.clear()
        if not changed or self._session.state is not SessionState.ACTIVE:
            return
        for kind, box in changed:
            self._told[kind] = box
        task = asyncio.ensure_future(self._send_needs(changed))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_needs(self, changed: list[tuple[str, Size | None]]) -> None:
        for kind, box in changed:
            sink = self._sinks.get(kind)
            frame = (sink.width, sink.height) if sink is not None and sink.width and sink.height else None
            constraints = tile_needs.constraints_for(kind, box, frame=frame)
            logger.debug("share %s: asking for %s", self._share_id, constraints)
            await self._send_quietly(constraints)

    def _show_media(self, state: MediaState) -> None:
        """Show the sections the sender says are live, hide the others, and mark the share paused or not."""
        live = {"screen": state.screen, "camera": state.camera}
        for kind, sink in self._sinks.items():
            if live.get(kind, False):
                self._model.add_track(self._share_id, sink)
            else:
                self._model.remove_track(self._share_id, kind)
                sink.clear()  # shown again later, it must not flash the picture from before
        self._model.set_paused(self._share_id, state.paused)
        self._model.set_sound(self._share_id, state.sound and self._has_sound)
        if self._model.number_of(self._share_id) is None:
            # Waiting off screen (the room shows four): a thumbnail's worth until a tile shows it.
            for kind in self._sinks:
                if live.get(kind, False) and kind not in self._told:
                    self._tile_changed(kind, None)

    # -- plumbing ----------------------------------------------------------------------------------

    async def _expect(self, kind: type[M]) -> M:
        message = self._session.receive(await self._channel.recv())
        if isinstance(message, Bye | Error):
            raise ChannelClosed(f"the sender left during the handshake ({message.TYPE})")
        if not isinstance(message, kind):
            raise ProtocolError(f"expected {kind.TYPE!r}, got {message.TYPE!r}", code="out-of-order")
        return message

    async def _send(self, message: Message) -> None:
        await self._channel.send(self._session.send(message))

    async def _send_quietly(self, message: Message) -> None:
        with contextlib.suppress(ChannelClosed, ProtocolError):
            await self._send(message)

    async def _cleanup(self) -> None:
        if self._tell_timer is not None:
            self._tell_timer.cancel()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        lost = self.end in (EndReason.MEDIA_FAILED, EndReason.CONNECTION_LOST)
        if self._shown and not (lost and self._keep_lost(self._share_id)):
            self._model.remove_share(self._share_id)
        if self._pc is not None:
            await self._pc.close()
        for task in self._sink_tasks:
            task.cancel()
        await asyncio.gather(*self._sink_tasks, return_exceptions=True)
        self._session.close()
        try:
            await self._channel.aclose(self.end.value if self.end else "")
        except Exception:  # closing a broken channel must not hide why it ended
            logger.debug("closing the channel of share %s failed", self._share_id, exc_info=True)


def safe_name(name: str) -> str:
    """A sender name fit for display and file names: printable, trimmed, never empty."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:48]
    return cleaned or "Guest"
