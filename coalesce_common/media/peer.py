"""Peer connections built the Coalesce way: explicit ICE servers, tuned encoders, loopback candidates.

aiortc falls back to a public STUN server when ``iceServers`` is ``None``; on the LAN we want no
traffic beyond the two peers, so every connection is made here with an explicit list.

``COALESCE_ICE_HOST_ADDRESSES`` (comma-separated) restricts the host candidates to those addresses,
for tests and for boxes with interfaces that must not carry media; it applies only when no code has
chosen a policy itself.
"""

from __future__ import annotations

import os

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from coalesce_common.media import ice
from coalesce_common.media.encoding import tune_encoders
from coalesce_common.media.receiving import tune_receiving


def _ensure_host_address_policy() -> None:
    if aioice.ice.get_host_addresses is not ice._AIOICE_GET_HOST_ADDRESSES:
        return  # someone chose a policy already: keep it
    only = [a.strip() for a in os.environ.get("COALESCE_ICE_HOST_ADDRESSES", "").split(",") if a.strip()]
    ice.set_host_addresses_policy(only=only or None)


def new_peer_connection(
    ice_servers: list[RTCIceServer] | None = None, *, relay_only: bool = False
) -> RTCPeerConnection:
    """A peer connection with ``ice_servers`` (none by default: LAN, host candidates only).

    ``relay_only`` gathers nothing but TURN relay candidates: the path when UDP is blocked or a proxy is
    the only way out.
    """
    tune_encoders()
    tune_receiving()
    _ensure_host_address_policy()
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers or []), iceTransportPolicy=policy))
