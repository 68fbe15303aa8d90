"""A real coturn: TURN allocations with REST-API credentials over UDP, TCP and TLS, data relayed to a
loopback peer and back; expired or forged credentials refused."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import pytest
from aioice import stun, turn

from coalesce_cloud.servers.coturn import CoturnServer, turn_rest_credentials

TIMEOUT = 10.0
TRANSPORTS = ["udp", "tcp", "tls"]


class Datagrams(asyncio.DatagramProtocol):
    """Collects datagrams; echoes them back when ``echo`` is set (the peer)."""

    def __init__(self, *, echo: bool = False) -> None:
        self.echo = echo
        self.transport: asyncio.DatagramTransport | None = None
        self.received: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait((data, addr))
        if self.echo and self.transport is not None:
            self.transport.sendto(data, addr)


async def allocate(
    server: CoturnServer, transport: str, username: str, password: str, ssl_context: ssl.SSLContext
) -> tuple[Any, Datagrams]:
    port = server.tls_port if transport == "tls" else server.listening_port
    return await asyncio.wait_for(
        turn.create_turn_endpoint(
            Datagrams,
            server_addr=(server.host, port),
            username=username,
            password=password,
            ssl=ssl_context if transport == "tls" else None,
            transport="udp" if transport == "udp" else "tcp",
        ),
        TIMEOUT,
    )


def test_rest_credentials_follow_the_turn_rest_scheme() -> None:
    username, password = turn_rest_credentials("secret", "alice", ttl=600, now=1_700_000_000.7)
    assert username == "1700000600:alice"
    # base64(HMAC-SHA1("secret", "1700000600:alice")), computed independently with openssl.
    assert password == "5PrY1fcLQr5jls8N4ZU7fEnmVNE="
    with pytest.raises(ValueError):
        turn_rest_credentials("secret", "alice", ttl=0)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_valid_credentials_allocate_a_relay_that_carries_data(
    coturn: CoturnServer, cloud_ssl_context: ssl.SSLContext, transport: str
) -> None:
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(
        lambda: Datagrams(echo=True), local_addr=("127.0.0.1", 0)
    )
    username, password = coturn.credentials("alice", ttl=300)
    relay, client = await allocate(coturn, transport, username, password, cloud_ssl_context)
    try:
        relayed_address = relay.get_extra_info("sockname")
        assert relayed_address[0] == coturn.host
        lo, hi = coturn.config.relay_min_port, coturn.config.relay_max_port
        assert lo <= relayed_address[1] <= hi

        peer_address = peer_transport.get_extra_info("sockname")
        relay.sendto(b"ping " + transport.encode(), peer_address)
        data, source = await asyncio.wait_for(peer.received.get(), TIMEOUT)
        assert data == b"ping " + transport.encode()
        assert source[:2] == tuple(relayed_address[:2])
        echoed, _ = await asyncio.wait_for(client.received.get(), TIMEOUT)
        assert echoed == data
    finally:
        relay.close()
        peer_transport.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("problem", ["expired", "wrong-secret"])
async def test_bad_credentials_are_refused(
    coturn: CoturnServer, cloud_ssl_context: ssl.SSLContext, transport: str, problem: str
) -> None:
    if problem == "expired":
        secret, issued = coturn.config.static_auth_secret, time.time() - 7200
    else:
        secret, issued = "not-the-secret", time.time()
    username, password = turn_rest_credentials(secret, "mallory", ttl=3600, now=issued)
    with pytest.raises(stun.TransactionFailed) as failure:
        await allocate(coturn, transport, username, password, cloud_ssl_context)
    assert failure.value.response.attributes["ERROR-CODE"][0] == 401
