"""The ICE server URLs of a TURN region. (The credentials themselves come from
``coalesce_cloud.servers.coturn.turn_rest_credentials``, next to the coturn config that checks them.)"""

from __future__ import annotations

import ipaddress

from coalesce_cloud.core.config import TurnRegion


def region_urls(region: TurnRegion) -> list[str]:
    """STUN, TURN over UDP and TCP, and TURN over TLS (at ``tls_host`` when set), in that order."""
    host, tls_host = _bracketed(region.host), _bracketed(region.tls_name)
    return [
        f"stun:{host}:{region.port}",
        f"turn:{host}:{region.port}?transport=udp",
        f"turn:{host}:{region.port}?transport=tcp",
        f"turns:{tls_host}:{region.tls_port}?transport=tcp",
    ]


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def tls_at_an_address(region: TurnRegion) -> bool:
    """Whether the region's turns: URL names an IP address, which Firefox does not use (it needs a name)."""
    try:
        ipaddress.ip_address(region.tls_name.strip("[]"))
    except ValueError:
        return False
    return True
