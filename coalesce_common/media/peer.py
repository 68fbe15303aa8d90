"""Peer connections built the Coalesce way: explicit ICE servers, tuned encoders, loopback candidates.

aiortc falls back to a public STUN server when ``iceServers`` is ``None``; on the LAN we want no
traffic beyond the two peers, so every connection is made here with an explicit list.
"""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from coalesce_common.media.encoding import tune_encoders
from coalesce_common.media.ice import set_host_addresses_policy


def new_peer_connection(ice_servers: list[RTCIceServer] | None = None) -> RTCPeerConnection:
    """A peer connection with ``ice_servers`` (none by default: LAN, host candidates only)."""
    tune_encoders()
    set_host_addresses_policy()
    return RTCPeerConnection(RTCConfiguration(iceServers=list(ice_servers or [])))
