"""Signaling through the cloud: protocol messages as XMPP payloads (slixmpp), one stream per device.

Every device keeps one XMPP session (SASL SCRAM over TLS) with the cloud's ejabberd. A share is a
*session*: the messages of one sender-box conversation carry the same ``session`` id in a
``<signal xmlns="urn:coalesce:signaling:1">`` element, so a box can serve several senders on one stream.
The JSON inside is exactly what goes over the LAN WebSocket; the XMPP layer only moves it.

Messages are ``headline`` stanzas: servers never store those for offline delivery (RFC 6121 §5.2.2), so
a hello to a box that is offline is lost rather than replayed later; the sender times out with a clear
error. The first message goes to the box's bare JID; replies come from its full JID, which the sender
then uses, so a conversation stays with one box process.

There is no TLS between the two peers here (each has TLS to the server), so the value pairing binds
in place of a certificate fingerprint is the pair of bare JIDs the server vouches for: a relay that
impersonates either side to the other changes it, and the PIN-keyed MACs then fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from slixmpp import JID, ClientXMPP
from slixmpp.stanza import Message
from slixmpp.xmlstream import ElementBase, StanzaBase, register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from coalesce_common.errors import SignalingError
from coalesce_common.logutil import RateLimitedLog
from coalesce_common.net.connector import ProxyConnectError, open_socket
from coalesce_common.net.proxy import ProxyResolver
from coalesce_common.net.why import describe_ca_file_error, describe_os_error, where
from coalesce_common.protocol.codec import MAX_MESSAGE_SIZE
from coalesce_common.signaling.base import ChannelClosed

logger = logging.getLogger(__name__)
peer_log = RateLimitedLog(logger)

NAMESPACE = "urn:coalesce:signaling:1"
MAX_SESSIONS_PER_PEER = 4
"""How many open conversations one remote JID may hold with a box at once."""


class XmppAuthError(SignalingError):
    """The cloud refused this device's XMPP login (wrong or rotated password, suspended, revoked)."""


class SignalPayload(ElementBase):  # type: ignore[misc]
    """``<signal xmlns="urn:coalesce:signaling:1" session="…" kind="data|close">JSON</signal>``."""

    namespace = NAMESPACE
    name = "signal"
    plugin_attrib = "coalesce_signal"
    interfaces = {"session", "kind"}


register_stanza_plugin(Message, SignalPayload)


@dataclass(frozen=True)
class XmppNode:
    """One node of the cloud's ejabberd cluster, as devices reach it."""

    host: str
    starttls_port: int
    tls_port: int = 0


@dataclass(frozen=True)
class XmppAccount:
    """Where and how a device logs in: from enrollment, kept in the OS keyring."""

    jid: str
    password: str
    host: str
    port: int
    direct_tls: bool = False  # True: TLS from the first byte (port 443/5223); False: STARTTLS
    ca_file: str | None = None  # extra CA to trust (a self-hosted cloud's own CA)
    tls_port: int = 0  # the server's direct-TLS port, when it has one (443 in production)
    others: tuple[XmppNode, ...] = ()
    """The cluster's other nodes: where to log in when this one (``host``) cannot be reached."""

    def via_direct_tls(self) -> XmppAccount:
        """The same login over direct TLS: the way through proxies that CONNECT only to 443."""
        if self.direct_tls or not self.tls_port:
            return self
        return replace(self, port=self.tls_port, direct_tls=True)

    def every_node(self) -> list[XmppAccount]:
        """This login at its own node, then at each of :attr:`others` (STARTTLS or direct TLS alike)."""
        accounts = [self]
        for node in self.others:
            port = node.tls_port if self.direct_tls else node.starttls_port
            if port:
                accounts.append(replace(self, host=node.host, port=port, tls_port=node.tls_port, others=()))
        return accounts

    def __repr__(self) -> str:  # never show the password
        return f"XmppAccount(jid={self.jid!r}, host={self.host!r}, port={self.port}, tls={self.direct_tls})"


