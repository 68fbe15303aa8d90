"""The aioice adapter: TURN over TLS through a proxy and with the cloud's CA, in aioice's own ICE agent.

This fails if an aioice upgrade stops looking ``create_turn_endpoint`` up at call time, renames the
TURN protocol classes, or changes ``TurnTransport._connect``: then no relay candidate is gathered.
"""

from __future__ import annotations

from collections.abc import Iterator

import aioice
import aioice.turn
import pytest

from coalesce_cloud.servers.coturn import turn_rest_credentials
from coalesce_cloud.stack import LocalCloud
from coalesce_common.net import turn as turn_adapter
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver
from tests.proxy.lab import Netns, SquidFactory


@pytest.fixture
def restore_aioice() -> Iterator[None]:
    yield
    aioice.turn.create_turn_endpoint = turn_adapter._ORIGINAL


async def gather_relay(cloud: LocalCloud) -> list[aioice.Candidate]:
    secret = (cloud.state_dir / "turn-secret").read_text().strip()
    username, password = turn_rest_credentials(secret, "adapter-test", 300)
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
        await connection.gather_candidates()
        return [c for c in connection.local_candidates if c.type == "relay"]
    finally:
        await connection.close()


async def test_turn_over_tls_goes_through_the_proxy_and_trusts_the_cloud_ca(
    local_cloud: LocalCloud, netns: Netns, squid_factory: SquidFactory, restore_aioice: None
) -> None:
    squid = squid_factory(auth=True)
    turn_adapter.install_turn_transport(
        local_cloud.ca_file, ProxyResolver(ProxyConfig(mode="manual", url=squid.url))
    )
    assert aioice.turn.create_turn_endpoint is turn_adapter._create_turn_endpoint
    relays = await gather_relay(local_cloud)
    assert relays, "no relay candidate: the adapter no longer reaches aioice's TURN client"
    squid.wait_for_access(
        rf"TCP_TUNNEL/200 .* CONNECT 127\.0\.0\.1:{local_cloud.ports.turn_tls} {squid.username}"
    )


async def test_without_the_cloud_ca_turn_over_tls_is_refused(
    local_cloud: LocalCloud, restore_aioice: None
) -> None:
    turn_adapter.install_turn_transport(None)  # system CAs only: our private CA's certificate fails
    assert await gather_relay(local_cloud) == []
    turn_adapter.install_turn_transport(local_cloud.ca_file)
    assert await gather_relay(local_cloud)
