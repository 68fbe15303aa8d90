"""The cloud's TURN relay for a share on the LAN, when this computer is enrolled.

On Wi-Fi with client isolation (common in offices and hotels) a laptop reaches the room display's TLS port
but no UDP passes between them, and a LAN share's media would fail. When the laptop is enrolled with the
cloud the room display is linked to, the share also offers relay candidates through the cloud's TURN
(found by the same ladder as a remote share: UDP, else TURN over TCP, else over TLS) and the room offers
its own; ICE keeps the direct pair when it works and takes the relay when not. Nothing here runs for a
computer that is not enrolled, and any failure leaves the share as it was: LAN only.
"""

from __future__ import annotations

import asyncio
import logging

from coalesce_client.services.remote import KEYRING_SERVICE
from coalesce_client.services.share import Relay
from coalesce_common.cloud import ladder, store
from coalesce_common.cloud.rest import CloudClient
from coalesce_common.cloud.turn import order_by_rtt, parse_servers
from coalesce_common.errors import CoalesceError
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver
from coalesce_common.net.turn import TurnRoute

logger = logging.getLogger(__name__)


async def cloud_relay(proxy: ProxyConfig) -> Relay | None:
    """The enrolled cloud's TURN relay by the best rung this network allows, as ICE servers and how media
    through it travels; ``None`` when this computer is not enrolled or the relay cannot be had (the share
    then stays LAN only). A :data:`~coalesce_client.services.share.RelayFinder` for ``relay_finder``."""
    try:
        credentials = await asyncio.to_thread(store.load, KEYRING_SERVICE)
        if credentials is None:
            return None
        resolver = ProxyResolver(proxy)
        async with CloudClient(
            credentials.api_url, token=credentials.token, ca_file=credentials.ca_file, resolver=resolver
        ) as api:
            servers = await order_by_rtt(parse_servers(await api.turn_credentials()))
        if not servers:
            return None
        route = TurnRoute(ca_file=credentials.ca_file, resolver=resolver)
        found = await ladder.climb(servers[0], route)
    except CoalesceError as exc:
        logger.info("no cloud relay for this LAN share: %s", exc)
        return None
    if found.chosen is None:
        logger.info("no cloud relay for this LAN share: %s", found.failure())
        return None
    return Relay(route.attach(servers[0].ice_servers(found.chosen)), found.relay_path())