def channel_binding(sender: str, box: str) -> str:
    """The value pairing MACs bind on the XMPP path (see the module docstring)."""
    return f"xmpp:{JID(sender).bare}>{JID(box).bare}"


class XmppChannel:
    """One conversation (a :class:`SignalingChannel`) over a shared :class:`XmppSignaling` stream."""

    def __init__(self, stream: XmppSignaling, peer: JID, session: str, binding: str) -> None:
        self._stream = stream
        self._peer = peer
        self._session = session
        self._binding = binding
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=64)
        self._closed = False

    @property
    def peer_address(self) -> str:
        return str(self._peer.bare)

    @property
    def tls_fingerprint(self) -> str:
        return self._binding

    @property
    def session(self) -> str:
        return self._session

    async def send(self, text: str) -> None:
        if self._closed or not self._stream.connected:
            raise ChannelClosed("the cloud signaling session is closed")
        self._stream._send(self._peer, self._session, "data", text)

    async def recv(self) -> str | bytes:
        if self._closed and self._inbox.empty():
            raise ChannelClosed("the cloud signaling session is closed")
        item = await self._inbox.get()
        if item is None:
            self._closed = True
            raise ChannelClosed("the peer left, or the cloud connection was lost")
        return item

    async def aclose(self, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        if self._stream.connected:
            self._stream._send(self._peer, self._session, "close", reason[:120])
        self._stream._forget(self)
        self._inbox.put_nowait(None)

    def _deliver(self, peer: JID, kind: str, text: str) -> None:
        self._peer = peer  # after the first reply, talk to the full JID that answered
        if kind == "close":
            self._peer_closed()
        elif self._inbox.full():
            peer_log.warning(f"{peer.bare}:flood", "dropping a flooding XMPP session from %s", peer.bare)
            self._peer_closed()
        else:
            self._inbox.put_nowait(text)

    def _peer_closed(self) -> None:
        if not self._closed:
            self._closed = True
            self._stream._forget(self)
            with contextlib.suppress(asyncio.QueueFull):
                self._inbox.put_nowait(None)


class _ProxiedClient(ClientXMPP):  # type: ignore[misc]
    """slixmpp's client, connecting through the connector (slixmpp has no proxy support of its own).

    Overrides the one method that opens the TCP connection (``XMLStream._attempt_connection``);
    STARTTLS and direct TLS then run over that socket unchanged.
    """

    def __init__(self, jid: JID, password: str, resolver: ProxyResolver) -> None:
        super().__init__(jid, password)
        self._resolver = resolver

    async def _attempt_connection(self, host: str, port: int, tls: bool, server_hostname: str | None) -> bool:
        self.event_when_connected = "connected"
        self._connect_loop_wait += 1
        if self._current_connection_attempt is None:
            return False
        try:
            sock = await open_socket(host, port, self._resolver)
            await self.loop.create_connection(
                lambda: self,
                sock=sock,
                ssl=self.get_ssl_context() if tls else None,
                server_hostname=server_hostname if tls else None,
            )
        except (ProxyConnectError, OSError) as exc:
            self.event("connection_failed", exc)
            return False
        self._connect_loop_wait = 0
        return True

    async def end_tasks(self) -> None:
        """End the stream's outgoing-stanza task, which slixmpp leaves running until the client is garbage
        collected (and then cancels without waiting, so asyncio logs "Task was destroyed but it is
        pending"): a reconnecting share drops its old client long before the program ends."""
        task = self._run_out_filters
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


ChannelHandler = Callable[[XmppChannel], Awaitable[None]]
NoticeHandler = Callable[[dict[str, Any]], None]


class XmppSignaling:
    """A device's XMPP stream: open conversations to boxes, or accept them (boxes), and cloud notices."""

    def __init__(
        self,
        account: XmppAccount,
        *,
        on_channel: ChannelHandler | None = None,
        on_notice: NoticeHandler | None = None,
        resource: str | None = None,
        resolver: ProxyResolver | None = None,
    ) -> None:
        self.account = account
        self._on_channel = on_channel
        self._on_notice = on_notice
        jid = JID(account.jid)
        jid.resource = resource or f"coalesce-{uuid.uuid4().hex[:8]}"
        self._client = _ProxiedClient(jid, account.password, resolver or ProxyResolver())
        self._client.enable_direct_tls = account.direct_tls
        self._client.enable_starttls = not account.direct_tls
        self._client.enable_plaintext = False
        self._client.ssl_context = _ssl_context(account.ca_file)
        self._client.register_plugin("feature_mechanisms")
        self._client.add_event_handler("session_start", self._on_session_start)
        self._client.add_event_handler("failed_all_auth", self._on_failed_auth)
        self._client.add_event_handler("connection_failed", self._on_connection_failed)
        self._client.add_event_handler("ssl_invalid_chain", self._on_invalid_chain)
        self._client.add_event_handler("disconnected", self._on_disconnected)
        self._client.add_event_handler("stream_error", self._on_stream_error)
        # slixmpp's "message" event fires only for stanzas with a <body>; signals have none.
        self._client.register_handler(
            Callback("coalesce signal", StanzaPath("message/coalesce_signal"), self._on_signal)
        )
        self._client.add_event_handler("message", self._on_body)
        self._channels: dict[tuple[str, str], XmppChannel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready: asyncio.Future[None] | None = None
        self._disconnected = asyncio.Event()
        self._connected = False
        self.stream_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def jid(self) -> str:
        return str(self._client.boundjid.full)

    @property
    def mechanism(self) -> str | None:
        """The SASL mechanism the login used (e.g. ``SCRAM-SHA-256``)."""
        mech = self._client.plugin["feature_mechanisms"].mech
        return str(mech.name) if mech is not None else None

    async def connect(self, timeout: float = 15.0) -> None:
        """Log in; raise :class:`XmppAuthError` or :class:`SignalingError` with what to check."""
        self._ready = asyncio.get_running_loop().create_future()
        self._disconnected.clear()
        self._client.connect(self.account.host, self.account.port)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError as exc:
            await self._abort()
            raise SignalingError(
                f"The cloud's XMPP service at {self.account.host}:{self.account.port} did not answer within "
                f"{timeout:g} s. Check the network (TCP {self.account.port}) or the proxy settings."
            ) from exc
        except BaseException:
            await self._abort()
            raise
        self._connected = True
        logger.info("XMPP session %s up (%s)", self.jid, self.mechanism)

    async def wait_disconnected(self) -> str | None:
        """Wait until the stream ends; return the server's stream error, if it gave one (e.g. kicked)."""
        await self._disconnected.wait()
        return self.stream_error

    async def aclose(self) -> None:
        self._connected = False
        for channel in list(self._channels.values()):
            channel._peer_closed()
        if self._client.transport is not None:
            with contextlib.suppress(Exception):
                await self._client.disconnect(wait=1.0)
        await self._abort()
        await self._client.end_tasks()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _abort(self) -> None:
        self._client.cancel_connection_attempt()
        if self._client.transport is not None:
            self._client.abort()

    # -- conversations -----------------------------------------------------------------------------

    def open_channel(self, peer: str) -> XmppChannel:
        """Start a conversation with ``peer`` (a box's JID)."""
        if not self._connected:
            raise ChannelClosed("not connected to the cloud")
        session = uuid.uuid4().hex
        channel = XmppChannel(self, JID(peer), session, channel_binding(self.jid, peer))
        self._channels[(str(JID(peer).bare), session)] = channel
        return channel

    def _send(self, peer: JID, session: str, kind: str, text: str) -> None:
        message = self._client.make_message(mto=peer, mtype="headline")
        message["coalesce_signal"]["session"] = session
        message["coalesce_signal"]["kind"] = kind
        message["coalesce_signal"].xml.text = text
        message.send()

    def _forget(self, channel: XmppChannel) -> None:
        for key, known in list(self._channels.items()):
            if known is channel:
                del self._channels[key]

    # -- events ------------------------------------------------------------------------------------

    def _on_session_start(self, _event: Any) -> None:
        self._client.send_presence(ppriority=0)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _on_failed_auth(self, _event: Any) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(
                XmppAuthError(
                    f"The cloud refused the login of {JID(self.account.jid).bare}: the device may be "
                    "suspended or revoked, or its credentials were rotated. Ask for new credentials."
                )
            )

    def _on_connection_failed(self, error: Any) -> None:
        if self._ready is not None and not self._ready.done():
            self._client.cancel_connection_attempt()
            if isinstance(error, ProxyConnectError):
                self._ready.set_exception(error)
                return
            self._fail_login(error)

    def _on_invalid_chain(self, error: ssl.SSLError) -> None:
        """STARTTLS met a certificate we do not trust (handling this event stops slixmpp's own drop)."""
        if self._ready is not None and not self._ready.done():
            self._fail_login(error)
        else:
            self._client.abort()

    def _fail_login(self, error: Any) -> None:
        assert self._ready is not None
        host, port = self.account.host, self.account.port
        if isinstance(error, BaseException):
            logger.info("XMPP connection to %s failed: %r", where(host, port), error)
            why = describe_os_error(error, host, port, peer="the Coalesce cloud")
        else:  # slixmpp's own reasons are sentences already
            why = str(error)
        self._ready.set_exception(SignalingError(f"Cannot reach the cloud's XMPP service: {why}."))

    def _on_stream_error(self, error: Any) -> None:
        self.stream_error = str(error["condition"]) if error is not None else "unknown"
        logger.warning("XMPP stream error from the server: %s", self.stream_error)

    def _on_disconnected(self, _reason: Any) -> None:
        was_connected = self._connected
        self._connected = False
        for channel in list(self._channels.values()):
            channel._peer_closed()
        self._disconnected.set()
        if was_connected:
            logger.info("XMPP session %s ended", self.jid)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(SignalingError("the cloud closed the XMPP connection during login"))

    def _on_body(self, message: Message) -> None:
        body = message["body"]
        if body and self._on_notice is not None:
            self._notice(message["from"], body)

    def _on_signal(self, stanza: StanzaBase) -> None:
        message = cast(Message, stanza)
        payload = message["coalesce_signal"]
        sender = message["from"]
        if not payload["session"] or message["type"] == "error":
            return
        text = payload.xml.text or ""
        if len(text.encode()) > MAX_MESSAGE_SIZE * 2:
            peer_log.warning(f"{sender.bare}:size", "dropping an oversized XMPP payload from %s", sender.bare)
            return
        key = (str(sender.bare), str(payload["session"])[:64])
        channel = self._channels.get(key)
        if channel is not None:
            channel._deliver(sender, payload["kind"] or "data", text)
            return
        if payload["kind"] == "close" or self._on_channel is None:
            return
        if sum(1 for bare, _ in self._channels if bare == key[0]) >= MAX_SESSIONS_PER_PEER:
            peer_log.warning(f"{sender.bare}:sessions", "too many sessions from %s; ignoring", sender.bare)
            return
        channel = XmppChannel(self, sender, key[1], channel_binding(str(sender), self.jid))
        self._channels[key] = channel
        channel._deliver(sender, "data", text)
        task = asyncio.ensure_future(self._on_channel(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notice(self, sender: JID, body: str) -> None:
        try:
            notice = json.loads(body)
        except ValueError:
            return
        if isinstance(notice, dict) and "coalesce" in notice and self._on_notice is not None:
            notice["from"] = str(sender.bare)
            self._on_notice(notice)


def _ssl_context(ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            ctx.load_verify_locations(ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SignalingError(
                f"Cannot use the cloud's CA certificate: {describe_ca_file_error(exc, ca_file)}."
            ) from exc
    return ctx
