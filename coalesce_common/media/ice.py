"""Which local addresses ICE offers as host candidates: the one place Coalesce changes aioice's choice.

aioice gathers host candidates from ``aioice.ice.get_host_addresses``, which lists every interface
address except 127.0.0.1 and ::1. ``Connection.gather_candidates`` looks that function up as a module
attribute at call time, so replacing the attribute changes every connection gathered afterwards
(aiortc does not import it). :func:`set_host_addresses_policy` replaces it with a wrapper that

- adds 127.0.0.1, so a sender and a receiver on the same machine (demos, tests, a receiver's own
  preview) connect over loopback even when the machine has no other interface up; and
- optionally keeps only the listed addresses, so tests can pin every packet to loopback.

Server-reflexive and relay candidates are not affected; tests that must stay on loopback also pass
``RTCConfiguration(iceServers=[])``, since aiortc otherwise adds a public STUN server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import aioice.ice

logger = logging.getLogger(__name__)

IPV4_LOOPBACK = "127.0.0.1"

HostAddresses = Callable[[bool, bool], list[str]]

_AIOICE_GET_HOST_ADDRESSES: HostAddresses = aioice.ice.get_host_addresses


def set_host_addresses_policy(include_loopback: bool = True, only: list[str] | None = None) -> None:
    """Make ICE offer 127.0.0.1 too (``include_loopback``) and, with ``only``, nothing but those addresses.

    Applies process-wide to connections that gather candidates from now on. Calling it again replaces the
    previous policy (it never wraps a wrapper).
    """
    allowed = None if only is None else list(only)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = _AIOICE_GET_HOST_ADDRESSES(use_ipv4, use_ipv6)
        if include_loopback and use_ipv4 and IPV4_LOOPBACK not in addresses:
            # Last, so real interfaces stay first in the candidate list.
            addresses.append(IPV4_LOOPBACK)
        if allowed is not None:
            missing = [a for a in allowed if a not in addresses]
            if missing:
                logger.warning("ICE host addresses %s are not available here", ", ".join(missing))
            addresses = [a for a in addresses if a in allowed]
        return addresses

    aioice.ice.get_host_addresses = get_host_addresses
    logger.debug("ICE host address policy: loopback=%s, only=%s", include_loopback, allowed)


def reset_host_addresses_policy() -> None:
    """Give aioice back its own choice of host addresses."""
    aioice.ice.get_host_addresses = _AIOICE_GET_HOST_ADDRESSES  # type: ignore[assignment]
