"""The ICE server URLs of a TURN region. (The credentials themselves come from
``coalesce_cloud.servers.coturn.turn_rest_credentials``, next to the coturn config that checks them.)"""

from __future__ import annotations

from coalesce_cloud.core.config import TurnRegion


def region_urls(region: TurnRegion) -> list[str]:
    """STUN, TURN over UDP and TCP, and TURN over TLS, in that order."""
    host = f"[{region.host}]" if ":" in region.host and not region.host.startswith("[") else region.host
    return [
        f"stun:{host}:{region.port}",
        f"turn:{host}:{region.port}?transport=udp",
        f"turn:{host}:{region.port}?transport=tcp",
        f"turns:{host}:{region.tls_port}?transport=tcp",
    ]
