"""Signaling over WebSocket over TLS: the receiver's server and the sender's client.

The WebSocket layer allows frames up to ``FRAME_LIMIT`` so that a too-large protocol message still
reaches the protocol layer, which answers it with a clear ``error``; only absurd frames are cut off by
websockets itself (close code 1009).

The server admits connections as it accepts them (:mod:`~coalesce_common.signaling.admission` decides):
its listening sockets are listeners whose ``accept()`` is what asyncio's accept loop calls, so
a refused connection is closed before asyncio builds a TLS transport for it. Deadlines then bound every
stage a stranger can stall: the TLS handshake and the HTTP upgrade (``open_timeout``), then hello and PIN
(the receiver's handshake timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import gc
import logging
import os
import socket
import ssl
import struct
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from coalesce_common.errors import SignalingError
from coalesce_common.logutil import RateLimitedLog
from coalesce_common.net.why import describe_os_error, where
from coalesce_common.signaling.admission import (
    DEFAULT_PER_SOURCE,
    DEFAULT_TOTAL,
    Admission,
    Admitted,
    ConnectionLimits,
    Refusal,
    Ticket,
    total_for_descriptors,
)
from coalesce_common.signaling.base import ChannelClosed
from coalesce_common.throttle import source_key
from coalesce_common.tls import TlsIdentity, client_context, fingerprint_of_der, server_context

logger = logging.getLogger(__name__)

FRAME_LIMIT = 1024 * 1024
SIGNALING_PATH = "/coalesce/v1"
KEEPALIVE = 10.0
"""Seconds between pings, to wait for the pong, and then for the closing handshake: a peer that vanishes
(lid closed, Wi-Fi gone) sends no close frame, and only this notices it."""
OPEN_TIMEOUT = 5.0
"""Seconds for the TLS handshake, and again for the HTTP upgrade: a slowloris connection goes after that."""
_REFUSALS_PER_TURN = 64
"""Refused connections closed in one call of ``accept()``; the event loop's other work runs in between."""
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
WAIT_FOR_CLOSING = 0.25
"""Seconds at most that newcomers wait in the listen backlog for shed connections to close; a shed one
that takes longer (its transport not reading) must not stop the server accepting, so after this it
refuses newcomers at the limit as before."""
SWEEP_AFTER = 32
"""Unpaired connections closed between two collections of the garbage they leave (see :class:`_Gate`)."""
SWEEP_INTERVAL = 0.25
"""Seconds at least between two such collections, however fast strangers come and go."""
SWEEP_SHARE = 0.1
"""Share of the event loop's time the collections may take at most: in a process with a large heap (a
room up for days; the test session) one full collection took longer than the interval, and a flood then
kept the loop collecting instead of pairing (CI saw one test run for 15 minutes)."""


class WebSocketChannel:
    """A :class:`SignalingChannel` over one websockets connection (either side)."""

    def __init__(
        self,
        ws: ClientConnection | ServerConnection,
        tls_fingerprint: str,
        on_paired: Callable[[], None] = lambda: None,
    ) -> None:
        self._ws = ws
        self._tls_fingerprint = tls_fingerprint
        self._on_paired = on_paired
        remote = ws.remote_address
        self._peer_address = str(remote[0]) if remote else "unknown"

    def mark_authenticated(self) -> None:
        """The peer paired: the server must not close this connection to admit a stranger."""
        self._on_paired()

    @property
    def peer_address(self) -> str:
        return self._peer_address

    @property
    def tls_fingerprint(self) -> str:
        return self._tls_fingerprint

    async def send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def recv(self) -> str | bytes:
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def aclose(self, reason: str = "") -> None:
        await self._ws.close(reason=reason[:120])


def _closed(exc: ConnectionClosed) -> ChannelClosed:
    if isinstance(exc, ConnectionClosedOK):
        return ChannelClosed("the other side closed the signaling channel")
    return ChannelClosed("the signaling channel broke: the network or the other side went away")


