"""How one peer connection's TURN connections reach the TURN server: the CAs trusted and the proxy used.

aioice opens TURN-over-TCP/TLS connections itself (``aioice.turn.create_turn_endpoint``) with no proxy
hook, and for ``turns:`` URLs with ``ssl=True``: Python's default context, which trusts only the system
CAs. A :class:`TurnRoute` opens them instead:

* TCP through :func:`open_socket`, so DIRECT, HTTP CONNECT or SOCKS5 as its resolver says, and
* TLS with a context that also trusts the cloud's own CA,

then hands the connection to aioice's own TURN protocol classes. UDP allocations go to aioice unchanged
(behind a proxy, ICE is relay-only over TCP/TLS, so they are not used there).

A route belongs to one peer connection, so two shares in one process can use different proxies and CAs.
It travels in the ICE server entries the connection is built with (:class:`RoutedIceServer`, made by
:meth:`TurnRoute.attach`); :func:`~coalesce_common.media.peer.new_peer_connection` finds it there and
makes it the :func:`active_route` while that connection gathers candidates (aiortc gathers only in
``setLocalDescription``). A context variable carries it there because aiortc offers no public way from a
peer connection to its aioice connections; asyncio copies it into every task the gathering starts, and
other connections gathering at the same time see their own. The replacement of aioice's function that
asks the active route is in :mod:`coalesce_common.media.aiortc_patches`; it uses aioice 0.13's
``TurnTransport._connect``, and ``tests/media/test_aiortc_patches.py`` and
``tests/proxy/test_turn_adapter.py`` fail if an aioice upgrade breaks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aioice.stun
import aioice.turn
from aioice.turn import TurnClientTcpProtocol
from aiortc import RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri

from coalesce_common.errors import CoalesceError, MediaError
from coalesce_common.net.connector import open_socket
from coalesce_common.net.proxy import ProxyResolver
from coalesce_common.net.why import describe_os_error

logger = logging.getLogger(__name__)

RELEASE_TIMEOUT = 2.0
"""Seconds a probe waits for its allocation's deletion (the server frees it at expiry anyway)."""
TurnEndpoint = tuple[aioice.turn.TurnTransport, Any]
CreateTurnEndpoint = Callable[..., Awaitable[TurnEndpoint]]
"""aioice's ``create_turn_endpoint`` (positional arguments as in :meth:`TurnRoute.create_endpoint`)."""


def turn_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        ctx.load_verify_locations(ca_file)
    return ctx


class TurnRoute:
    """TURN over TCP/TLS through ``resolver`` (aioice's own direct connection without one), trusting the
    system CAs and ``ca_file``."""

    def __init__(self, *, ca_file: str | None = None, resolver: ProxyResolver | None = None) -> None:
        self.ca_file = ca_file
        self.resolver = resolver
        self.tls_context = turn_tls_context(ca_file)

    def __repr__(self) -> str:
        return f"TurnRoute(ca_file={self.ca_file!r}, resolver={self.resolver!r})"

    def attach(self, servers: list[RTCIceServer]) -> list[RTCIceServer]:
        """``servers`` as entries that carry this route to the peer connection built with them."""
        return [
            RoutedIceServer(s.urls, s.username, s.credential, s.credentialType, route=self) for s in servers
        ]

    async def create_endpoint(
        self,
        upstream: CreateTurnEndpoint,
        protocol_factory: Any,
        server_addr: tuple[str, int],
        username: str | None,
        password: str | None,
        lifetime: int,
        channel_refresh_time: int,
        ssl: bool | ssl.SSLContext | None,
        transport: str,
    ) -> TurnEndpoint:
        """What aioice's ``create_turn_endpoint`` does, the way this route says; ``upstream`` is aioice's."""
        if ssl is True:
            ssl = self.tls_context
        if transport != "tcp" or self.resolver is None:
            return await upstream(
                protocol_factory,
                server_addr,
                username,
                password,
                lifetime,
                channel_refresh_time,
                ssl,
                transport,
            )
        host, port = server_addr
        sock = await open_socket(host, port, self.resolver)
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
            turn_transport = aioice.turn.TurnTransport(inner_protocol)
            await turn_transport._connect(protocol)
        except BaseException:
            inner_transport.close()
            raise
        logger.info("TURN allocation over %s to %s:%d", "TLS" if ssl else "TCP", host, port)
        return turn_transport, protocol

    async def probe(self, url: str, username: str, credential: str, *, timeout: float) -> float:
        """Seconds to a TURN allocation at ``url`` (``turn:...?transport=tcp`` or ``turns:...``) this
        route's way, given back at once; :class:`MediaError`, in plain words, when none is made in time."""
        parsed = parse_stun_turn_uri(url)
        host, port, tls = str(parsed["host"]), int(parsed["port"]), parsed["scheme"] == "turns"
        where = f"{host}:{port}"
        loop = asyncio.get_running_loop()
        released: asyncio.Future[None] = loop.create_future()

        class Released(asyncio.DatagramProtocol):
            def connection_lost(self, exc: Exception | None) -> None:
                if not released.done():
                    released.set_result(None)

        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                with routing(None):  # this route, not that of a connection gathering meanwhile
                    endpoint, _ = await self.create_endpoint(
                        aioice.turn.create_turn_endpoint,
                        Released,
                        (host, port),
                        username,
                        credential,
                        aioice.turn.DEFAULT_ALLOCATION_LIFETIME,
                        aioice.turn.DEFAULT_CHANNEL_REFRESH_TIME,
                        tls or None,
                        "tcp",
                    )
        except TimeoutError:
            raise MediaError(f"no TURN answer from {where} within {timeout:g} s") from None
        except aioice.stun.TransactionFailed as exc:
            raise MediaError(f"the TURN server at {where} refused the allocation ({exc})") from exc
        except (OSError, ssl.SSLError, aioice.stun.TransactionError, ConnectionError) as exc:
            why = describe_os_error(exc, host, port, peer="the TURN server")
            raise MediaError(why) from exc
        except CoalesceError as exc:  # the proxy's refusal, said by the connector
            raise MediaError(str(exc)) from exc
        seconds = time.perf_counter() - started
        endpoint.close()  # deletes the allocation; the protocol hears when it is gone
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(released), RELEASE_TIMEOUT)
        return seconds


@dataclasses.dataclass
class RoutedIceServer(RTCIceServer):
    """An ICE server entry that also says how to reach the server (aiortc reads only the fields it knows)."""

    route: TurnRoute = dataclasses.field(default_factory=TurnRoute)


def route_of(servers: list[RTCIceServer]) -> TurnRoute | None:
    """The route of the first entry that carries one (aiortc uses only the first TURN server anyway)."""
    return next((s.route for s in servers if isinstance(s, RoutedIceServer)), None)


_active_route: contextvars.ContextVar[TurnRoute | None] = contextvars.ContextVar(
    "coalesce_turn_route", default=None
)


@contextlib.contextmanager
def routing(route: TurnRoute | None) -> Iterator[None]:
    """TURN connections opened in this context, and in tasks started from it, go by ``route``."""
    token = _active_route.set(route)
    try:
        yield
    finally:
        _active_route.reset(token)


def active_route() -> TurnRoute | None:
    """The route for a TURN connection opened now; ``None`` leaves it to aioice."""
    return _active_route.get()
