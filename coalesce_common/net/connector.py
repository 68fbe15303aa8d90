"""The one way Coalesce opens an outgoing TCP connection to the cloud: through the resolver's hops.

:func:`open_socket` asks the :class:`ProxyResolver` for the hops to ``host:port`` and tries them in order
(DIRECT, HTTP CONNECT with Basic auth, SOCKS5 with username/password, via python-socks), handing back a
connected, non-blocking socket. Callers (the REST client, XMPP, TURN over TCP/TLS) wrap that socket in TLS
and their protocol; none of them knows what kind of proxy, if any, is in between.

Failures become a :class:`ProxyConnectError` that says which proxy failed, why, and what to check: chosen
by python-socks' exception type and reply code (HTTP status, RFC 1928 reply), never by its message text;
a direct connection's error is put into words by :func:`~coalesce_common.net.why.describe_os_error`.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError
from python_socks.async_.asyncio import Proxy

from coalesce_common.errors import CoalesceError
from coalesce_common.net.proxy import HopKind, ProxyHop, ProxyResolver
from coalesce_common.net.why import describe_os_error, where

logger = logging.getLogger(__name__)


class ProxyConnectError(CoalesceError):
    """No hop reached the destination; ``failures`` lists (hop label, reason) in the order tried."""

    def __init__(self, destination: str, failures: list[tuple[str, str]]) -> None:
        self.destination = destination
        self.failures = failures
        lines = "; ".join(f"{hop}: {reason}" for hop, reason in failures)
        super().__init__(f"Cannot reach {destination}. {lines}")


# RFC 1928 §6 reply codes that python-socks passes on as ``ProxyError.error_code`` for SOCKS5.
_SOCKS5_NOT_ALLOWED = 0x02
_SOCKS5_UNREACHABLE = (0x03, 0x04)
_SOCKS5_REFUSED = 0x05
_HTTP_AUTH_REQUIRED = 407
_HTTP_FORBIDDEN = (403, 405)
_HTTP_NO_WAY_ON = (502, 503, 504)


def _explain(hop: ProxyHop, exc: BaseException, host: str, port: int) -> str:
    """Why ``hop`` failed, by exception type and reply code (never by message text)."""
    destination = where(host, port)
    if hop.is_direct:
        why = describe_os_error(exc, host, port)
        return f"{why} (a firewall may block direct connections: set a proxy)"
    if isinstance(exc, ProxyConnectionError):
        return f"the proxy {hop.host}:{hop.port} is unreachable; check its address and that it is running"
    if isinstance(exc, ProxyTimeoutError | TimeoutError):
        return "no answer in time; check the proxy address and the network"
    if isinstance(exc, ProxyError):
        if hop.kind is HopKind.HTTP:
            return _explain_http(hop, exc.error_code, destination)
        return _explain_socks(hop, exc.error_code, destination)
    return describe_os_error(exc, hop.host, hop.port, peer="the proxy")


def _explain_http(hop: ProxyHop, code: int | None, destination: str) -> str:
    if code is None:  # python-socks could not parse the answer as HTTP
        return f"the proxy {hop.host}:{hop.port} did not answer as an HTTP proxy; check its address and port"
    if code == _HTTP_AUTH_REQUIRED:
        return _REFUSED_CREDENTIALS
    if code in _HTTP_FORBIDDEN:
        return _not_allowed(destination)
    if code in _HTTP_NO_WAY_ON:
        return f"the proxy could not reach {destination} (HTTP {code}); check the address"
    return f"the proxy refused the connection (HTTP {code})"


def _explain_socks(hop: ProxyHop, code: int | None, destination: str) -> str:
    if hop.kind is not HopKind.SOCKS5:  # SOCKS4 has no passwords; its few reply codes say little more
        if code is None:
            return (
                f"the proxy {hop.host}:{hop.port} did not answer as a SOCKS proxy; check its address and port"
            )
        return f"the proxy refused the connection (SOCKS reply {code})"
    if code is None:
        # python-socks gives a code only for the CONNECT reply; a SOCKS5 refusal without one came earlier,
        # in the choice of authentication method or in the user name and password exchange.
        if hop.username is None:
            return "the proxy asks for a user name and password (set them in the proxy settings)"
        return _REFUSED_CREDENTIALS
    if code == _SOCKS5_NOT_ALLOWED:
        return _not_allowed(destination)
    if code in _SOCKS5_UNREACHABLE:
        return f"the proxy could not reach {destination}; check the address"
    if code == _SOCKS5_REFUSED:
        return f"nothing is listening at {destination}, says the proxy; check the address and port"
    return f"the proxy refused the connection (SOCKS reply {code})"


_REFUSED_CREDENTIALS = "the proxy refused the user name or password (check them in the proxy settings)"


def _not_allowed(destination: str) -> str:
    return f"the proxy does not allow connections to {destination} (ask IT to allow it)"


async def _direct(host: str, port: int, timeout: float) -> socket.socket:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), timeout)
            return sock
        except (OSError, TimeoutError) as exc:
            sock.close()
            last = exc
    raise last or socket.gaierror(socket.EAI_NONAME, f"{host} has no address")


async def open_socket(
    host: str, port: int, resolver: ProxyResolver, *, timeout: float = 10.0
) -> socket.socket:
    """A connected non-blocking socket to ``host:port``, through the first hop that works."""
    destination = where(host, port)
    failures: list[tuple[str, str]] = []
    for hop in await resolver.resolve(host, port):
        try:
            if hop.is_direct:
                sock = await _direct(host, port, timeout)
            else:
                proxy = Proxy.from_url(hop.url, rdns=True)
                sock = await proxy.connect(dest_host=host, dest_port=port, timeout=timeout)
                sock.setblocking(False)
            if failures:
                logger.info(
                    "reached %s through %s after %d failed hop(s)", destination, hop.label, len(failures)
                )
            return sock
        except (ProxyError, ProxyConnectionError, ProxyTimeoutError, OSError, TimeoutError) as exc:
            reason = _explain(hop, exc, host, port)
            logger.warning("%s via %s failed: %s (%r)", destination, hop.label, reason, exc)
            failures.append((hop.label, reason))
    raise ProxyConnectError(destination, failures)
