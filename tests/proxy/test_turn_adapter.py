"""TURN routes: TURN over TLS through a proxy and with the cloud's CA, in aioice's own ICE agent and in a
peer connection, each connection by its own route.

This fails if an aioice upgrade stops looking ``create_turn_endpoint`` up at call time, renames the
TURN protocol classes, or changes ``TurnTransport._connect``: then no relay candidate is gathered.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import aioice
import pytest
from aiortc import RTCIceServer

from coalesce_cloud.servers.coturn import turn_rest_credentials
from coalesce_cloud.stack import LocalCloud
from coalesce_common.media import aiortc_patches
from coalesce_common.media.peer import new_peer_connection
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver
from coalesce_common.net.turn import TurnRoute, routing
from coalesce_testing.netns import Netns
from tests.proxy.lab import SquidFactory


@pytest.fixture
def patched_aioice() -> Iterator[None]:
    aiortc_patches.install()
    yield
    aiortc_patches.uninstall()


def credentials(cloud: LocalCloud) -> tuple[str, str]:
    secret = (cloud.state_dir / "turn-secret").read_text().strip()
    return turn_rest_credentials(secret, "adapter-test", 300)


async def gather_relay(cloud: LocalCloud, route: TurnRoute | None) -> list[aioice.Candidate]:
    username, password = await asyncio.to_thread(credentials, cloud)
    connection = aioice.Connection(
        ice_controlling=True,
        components=1,
        turn_server=("127.0.0.1", cloud.ports.turn_tls),
        turn_username=username,
        turn_password=password,
        turn_ssl=True,
        turn_transport="tcp",
        transport_policy=aioice.TransportPolicy.RELAY,
    )
    try:
        with routing(route):
            await connection.gather_candidates()
        return [c for c in connection.local_candidates if c.type == "relay"]
    finally:
        await connection.close()


@pytest.mark.usefixtures("patched_aioice")
async def test_turn_over_tls_goes_through_the_proxy_and_trusts_the_cloud_ca(
    local_cloud: LocalCloud, netns: Netns, squid_factory: SquidFactory
) -> None:
    squid = await asyncio.to_thread(squid_factory, auth=True)
    route = TurnRoute(
        ca_file=local_cloud.ca_file, resolver=ProxyResolver(ProxyConfig(mode="manual", url=squid.url))
    )
    relays = await gather_relay(local_cloud, route)
    assert relays, "no relay candidate: the route no longer reaches aioice's TURN client"
    await asyncio.to_thread(
        squid.wait_for_access,
        rf"TCP_TUNNEL/200 .* CONNECT 127\.0\.0\.1:{local_cloud.ports.turn_tls} {squid.username}",
    )


@pytest.mark.usefixtures("patched_aioice")
async def test_without_the_cloud_ca_turn_over_tls_is_refused(local_cloud: LocalCloud) -> None:
    assert await gather_relay(local_cloud, None) == []  # aioice alone: system CAs only
    assert await gather_relay(local_cloud, TurnRoute()) == []  # our private CA's certificate fails
    assert await gather_relay(local_cloud, TurnRoute(ca_file=local_cloud.ca_file))


@pytest.mark.usefixtures("patched_aioice")
async def test_two_connections_gathering_at_once_each_trust_what_their_route_says(
    local_cloud: LocalCloud,
) -> None:
    trusting, untrusting = TurnRoute(ca_file=local_cloud.ca_file), TurnRoute()
    with_ca, without_ca = await asyncio.gather(
        gather_relay(local_cloud, trusting), gather_relay(local_cloud, untrusting)
    )
    assert with_ca and without_ca == []


async def test_a_peer_connection_gathers_a_relay_through_the_proxy_its_ice_servers_name(
    local_cloud: LocalCloud, netns: Netns, squid_factory: SquidFactory
) -> None:
    squid = await asyncio.to_thread(squid_factory, auth=True)
    username, password = await asyncio.to_thread(credentials, local_cloud)
    servers = [
        RTCIceServer(
            urls=f"turns:127.0.0.1:{local_cloud.ports.turn_tls}?transport=tcp",
            username=username,
            credential=password,
        )
    ]
    route = TurnRoute(
        ca_file=local_cloud.ca_file, resolver=ProxyResolver(ProxyConfig(mode="manual", url=squid.url))
    )
    pc = new_peer_connection(route.attach(servers), relay_only=True)
    try:
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert re.search(r"^a=candidate:.* typ relay", pc.localDescription.sdp, re.MULTILINE)
    finally:
        await pc.close()
        aiortc_patches.uninstall()
    await asyncio.to_thread(
        squid.wait_for_access,
        rf"TCP_TUNNEL/200 .* CONNECT 127\.0\.0\.1:{local_cloud.ports.turn_tls} {squid.username}",
    )
