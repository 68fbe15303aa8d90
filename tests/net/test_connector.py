"""The connector's words for each way a proxy refuses, from python-socks' real errors.

The proxies here are scripted loopback servers that speak just enough HTTP CONNECT or SOCKS5 to refuse in
one particular way (tests/proxy runs real squid and dante for the common cases); python-socks meets them
as it would meet a real proxy, and the connector maps what it raises by type and reply code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from coalesce_common.net.connector import ProxyConnectError, open_socket
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
StartProxy = Callable[[Handler], Awaitable[int]]
DESTINATION = "api.example:443"


@pytest.fixture
async def start_proxy() -> AsyncIterator[StartProxy]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(serve_one, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def failure(url: str) -> str:
    with pytest.raises(ProxyConnectError) as caught:
        await open_socket("api.example", 443, ProxyResolver(ProxyConfig(mode="manual", url=url)), timeout=5)
    return str(caught.value)


def http_answer(status_line: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(status_line + b"\r\n\r\n")
        await writer.drain()

    return handler


async def socks5_greeting(reader: asyncio.StreamReader) -> bytes:
    _version, count = await reader.readexactly(2)
    return await reader.readexactly(count)


def socks5_connect_reply(code: int) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await socks5_greeting(reader)
        writer.write(b"\x05\x00")  # no authentication
        _version, _command, _reserved, address_type = await reader.readexactly(4)
        assert address_type == 3  # a name: the connector lets the proxy resolve it
        (length,) = await reader.readexactly(1)
        await reader.readexactly(length + 2)
        writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
        await writer.drain()

    return handler


async def socks5_wrong_password(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert 2 in await socks5_greeting(reader)  # username/password offered
    writer.write(b"\x05\x02")
    _version, user_length = await reader.readexactly(2)
    await reader.readexactly(user_length)
    (password_length,) = await reader.readexactly(1)
    await reader.readexactly(password_length)
    writer.write(b"\x01\x01")  # RFC 1929: anything but 0 is a failure
    await writer.drain()


async def socks5_needs_a_password(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert 2 not in await socks5_greeting(reader)
    writer.write(b"\x05\xff")  # no acceptable method
    await writer.drain()


@pytest.mark.parametrize(
    ("status_line", "expected"),
    [
        (b"HTTP/1.1 407 Proxy Authentication Required", "refused the user name or password"),
        (b"HTTP/1.1 403 Forbidden", f"does not allow connections to {DESTINATION}"),
        (b"HTTP/1.1 502 Bad Gateway", f"could not reach {DESTINATION} (HTTP 502)"),
        (b"HTTP/1.1 418 I'm a teapot", "refused the connection (HTTP 418)"),
        (b"SSH-2.0-OpenSSH_9.2", "did not answer as an HTTP proxy"),
    ],
)
async def test_http_proxy_refusals(start_proxy: StartProxy, status_line: bytes, expected: str) -> None:
    port = await start_proxy(http_answer(status_line))
    message = await failure(f"http://alice:not-the-password@127.0.0.1:{port}")
    assert expected in message
    assert f"http://alice@127.0.0.1:{port}" in message and "not-the-password" not in message


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0x02, f"does not allow connections to {DESTINATION}"),
        (0x04, f"could not reach {DESTINATION}"),
        (0x05, f"nothing is listening at {DESTINATION}, says the proxy"),
        (0x01, "refused the connection (SOCKS reply 1)"),
    ],
)
async def test_socks5_connect_refusals(start_proxy: StartProxy, code: int, expected: str) -> None:
    port = await start_proxy(socks5_connect_reply(code))
    assert expected in await failure(f"socks5://127.0.0.1:{port}")


async def test_socks5_wrong_password(start_proxy: StartProxy) -> None:
    port = await start_proxy(socks5_wrong_password)
    message = await failure(f"socks5://alice:not-the-password@127.0.0.1:{port}")
    assert "refused the user name or password" in message and "not-the-password" not in message


async def test_socks5_that_wants_a_password_we_do_not_have(start_proxy: StartProxy) -> None:
    port = await start_proxy(socks5_needs_a_password)
    assert "asks for a user name and password" in await failure(f"socks5://127.0.0.1:{port}")


async def test_a_proxy_that_is_not_running(free_tcp_port: int) -> None:
    message = await failure(f"socks5://127.0.0.1:{free_tcp_port}")
    assert f"the proxy 127.0.0.1:{free_tcp_port} is unreachable" in message and "Errno" not in message
