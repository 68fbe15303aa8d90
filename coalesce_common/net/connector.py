"""The one way Coalesce opens an outgoing TCP connection to the cloud: through the resolver's hops.

:func:`open_socket` asks the :class:`ProxyResolver` for the hops to ``host:port`` and tries them in order
(DIRECT, HTTP CONNECT with Basic auth, SOCKS5 with username/password, via python-socks), handing back a
connected, non-blocking socket. Callers (the REST client, XMPP, TURN over TCP/TLS) wrap that socket in TLS
and their protocol; none of them knows what kind of proxy, if any, is in between.

Failures become a :class:`ProxyConnectError` that says which proxy failed, why, and what to check.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError
from python_socks.async_.asyncio import Proxy

from coalesce_common.errors import CoalesceError
from coalesce_common.net.proxy import ProxyHop, ProxyResolver

logger = logging.getLogger(__name__)


class ProxyConnectError(CoalesceError):
    """No hop reached the destination; ``failures`` lists (hop label, reason) in the order tried."""

    def __init__(self, destination: str, failures: list[tuple[str, str]]) -> None:
        self.destination = destination
        self.failures = failures
        lines = "; ".join(f"{hop}: {reason}" for hop, reason in failures)
        super().__init__(f"Cannot reach {destination}. {lines}")


def _explain(hop: ProxyHop, exc: BaseException, destination: str) -> str:
    if isinstance(exc, ProxyConnectionError):
        return f"the proxy {hop.host}:{hop.port} is unreachable; check its address and that it is running"
    if isinstance(exc, ProxyTimeoutError | TimeoutError):
        return "no answer in time; check the proxy address and the network"
    if isinstance(exc, ProxyError):
        code = getattr(exc, "error_code", None)
        text = str(exc)
        if code == 407 or "407" in text or "authentication" in text.lower() or "auth" in text.lower():
            return "the proxy refused the user name or password (check them in the proxy settings)"
        if code in (403, 405) or "403" in text or "not allowed" in text.lower() or "0x02" in text:
            return f"the proxy does not allow connections to {destination} (ask IT to allow it)"
        return f"the proxy refused the connection ({text})"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} (a firewall may block direct connections: set a proxy)"
    return str(exc)


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
            last = exc if isinstance(exc, OSError) else OSError(f"timed out after {timeout:g} s")
    raise last or OSError(f"{host} has no address")


async def open_socket(
    host: str, port: int, resolver: ProxyResolver, *, timeout: float = 10.0
) -> socket.socket:
    """A connected non-blocking socket to ``host:port``, through the first hop that works."""
    destination = f"{host}:{port}"
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
            reason = _explain(hop, exc, destination)
            logger.warning("%s via %s failed: %s", destination, hop.label, reason)
            failures.append((hop.label, reason))
    raise ProxyConnectError(destination, failures)
