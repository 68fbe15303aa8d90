"""The receiver service: TLS signaling server, mDNS announcement, incoming shares, stats and snapshots.

It runs the same with or without a window: the Qt display (``coalesce_receiver.ui``) only reads
:attr:`Receiver.model`.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import hmac
import logging
import os
import secrets
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiortc import RTCIceServer

from coalesce_common.discovery import ReceiverInfo, ReceiverPublisher, local_ipv4_addresses
from coalesce_common.errors import CoalesceError
from coalesce_common.protocol import AccessMode, EndReason
from coalesce_common.protocol.pin import is_valid_pin, random_pin
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.admission import DEFAULT_PER_SOURCE
from coalesce_common.signaling.websocket import (
    KEEPALIVE,
    WebSocketChannel,
    WebSocketServer,
    connection_limits,
)
from coalesce_common.tls import TlsIdentity, load_or_create_identity
from coalesce_receiver.models.room import MAX_SHOWN_SHARES, JoinRequest, RoomModel, SettingsOutcome
from coalesce_receiver.services import room_control
from coalesce_receiver.services.incoming import IncomingShare, SinkFactory, peer_log, safe_name, show_briefly
from coalesce_receiver.services.sink import SnapshotWriter, StatsWriter, TrackSink
from coalesce_receiver.services.speaker import RoomSpeaker
from coalesce_receiver.services.throttle import HelloThrottle, PinThrottle

logger = logging.getLogger(__name__)

DEFAULT_PORT = 443
FALLBACK_PORT = 8443


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "coalesce" / "receiver"


class ReceiverStartError(CoalesceError):
    """The receiver could not start (no port to listen on, unusable data folder)."""


REPLACE_WAIT_S = 5.0
"""Seconds a newcomer waits for the share it replaces to leave the screen (its bye, its cleanup)."""


RECONNECT_WINDOW = 120.0
"""Seconds the room keeps the tile of a share whose connection was lost ("Reconnecting…"): as long as the
sender keeps trying (``ShareOptions.reconnect_for``)."""


@dataclass
class ReceiverConfig:
    name: str
    pin: str | None = None
    host: str | None = None  # None: every interface
    port: int = DEFAULT_PORT
    fallback_port: int | None = FALLBACK_PORT
    data_dir: Path = field(default_factory=default_data_dir)
    stats_file: Path | None = None
    snapshot_dir: Path | None = None
    mdns: bool = True
    mdns_interfaces: list[str] | None = None
    max_shares: int = MAX_SHOWN_SHARES
    handshake_timeout: float = 15.0
    keepalive: float = KEEPALIVE  # seconds: how soon a sender that vanished without a word is dropped
    max_connections: int | None = None  # signaling connections in all; None: from the open-file limit
    max_connections_per_source: int = DEFAULT_PER_SOURCE
    moderated: bool = False  # a join request must be approved at the box before a share appears
    rotate_pin: bool = False  # a new random PIN for every meeting (when the room falls idle, new meeting ID)
    admin_password: str | None = field(default=None, repr=False)  # unlocks PIN changes at the box
    moderator_pin: str | None = field(default=None, repr=False)  # senders pairing with it moderate the room
    replace_when_full: bool = True  # a newcomer to a full room may take the oldest presenter's place
    sound: bool = True  # play the audible share's sound
    sound_output: str | None = None  # the output device it plays on (its name or part of it); None: default
    reconnect_window: float = RECONNECT_WINDOW  # seconds a lost share's tile waits for its sender; 0: none


class Receiver:
    """A running receiver. Use as ``async with Receiver(config) as receiver: ...``.

    It is also the room's :class:`~coalesce_receiver.models.room.RoomActions`: hand it to the window.
    ``sink_factory`` makes the sink of every incoming track (observe frames with ``TrackSink.on_frame``).
    """

    def __init__(
        self,
        config: ReceiverConfig,
        *,
        throttle: PinThrottle | None = None,
        hello_throttle: HelloThrottle | None = None,
        sink_factory: SinkFactory = TrackSink,
    ) -> None:
        self.config = config
        self.throttle = throttle or PinThrottle()
        self.hello_throttle = hello_throttle or HelloThrottle()
        self._peer_log = peer_log()
        self._sink_factory = sink_factory
        self.model = RoomModel(config.name, pin_required=config.pin is not None)
        self.model.pin = config.pin
        self.model.pin_rotation = config.rotate_pin
        self.model.moderated = config.moderated
        self._pin = config.pin
        self._rotate = config.rotate_pin
        self._admin = _AdminSecret(config.admin_password) if config.admin_password else None
        self._was_busy = False
        self.model.subscribe(self._on_model_change)
        self.identity: TlsIdentity | None = None
        self.receiver_id = ""
        self._server: WebSocketServer | None = None
        self._publisher: ReceiverPublisher | None = None
        self._publish_task: asyncio.Task[None] | None = None
        self._writers: list[StatsWriter | SnapshotWriter] = []
        self._shares: dict[asyncio.Task[object], IncomingShare] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._lost: dict[str, asyncio.TimerHandle] = {}  # share id -> when its kept tile goes
        self._lan_relay: list[RTCIceServer] = []  # the cloud's TURN, offered to LAN shares too
        self._closed = False
        self.speaker = RoomSpeaker(config.sound_output) if config.sound else None
        """The room's sound output (opened when a share's sound first plays)."""

    @property
    def port(self) -> int:
        return self.model.port

    async def start(self) -> None:
        config = self.config
        try:
            self.identity = await asyncio.to_thread(load_or_create_identity, config.data_dir, config.name)
        except OSError as exc:
            raise ReceiverStartError(f"cannot use the data folder {config.data_dir}: {exc}") from exc
        self.receiver_id = await asyncio.to_thread(_receiver_id, config.data_dir)
        self.model.fingerprint = self.identity.fingerprint
        limits = connection_limits(config.max_connections, config.max_connections_per_source)
        self._server = WebSocketServer(
            self.identity, self._on_channel, keepalive=config.keepalive, limits=limits
        )
        port = await self._listen(self._server)
        addresses = [config.host] if config.host not in (None, "", "0.0.0.0") else local_ipv4_addresses()
        self.model.set_endpoint([a for a in addresses if a], port)
        if config.stats_file is not None:
            self._writers.append(StatsWriter(config.stats_file, self.model, speaker=self.speaker))
        if config.snapshot_dir is not None:
            self._writers.append(SnapshotWriter(config.snapshot_dir, self.model))
        for writer in self._writers:
            writer.start()
        if config.mdns:
            # Publishing probes the network for ~1.5 s; the receiver already serves meanwhile.
            self._publish_task = asyncio.ensure_future(self._publish())
        logger.info(
            "receiver %r listening on port %d (PIN %s)",
            config.name,
            port,
            "required" if config.pin else "not required",
        )

    async def _listen(self, server: WebSocketServer) -> int:
        config = self.config
        try:
            await server.start(config.host, config.port)
        except OSError as exc:
            if config.fallback_port is None or config.fallback_port == config.port:
                raise ReceiverStartError(
                    _bind_message(config.port, exc) + " Choose another one with --port."
                ) from exc
            logger.warning(
                "%s Using the fallback port %d instead.",
                _bind_message(config.port, exc),
                config.fallback_port,
            )
            try:
                await server.start(config.host, config.fallback_port)
            except OSError as exc2:
                raise ReceiverStartError(
                    _bind_message(config.fallback_port, exc2) + " Choose a free one with --port."
                ) from exc2
        return server.port

    def access_mode(self) -> AccessMode:
        """Who may share now: what mDNS announces and the room list shows."""
        if self.model.locked:
            return AccessMode.LOCKED
        if self._pin is None:
            return AccessMode.OPEN
        return AccessMode.MODERATED if self.config.moderated else AccessMode.PIN

    def _announcement(self) -> ReceiverInfo:
        assert self.identity is not None
        return ReceiverInfo(
            name=self.config.name,
            receiver_id=self.receiver_id,
            addresses=tuple(a for a in self.model.addresses if a.count(".") == 3),
            port=self.model.port,
            pin_required=self._pin is not None,
            fingerprint=self.identity.fingerprint,
            mode=self.access_mode(),
        )

    def _republish(self) -> None:
        """Announce the room's new PIN state or access mode over mDNS (in the background)."""
        publisher = self._publisher
        if publisher is None or self.identity is None or publisher.info == self._announcement():
            return

        async def update() -> None:
            try:
                await publisher.update(self._announcement())
            except Exception as exc:  # mDNS is a convenience: the room still works by address
                logger.warning("updating the mDNS announcement failed (%s)", exc)

        self._spawn(update())

    async def _publish(self) -> None:
        info = self._announcement()
        publisher = self._publisher = ReceiverPublisher(info, interfaces=self.config.mdns_interfaces)
        try:
            await publisher.start()
        except Exception as exc:  # mDNS is a convenience: the receiver still works by address
            logger.warning(
                "mDNS announcement failed (%s); senders can still use --to %s:%d",
                exc,
                self.model.addresses[0],
                self.model.port,
            )
            await publisher.aclose()

    async def _on_channel(self, channel: WebSocketChannel) -> None:
        await self.serve(channel)

    async def serve(
        self,
        channel: SignalingChannel,
        *,
        ice_servers: list[RTCIceServer] | None = None,
        counted_as: str | None = None,
        returns: bool = True,
    ) -> None:
        """Serve one sender's channel (LAN WebSocket or cloud XMPP) until its share ends. A LAN share gets
        the cloud's TURN relay too when the box is linked (:meth:`set_lan_relay`). ``counted_as``: whose
        wrong PINs the channel's count with, when not its own (every web guest's: one group). ``returns``:
        whether a lost share's tile waits for the sender to reconnect (a browser's page never does)."""
        if ice_servers is None:
            ice_servers = list(self._lan_relay)
        share = IncomingShare(
            channel,
            model=self.model,
            receiver_id=self.receiver_id,
            pin=lambda: self._pin,
            throttle=self.throttle,
            hellos=self.hello_throttle,
            log=self._peer_log,
            max_shares=self.config.max_shares,
            handshake_timeout=self.config.handshake_timeout,
            unique_name=self._unique_name,
            ice_servers=ice_servers,
            moderated=self.config.moderated,
            moderator_pin=lambda: self.config.moderator_pin,
            on_join_request=self._tell_moderators,
            on_decision=self.decide,
            on_room_control=functools.partial(room_control.carry_out, self.model, self),
            make_room=self.make_room if self.config.replace_when_full else None,
            speaker=self.speaker,
            counted_as=counted_as,
            room_state=functools.partial(room_control.room_state, self.model),
            sink_factory=self._sink_factory,
            keep_lost=self._keep_lost if returns else _never,
            on_return=self._returned,
        )
        task: asyncio.Task[object] = asyncio.ensure_future(share.run())
        self._shares[task] = share
        try:
            await asyncio.shield(task)
        finally:
            self._shares.pop(task, None)

    # -- the room's controls (RoomActions) ------------------------------------------------------------

    def _find(self, share_id: str) -> IncomingShare | None:
        return next((s for s in self._shares.values() if s.share_id == share_id), None)

    def decide(self, share_id: str, approve: bool) -> None:
        share = self._find(share_id)
        if share is not None:
            logger.info("moderator %s share %s", "approved" if approve else "declined", share_id)
            share.decide(approve)

    def _tell_moderators(self, request: JoinRequest) -> None:
        for share in self._shares.values():
            if share.is_moderator:
                self._spawn(share.tell_moderator(request))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def make_room(self, newcomer: str) -> bool:
        """End the oldest presenter's share so that ``newcomer`` (paired, in a full room) can take its place;
        False if every share is a moderator's. Returns once that share has left the screen."""
        shares = [self._find(view.share_id) for view in self.model.shares]
        oldest = next((s for s in shares if s is not None and not s.is_moderator and not s.leaving), None)
        if oldest is None:
            return False
        view = next(v for v in self.model.shares if v.share_id == oldest.share_id)
        logger.info("share %s replaced by a newcomer: the room was full", oldest.share_id)
        gone = asyncio.Event()
        unsubscribe = self.model.subscribe(lambda: gone.set() if view not in self.model.shares else None)
        try:
            oldest.drop(EndReason.REPLACED)
            async with asyncio.timeout(REPLACE_WAIT_S):
                await gone.wait()
        except TimeoutError:
            return False
        finally:
            unsubscribe()
        show_briefly(
            self.model, f"{newcomer} took the place of {view.sender_name}'s share: the room was full."
        )
        return True

    def drop_share(self, share_id: str) -> None:
        share = self._find(share_id)
        if share is not None:
            logger.info("share %s dropped at the box", share_id)
            share.drop()
        elif share_id in self._lost:  # a tile waiting for its sender: the room no longer wants it
            self._lost.pop(share_id).cancel()
            self.model.remove_share(share_id)

    def set_lan_relay(self, servers: list[RTCIceServer]) -> None:
        """TURN servers (the linked cloud's) that LAN shares may relay through: the way when UDP between a
        laptop and the box is blocked (client isolation on Wi-Fi) but both reach the relay."""
        self._lan_relay = list(servers)

    # -- shares whose connection was lost -------------------------------------------------------------

    def _keep_lost(self, share_id: str) -> bool:
        """Keep a lost share's tile, marked reconnecting, for ``reconnect_window``; False when not kept."""
        if self._closed or self.config.reconnect_window <= 0 or not self.model.hold_for_return(share_id):
            return False
        loop = asyncio.get_running_loop()
        self._lost[share_id] = loop.call_later(self.config.reconnect_window, self._forget_lost, share_id)
        logger.info(
            "share %s lost its connection: keeping its tile for %g s", share_id, self.config.reconnect_window
        )
        return True

    def _forget_lost(self, share_id: str) -> None:
        self._lost.pop(share_id, None)
        view = next((v for v in self.model.shares if v.share_id == share_id and v.reconnecting), None)
        if view is None:
            return
        self.model.remove_share(share_id)
        logger.info("share %s did not come back", share_id)
        show_briefly(
            self.model, f"{view.sender_name}'s share ended: the connection was lost and did not come back."
        )

    def _returned(self, old_share_id: str) -> None:
        """A share came back in ``old_share_id``'s place: end what is left of the old one."""
        timer = self._lost.pop(old_share_id, None)
        if timer is not None:
            timer.cancel()
        old = self._find(old_share_id)
        if old is not None:  # its connection's loss was not noticed here yet
            old.drop(EndReason.CONNECTION_LOST)

    def spotlight(self, share_id: str | None) -> None:
        if self.model.set_spotlight(share_id):
            logger.info("layout: %s", "grid" if share_id is None else f"share {share_id} in the spotlight")

    def swap(self, first: str, second: str) -> None:
        if self.model.swap(first, second):
            logger.info("layout: shares %s and %s swapped places", first, second)

    def move_pip(self) -> None:
        self.model.move_pip()

    def mute_sound(self, muted: bool) -> None:
        self.model.set_sound_muted(muted)
        logger.info("room sound %s", "muted" if muted else "on")

    def set_sound_volume(self, volume: float) -> None:
        self.model.set_sound_volume(volume)
        if self.speaker is not None:
            self.speaker.volume = self.model.sound_volume

    def listen_to(self, share_id: str | None) -> None:
        if self.model.listen_to(share_id):
            heard = "the spotlit share's" if share_id is None else f"share {share_id}'s"
            logger.info("room sound: %s", heard)

    def change_settings(
        self,
        password: str,
        *,
        pin: str | None,
        rotate: bool,
        done: Callable[[SettingsOutcome], None],
        locked: bool = False,
    ) -> None:
        """:meth:`apply_settings` for the room's controls: runs in the background, then ``done(outcome)``."""

        async def apply() -> None:
            done(await self.apply_settings(password, pin=pin, rotate=rotate, locked=locked))

        self._spawn(apply())

    async def apply_settings(
        self, password: str, *, pin: str | None, rotate: bool, locked: bool = False
    ) -> SettingsOutcome:
        """Set the PIN (``None``: an open room), its per-meeting rotation and whether the room is locked
        (no new shares; those on screen go on), if ``password`` unlocks them.

        The password is checked once, against a salted scrypt hash, in a worker thread.
        """
        if pin is not None and not is_valid_pin(pin):
            return SettingsOutcome.INVALID_PIN
        if self._admin is None or not await asyncio.to_thread(self._admin.matches, password):
            logger.warning("settings change refused: wrong admin password")
            return SettingsOutcome.WRONG_PASSWORD
        self._rotate = rotate
        self.model.pin_rotation = rotate
        self.model.set_locked(locked)
        self._set_pin(pin)
        logger.info(
            "settings changed at the box (%s, PIN rotation %s%s)",
            "PIN required" if pin else "open room",
            "on" if rotate else "off",
            ", locked" if locked else "",
        )
        return SettingsOutcome.APPLIED

    def rotate_pin(self) -> None:
        """A fresh random PIN of the same length, if rotation is on and the room has a PIN."""
        if self._rotate and self._pin is not None:
            self._set_pin(random_pin(len(self._pin)))
            logger.info("PIN rotated for the next meeting")

    def _set_pin(self, pin: str | None) -> None:
        self._pin = pin
        self.model.set_pin(pin)
        self._republish()

    def _on_model_change(self) -> None:
        busy = bool(self.model.shares)
        if self._was_busy and not busy:
            self.rotate_pin()  # the meeting is over: the next one gets a new PIN
        self._was_busy = busy
        moderators = [share for share in self._shares.values() if share.is_moderator]
        if moderators:
            state = room_control.room_state(self.model)
            for share in moderators:
                self._spawn(share.tell_room(state))

    def end_shares_from(self, peer_address: str, *, why: str = "") -> int:
        """End every share from ``peer_address`` (the cloud suspended or revoked that device); with ``why``
        ("an administrator suspended that device"), the room says so over the shares for a while."""
        ending = {task: share for task, share in self._shares.items() if share.peer_address == peer_address}
        ids = {share.share_id for share in ending.values()}
        names = [view.sender_name for view in self.model.shares if view.share_id in ids]
        for task in ending:
            task.cancel()
        if ending:
            logger.info("ended %d share(s) from %s", len(ending), peer_address)
        if names and why:
            show_briefly(self.model, f"{' and '.join(names)}: the share ended because {why}.")
        return len(ending)

    def _unique_name(self, name: str) -> str:
        name = safe_name(name)
        taken = {s.sender_name for s in self.model.shares}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name} ({n})", n + 1
        return candidate

    async def wait_for_shares(self, count: int, timeout: float) -> None:
        """Wait until ``count`` shares each have a decoded frame on every track (tests, demo, benchmarks)."""
        changed = asyncio.Event()
        unsubscribe = self.model.subscribe(changed.set)
        try:
            async with asyncio.timeout(timeout):
                while len(ready := [s for s in self.model.shares if s.tracks]) < count:
                    changed.clear()
                    await changed.wait()
                sinks = [t for s in ready[:count] for t in s.tracks.values() if isinstance(t, TrackSink)]
                await asyncio.gather(*(sink.wait_for_frames(1) for sink in sinks))
        finally:
            unsubscribe()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for timer in self._lost.values():
            timer.cancel()
        self._lost.clear()
        if self._publish_task is not None:
            self._publish_task.cancel()
            await asyncio.gather(self._publish_task, return_exceptions=True)
        if self._publisher is not None:
            await self._publisher.aclose()
        tasks = [*self._shares, *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.speaker is not None:
            self.speaker.close()
            await asyncio.to_thread(self.speaker.join, 2.0)
        if self._server is not None:
            await self._server.aclose()
        for writer in self._writers:
            await writer.aclose()
        logger.info("receiver %r stopped", self.config.name)

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class _AdminSecret:
    """The admin password, kept only as a salted scrypt hash."""

    def __init__(self, password: str) -> None:
        self._salt = secrets.token_bytes(16)
        self._hash = self._derive(password)

    def _derive(self, password: str) -> bytes:
        return hashlib.scrypt(password.encode(), salt=self._salt, n=2**14, r=8, p=1)

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(self._hash, self._derive(password))


def _bind_message(port: int, exc: OSError) -> str:
    if exc.errno == errno.EACCES:
        why = "needs administrator rights (ports below 1024)"
    elif exc.errno == errno.EADDRINUSE:
        why = "is already in use by another program"
    else:
        why = f"cannot be used ({exc.strerror or exc})"
    return f"TCP port {port} {why}."


def _receiver_id(data_dir: Path) -> str:
    """A stable random id for this receiver, kept beside its certificate."""
    path = data_dir / "receiver-id"
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = uuid.uuid4().hex[:16]
    path.write_text(value + "\n")
    return value


def _never(_share_id: str) -> bool:
    """``keep_lost`` for senders that never come back: their tile goes with their connection."""
    return False
