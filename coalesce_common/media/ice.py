"""Which local addresses ICE offers as host candidates: the one place Coalesce changes aioice's choice.

aioice lists every interface address except 127.0.0.1 and ::1. :func:`host_addresses` filters that list
by the current :class:`HostAddressPolicy`, which by default

- adds 127.0.0.1, so a sender and a receiver on the same machine (demos, tests, a receiver's own
  preview) connect over loopback even when the machine has no other interface up; and
- with ``only``, keeps nothing but the listed addresses, so tests can pin every packet to loopback and a
  box can keep media off interfaces that must not carry it.

The policy is chosen with :func:`set_host_addresses_policy`; until some code chooses one, it comes from
``COALESCE_ICE_HOST_ADDRESSES`` (comma-separated addresses for ``only``). It is process-wide because
aioice's gathering is. :mod:`coalesce_common.media.aiortc_patches` puts :func:`host_addresses` in front
of aioice's own function.

Server-reflexive and relay candidates are not affected, except that no STUN query is sent from 127.0.0.1 to
a server elsewhere (:func:`stun_can_answer`); tests that must stay on loopback also pass
``RTCConfiguration(iceServers=[])``, since aiortc otherwise adds a public STUN server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass

from coalesce_common.discovery import local_ipv4_addresses

logger = logging.getLogger(__name__)

IPV4_LOOPBACK = "127.0.0.1"

HOST_ADDRESSES_ENV = "COALESCE_ICE_HOST_ADDRESSES"


@dataclass(frozen=True)
class HostAddressPolicy:
    include_loopback: bool = True
    only: tuple[str, ...] | None = None
    """When set, the only addresses offered (those of them this machine has)."""

    @classmethod
    def from_environment(cls) -> HostAddressPolicy:
        only = tuple(a.strip() for a in os.environ.get(HOST_ADDRESSES_ENV, "").split(",") if a.strip())
        return cls(only=only or None)


_chosen: HostAddressPolicy | None = None


def set_host_addresses_policy(include_loopback: bool = True, only: list[str] | None = None) -> None:
    """Make ICE offer 127.0.0.1 too (``include_loopback``) and, with ``only``, nothing but those addresses.

    Applies process-wide to connections that gather candidates from now on, and replaces any earlier
    choice (including the one from the environment).
    """
    global _chosen
    _chosen = HostAddressPolicy(include_loopback, None if only is None else tuple(only))
    logger.debug("ICE host address policy: %s", _chosen)


def reset_host_addresses_policy() -> None:
    """Forget the chosen policy: back to the default (loopback added, ``COALESCE_ICE_HOST_ADDRESSES``)."""
    global _chosen
    _chosen = None


def current_policy() -> HostAddressPolicy:
    return _chosen or HostAddressPolicy.from_environment()


def host_addresses(found: list[str], *, use_ipv4: bool) -> list[str]:
    """The addresses to offer, given those aioice ``found`` on the interfaces, by :func:`current_policy`."""
    policy = current_policy()
    addresses = list(found)
    if policy.include_loopback and use_ipv4 and IPV4_LOOPBACK not in addresses:
        # Last, so real interfaces stay first in the candidate list.
        addresses.append(IPV4_LOOPBACK)
    if policy.only is not None:
        missing = [a for a in policy.only if a not in addresses]
        if missing:
            logger.warning("ICE host addresses %s are not available here", ", ".join(missing))
        addresses = [a for a in addresses if a in policy.only]
    return addresses


async def stun_can_answer(local_host: str, stun_server: tuple[str, int]) -> bool:
    """Whether a STUN query from a socket bound to ``local_host`` can reach ``stun_server`` at all.

    A loopback socket cannot send beyond the machine (the kernel drops it), and aioice waits up to 5 s for
    every server-reflexive answer before the offer leaves: asked from the 127.0.0.1 candidate this policy
    adds, every share through a cloud on another machine would start 5 s late.
    """
    if not ipaddress.ip_address(local_host).is_loopback:
        return True
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            stun_server[0], stun_server[1], family=socket.AF_INET, type=socket.SOCK_DGRAM
        )
    except OSError:
        return True  # let aioice find out and say so
    return any(ipaddress.ip_address(info[4][0]).is_loopback for info in found)


def offered_addresses() -> frozenset[str]:
    """This computer's IPv4 addresses that ICE may offer now (the policy's ``only`` applied, quietly):
    a change means the network changed under a live share. Reads the interfaces: call it in a thread."""
    only = current_policy().only
    return frozenset(a for a in local_ipv4_addresses() if only is None or a in only)