class WebSocketServer:
    """The receiver's TLS WebSocket endpoint; calls ``handler`` with a channel per sender."""

    def __init__(
        self,
        identity: TlsIdentity,
        handler: Callable[[WebSocketChannel], Awaitable[None]],
        *,
        keepalive: float = KEEPALIVE,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self._identity = identity
        self._handler = handler
        self._keepalive = keepalive
        self._gate = _Gate(limits or connection_limits())
        self._servers: list[Server] = []

    @property
    def port(self) -> int:
        assert self._servers, "not started"
        sockets = list(self._servers[0].sockets)
        return int(sockets[0].getsockname()[1])

    async def start(self, host: str | None, port: int) -> None:
        """Bind and listen; raises ``OSError`` if the port cannot be bound."""
        context = server_context(self._identity)
        listeners = await _bind(host, port, self._gate)
        try:
            for listener in listeners:
                self._servers.append(
                    await serve(
                        self._serve,
                        sock=listener,
                        ssl=context,
                        max_size=FRAME_LIMIT,
                        compression=None,
                        ping_interval=self._keepalive,
                        ping_timeout=self._keepalive,
                        close_timeout=self._keepalive,
                        open_timeout=OPEN_TIMEOUT,  # also the TLS handshake's (ssl_handshake_timeout)
                    )
                )
        except BaseException:
            for listener in listeners:
                listener.close()
            await self.aclose()
            raise

    async def _serve(self, ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path != SIGNALING_PATH:
            await ws.close(code=1008, reason="unknown path")
            return
        await self._handler(WebSocketChannel(ws, self._identity.fingerprint, self._gate.pairing_of(ws)))

    async def aclose(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()


def connection_limits(total: int | None = None, per_source: int | None = None) -> ConnectionLimits:
    """Limits for a server in this process: ``total`` by default derived from its open-file limit."""
    descriptors = _descriptor_limit()
    default_total = total_for_descriptors(descriptors) if descriptors is not None else DEFAULT_TOTAL
    if total is not None and total > default_total and descriptors is not None:
        logger.warning(
            "up to %d connections were asked for, but this process may open only %d files; when they run "
            "out, connections that have not paired are closed (raise the limit with ulimit -n)",
            total,
            descriptors,
        )
    return ConnectionLimits(per_source=per_source or DEFAULT_PER_SOURCE, total=total or default_total)


def _descriptor_limit() -> int | None:
    if sys.platform == "win32":  # no descriptor limit on Windows sockets
        return None
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


class _AdmittedSocket(socket.socket):
    """An accepted connection that gives its place back when asyncio closes it (or drops it unclosed)."""

    def __init__(self, fd: int, release: Callable[[], None]) -> None:
        super().__init__(fileno=fd)
        self._release = weakref.finalize(self, release)

    def close(self) -> None:
        self._release()  # before the descriptor is closed and its number can be reused
        super().close()


def sweep_interval(took: float) -> float:
    """Seconds to wait before the next collection after one that took ``took``: :data:`SWEEP_INTERVAL`,
    or longer so that collections take at most :data:`SWEEP_SHARE` of the time."""
    return max(SWEEP_INTERVAL, took / SWEEP_SHARE)


class _Gate:
    """Admits accepted sockets through an :class:`Admission`, and closes the ones it sheds.

    It also collects the garbage strangers leave. On CPython 3.11 every connection whose TLS handshake
    fails (cut, timed out, or shed) leaves a reference cycle in asyncio: the exception, its traceback, the
    accept coroutine's frame holding the waiter that holds the exception, and the ``SSLProtocol`` with its
    256 KiB read buffer. Only a full collection frees it, and a quiet receiver makes one rarely: 2,000 idle
    connections took its memory from 116 MB to 440-534 MB, which it kept. So after every
    :data:`SWEEP_AFTER` unpaired connections closed it collects (at most every :data:`SWEEP_INTERVAL` s;
    about 1 ms once the CLI has frozen the start-up objects with ``gc.freeze()``).
    """

    def __init__(self, limits: ConnectionLimits) -> None:
        self.admission = Admission(limits)
        self._log = RateLimitedLog(logger)  # strangers decide how often these lines would come
        self._sockets: weakref.WeakValueDictionary[Ticket, _AdmittedSocket] = weakref.WeakValueDictionary()
        self._by_descriptor: dict[int, Ticket] = {}
        self._unswept = 0  # unpaired connections closed since the last collection
        self._swept_at = float("-inf")
        self._sweep_every = SWEEP_INTERVAL
        self._waiting_since: float | None = None

    def wait_for_closing(self) -> bool:
        """Whether to leave pending connections in the backlog for now (see :meth:`Admission.making_room`).

        Without this, at the limit in a flood every newcomer after the last shed allowed in one
        turn of the event loop was reset, the legitimate sender among them; CI saw it refused that way.
        """
        if not self.admission.making_room():
            self._waiting_since = None
            return False
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since < WAIT_FOR_CLOSING

    def admit(self, conn: socket.socket, address: tuple[Any, ...]) -> _AdmittedSocket | None:
        self._sweep()
        source = source_key(str(address[0]))  # as the throttles count: IPv6 by /64
        verdict = self.admission.admit(source)
        if not isinstance(verdict, Admitted):
            _reset(conn)
            why = (
                f"it already holds {self.admission.limits.per_source}, the most one address may"
                if verdict is Refusal.PER_SOURCE
                else f"the receiver is at its limit of {self.admission.total} connections"
            )
            self._log.warning(f"refused:{verdict.value}", "refused a connection from %s: %s", source, why)
            return None
        if verdict.shed is not None:
            self._log.log(
                logging.INFO,
                "shed",
                "closed the oldest unpaired connection (from %s) to admit one from %s, at the limit of %d",
                verdict.shed.source,
                source,
                self.admission.total,
            )
            self._close(verdict.shed)
        ticket = verdict.ticket
        fd = conn.detach()
        admitted = _AdmittedSocket(fd, functools.partial(self._release, ticket, fd))
        self._sockets[ticket] = admitted
        self._by_descriptor[fd] = ticket
        return admitted

    def out_of_descriptors(self, exc: OSError) -> None:
        limit = self.admission.total
        shed = self.admission.out_of_descriptors()
        for ticket in shed:
            self._close(ticket)
        if self.admission.total == limit:
            return  # connections shed for an earlier refusal are still closing
        self._log.warning(
            "descriptors",
            "out of file descriptors (%s): closed %d unpaired connections; at most %d from now on",
            exc.strerror,
            len(shed),
            self.admission.total,
        )

    def pairing_of(self, ws: ServerConnection) -> Callable[[], None]:
        """What marks ``ws`` paired (nothing, for a connection this gate did not admit)."""
        sock = ws.transport.get_extra_info("socket")
        ticket = self._by_descriptor.get(sock.fileno()) if sock is not None else None
        if ticket is None:
            return lambda: None
        return functools.partial(self.admission.mark_paired, ticket)

    def _close(self, ticket: Ticket) -> None:
        """Shut the connection down; its transport sees the end and closes it (and its descriptor)."""
        sock = self._sockets.get(ticket)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _release(self, ticket: Ticket, fd: int) -> None:
        # Also called by a finalizer, in whichever thread collects: it only updates counts.
        self.admission.release(ticket)
        if self._by_descriptor.get(fd) is ticket:
            del self._by_descriptor[fd]
        if not ticket.paired:
            self._unswept += 1

    def _sweep(self) -> None:
        """Collect the cycles closed strangers left, if enough have closed (called on the loop, at accept)."""
        now = time.monotonic()
        if self._unswept >= SWEEP_AFTER and now - self._swept_at >= self._sweep_every:
            self._unswept = 0
            gc.collect()
            self._swept_at = time.monotonic()
            self._sweep_every = sweep_interval(self._swept_at - now)


class _Listener(socket.socket):
    """A listening socket whose ``accept()``, called by asyncio's accept loop, admits or refuses.

    Out of descriptors (EMFILE), asyncio would log a traceback and stop accepting for a second, while the
    connections that exhaust them stay. Instead the gate sheds unpaired connections and lowers its limit,
    and one descriptor kept in reserve lets the pending connection be accepted and closed, so that the
    listening socket does not stay readable and spin the loop (libuv does the same).
    """

    def __init__(self, family: int, kind: int, proto: int, gate: _Gate) -> None:
        super().__init__(family, kind, proto)
        self._gate = gate
        self._reserve: int | None = _reserve()

    def accept(self) -> tuple[socket.socket, Any]:
        for _ in range(_REFUSALS_PER_TURN):
            if self._gate.wait_for_closing():
                raise BlockingIOError(errno.EAGAIN, "shed connections are still closing")
            try:
                conn, address = super().accept()
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    raise
                self._gate.out_of_descriptors(exc)
                if not self._drop_pending():
                    raise  # no reserve left: asyncio pauses accepting for a second (and says so)
                continue
            admitted = self._gate.admit(conn, address)
            if admitted is not None:
                return admitted, address
        raise BlockingIOError(errno.EAGAIN, "more refusals at the next turn of the event loop")

    def _drop_pending(self) -> bool:
        if self._reserve is None:
            self._reserve = _reserve()
            return False
        os.close(self._reserve)
        self._reserve = None
        try:
            conn, _ = super().accept()
        except BlockingIOError:
            pass
        else:
            _reset(conn)
        finally:
            self._reserve = _reserve()
        return True

    def close(self) -> None:
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
        super().close()


def _reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None


def _reset(conn: socket.socket) -> None:
    """Close with a reset: the peer learns at once, and no TIME_WAIT stays behind."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


async def _bind(host: str | None, port: int, gate: _Gate) -> list[_Listener]:
    """Bound listening sockets as ``loop.create_server`` makes them: every interface (IPv4 and IPv6) for
    ``None``, one port for all of them (also when ``port`` is 0)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    listeners: list[_Listener] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            listener = _Listener(family, kind, proto, gate)
            listeners.append(listener)
            if os.name == "posix":
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if listeners[1:]:  # the same port as the first, chosen by the system for port 0
                address = (address[0], listeners[0].getsockname()[1], *address[2:])
            listener.bind(address)
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    return listeners


async def connect(
    host: str, port: int, *, timeout: float = 10.0, keepalive: float = KEEPALIVE
) -> WebSocketChannel:
    """Open a signaling channel to a receiver; raise :class:`SignalingError` with what to check."""
    netloc = where(host, port)
    uri = f"wss://{netloc}{SIGNALING_PATH}"
    try:
        ws = await ws_connect(
            uri,
            ssl=client_context(),
            proxy=None,  # the LAN path is always direct; proxies are for the cloud path
            max_size=FRAME_LIMIT,
            compression=None,
            open_timeout=timeout,
            ping_interval=keepalive,
            ping_timeout=keepalive,
            close_timeout=keepalive,
        )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ssl.SSLError) as exc:
        logger.info("connecting to %s failed: %r", netloc, exc)
        raise SignalingError(f"Could not reach the receiver: {_unreachable(exc, host, port)}.") from exc
    ssl_object = ws.transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        await ws.close()
        raise SignalingError(f"the receiver at {netloc} presented no TLS certificate")
    return WebSocketChannel(ws, fingerprint_of_der(der))


def _unreachable(exc: BaseException, host: str, port: int) -> str:
    netloc = where(host, port)
    check = "check the address and port shown on the room display"
    if isinstance(exc, InvalidURI):
        return f"{netloc} is not a valid address; {check}"
    if isinstance(exc, InvalidStatus):
        return f"{netloc} answered HTTP {exc.response.status_code}, not as a Coalesce receiver; {check}"
    if isinstance(exc, InvalidHandshake) and not isinstance(exc.__cause__, OSError | EOFError):
        return f"{netloc} did not answer as a Coalesce receiver; {check}"
    return describe_os_error(exc, host, port, peer="the room display")


__all__ = ["ChannelClosed", "WebSocketChannel", "WebSocketServer", "connect", "connection_limits"]
