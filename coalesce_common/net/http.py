"""HTTPS to the cloud through the connector: an httpcore network backend that opens sockets with it.

httpx speaks HTTP; httpcore opens the TCP connections through a pluggable network backend. Ours asks
:func:`open_socket` (so DIRECT, HTTP CONNECT or SOCKS5, whatever the resolver says) and then lets
httpcore run TLS over that socket as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import typing

import httpcore
import httpx
from httpcore._utils import is_socket_readable

from coalesce_common.net.connector import open_socket
from coalesce_common.net.proxy import ProxyResolver


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return await asyncio.wait_for(self._reader.read(max_bytes), timeout)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._writer.write(buffer)
            await asyncio.wait_for(self._writer.drain(), timeout)
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self._writer.wait_closed()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            await asyncio.wait_for(
                self._writer.start_tls(ssl_context, server_hostname=server_hostname), timeout
            )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return self._reader.at_eof() or is_socket_readable(self._writer.get_extra_info("socket"))
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info in ("client_addr", "server_addr"):
            return self._writer.get_extra_info("sockname" if info == "client_addr" else "peername")
        return self._writer.get_extra_info(info)


class ProxiedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, resolver: ProxyResolver) -> None:
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        sock = await open_socket(host, port, self._resolver, timeout=timeout or 10.0)
        reader, writer = await asyncio.open_connection(sock=sock)
        return _Stream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by Coalesce")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def proxied_transport(resolver: ProxyResolver, ssl_context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go through ``resolver``'s hops."""
    transport = httpx.AsyncHTTPTransport(verify=ssl_context)
    # httpx has no public hook for the network backend; its pool is the httpcore object that takes one.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context, network_backend=ProxiedBackend(resolver), http1=True, http2=False
    )
    return transport
