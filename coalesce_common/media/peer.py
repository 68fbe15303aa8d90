"""Peer connections built the Coalesce way: explicit ICE servers, our aiortc patches, a TURN route each.

aiortc falls back to a public STUN server when ``iceServers`` is ``None``; on the LAN we want no
traffic beyond the two peers, so every connection is made here with an explicit list. Making one
installs :mod:`coalesce_common.media.aiortc_patches` (tuned encoders, receive tuning, host-address
policy, TURN routes), which fails with a clear error on an aiortc or aioice it was not written for.
"""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from coalesce_common.media import aiortc_patches
from coalesce_common.net import turn


class PeerConnection(RTCPeerConnection):
    """An aiortc peer connection whose TURN connections go by its own ``TurnRoute``, if it has one."""

    def __init__(self, configuration: RTCConfiguration, turn_route: turn.TurnRoute | None = None) -> None:
        super().__init__(configuration)
        self.turn_route = turn_route

    async def setLocalDescription(self, sessionDescription: RTCSessionDescription | None = None) -> None:
        # aiortc gathers candidates, and so opens its TURN allocations, only here.
        with turn.routing(self.turn_route):
            await super().setLocalDescription(sessionDescription)


def new_peer_connection(
    ice_servers: list[RTCIceServer] | None = None, *, relay_only: bool = False
) -> PeerConnection:
    """A peer connection with ``ice_servers`` (none by default: LAN, host candidates only).

    TURN goes by the route the entries carry (:meth:`~coalesce_common.net.turn.TurnRoute.attach`), else
    directly with the system CAs. ``relay_only`` gathers nothing but TURN relay candidates: the path when
    UDP is blocked or a proxy is the only way out.
    """
    aiortc_patches.install()
    servers = list(ice_servers or [])
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return PeerConnection(
        RTCConfiguration(iceServers=servers, iceTransportPolicy=policy), turn.route_of(servers)
    )
