"""The one adapter between aioice's TURN client and Coalesce's connection rules (trust and proxies).

aioice opens TURN-over-TCP/TLS connections itself (``aioice.turn.create_turn_endpoint``) with no proxy
hook, and for ``turns:`` URLs with ``ssl=True``: Python's default context, which trusts only the system
CAs. We replace that function (aioice looks it up as a module attribute at call time, in
``aioice.ice.relayed_candidate``) with one that

* opens TCP through :func:`open_socket`, so DIRECT, HTTP CONNECT or SOCKS5 as the resolver says, and
* runs TLS with a context that also trusts the cloud's own CA,

then hands the connection to aioice's own TURN protocol classes. UDP allocations go to aioice unchanged
(behind a proxy, ICE is relay-only over TCP/TLS, so they are not used there). This uses aioice 0.13's
``TurnTransport._connect``; ``tests/proxy/test_turn_adapter.py`` fails if an aioice upgrade breaks it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import aioice.turn
from aioice.turn import TurnClientTcpProtocol, TurnTransport

from coalesce_common.net.connector import open_socket
from coalesce_common.net.proxy import ProxyResolver

logger = logging.getLogger(__name__)

_ORIGINAL = aioice.turn.create_turn_endpoint
_tls_context: ssl.SSLContext | None = None
_resolver: ProxyResolver | None = None


def turn_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        ctx.load_verify_locations(ca_file)
    return ctx


def install_turn_transport(ca_file: str | None = None, resolver: ProxyResolver | None = None) -> None:
    """Route aioice's TURN over TCP/TLS through ``resolver`` and trust ``ca_file`` too (process-wide)."""
    global _tls_context, _resolver
    _tls_context = turn_tls_context(ca_file)
    _resolver = resolver
    aioice.turn.create_turn_endpoint = _create_turn_endpoint


async def _create_turn_endpoint(
    protocol_factory: Any,
    server_addr: tuple[str, int],
    username: str | None,
    password: str | None,
    lifetime: int = aioice.turn.DEFAULT_ALLOCATION_LIFETIME,
    channel_refresh_time: int = aioice.turn.DEFAULT_CHANNEL_REFRESH_TIME,
    ssl: bool | ssl.SSLContext | None = None,
    transport: str = "udp",
) -> tuple[TurnTransport, Any]:
    if ssl is True and _tls_context is not None:
        ssl = _tls_context
    if transport != "tcp" or _resolver is None:
        return await _ORIGINAL(
            protocol_factory, server_addr, username, password, lifetime, channel_refresh_time, ssl, transport
        )
    host, port = server_addr
    sock = await open_socket(host, port, _resolver)
    loop = asyncio.get_running_loop()
    inner_transport, inner_protocol = await loop.create_connection(
        lambda: TurnClientTcpProtocol(
            server_addr,
            username=username,
            password=password,
            lifetime=lifetime,
            channel_refresh_time=channel_refresh_time,
        ),
        sock=sock,
        ssl=ssl or None,
        server_hostname=host if ssl else None,
    )
    try:
        protocol = protocol_factory()
        turn_transport = TurnTransport(inner_protocol)
        await turn_transport._connect(protocol)
    except BaseException:
        inner_transport.close()
        raise
    logger.info("TURN allocation over %s to %s:%d", "TLS" if ssl else "TCP", host, port)
    return turn_transport, protocol
