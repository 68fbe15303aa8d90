"""Signaling over WebSocket over TLS: the receiver's server and the sender's client.

The WebSocket layer allows frames up to ``FRAME_LIMIT`` so that a too-large protocol message still
reaches the protocol layer, which answers it with a clear ``error``; only absurd frames are cut off by
websockets itself (close code 1009).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable

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
from coalesce_common.net.why import describe_os_error, where
from coalesce_common.signaling.base import ChannelClosed
from coalesce_common.tls import TlsIdentity, client_context, fingerprint_of_der, server_context

logger = logging.getLogger(__name__)

FRAME_LIMIT = 1024 * 1024
SIGNALING_PATH = "/coalesce/v1"
KEEPALIVE = 10.0
"""Seconds between pings, to wait for the pong, and then for the closing handshake: a peer that vanishes
(lid closed, Wi-Fi gone) sends no close frame, and only this notices it."""


class WebSocketChannel:
    """A :class:`SignalingChannel` over one websockets connection (either side)."""

    def __init__(self, ws: ClientConnection | ServerConnection, tls_fingerprint: str) -> None:
        self._ws = ws
        self._tls_fingerprint = tls_fingerprint
        remote = ws.remote_address
        self._peer_address = str(remote[0]) if remote else "unknown"

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
    ) -> None:
        self._identity = identity
        self._handler = handler
        self._keepalive = keepalive
        self._server: Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def start(self, host: str | None, port: int) -> None:
        """Bind and listen; raises ``OSError`` if the port cannot be bound."""
        self._server = await serve(
            self._serve,
            host,
            port,
            ssl=server_context(self._identity),
            max_size=FRAME_LIMIT,
            compression=None,
            ping_interval=self._keepalive,
            ping_timeout=self._keepalive,
            close_timeout=self._keepalive,
            open_timeout=5,
        )

    async def _serve(self, ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path != SIGNALING_PATH:
            await ws.close(code=1008, reason="unknown path")
            return
        await self._handler(WebSocketChannel(ws, self._identity.fingerprint))

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


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


__all__ = ["ChannelClosed", "WebSocketChannel", "WebSocketServer", "connect"]
