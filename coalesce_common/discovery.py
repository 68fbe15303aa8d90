"""Finding receivers on the LAN by mDNS/DNS-SD (python-zeroconf): ``_coalesce._tcp.local.``.

A receiver publishes its name, id, protocol version, whether it needs a PIN and the SHA-256 fingerprint
of its TLS certificate in TXT. A sender that found a receiver this way pins that fingerprint, so even an
open room (no PIN) cannot be impersonated by a relay with another certificate.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

import ifaddr
from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from coalesce_common import PROTOCOL_VERSION
from coalesce_common.errors import DiscoveryError

logger = logging.getLogger(__name__)

SERVICE_TYPE = "_coalesce._tcp.local."


@dataclass(frozen=True)
class ReceiverInfo:
    """A receiver as advertised by mDNS."""

    name: str
    receiver_id: str
    addresses: tuple[str, ...]
    port: int
    pin_required: bool
    fingerprint: str
    version: int = PROTOCOL_VERSION

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "id": self.receiver_id,
            "addresses": list(self.addresses),
            "port": self.port,
            "pin_required": self.pin_required,
            "fingerprint": self.fingerprint,
            "version": self.version,
        }


def local_ipv4_addresses(include_loopback: bool = False) -> list[str]:
    """This host's IPv4 addresses, for the room display and the mDNS record."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and (include_loopback or not ip.ip.startswith("127.")):
                found.append(ip.ip)
    return found or ["127.0.0.1"]


def _instance_label(name: str) -> str:
    label = re.sub(r"[^\w \-]", "", name).strip()[:40] or "Coalesce"
    return label


class ReceiverPublisher:
    """Publishes one receiver; ``aclose()`` withdraws it (goodbye packets)."""

    def __init__(self, info: ReceiverInfo, *, interfaces: list[str] | None = None) -> None:
        self._info = info
        self._interfaces = interfaces
        self._aiozc: AsyncZeroconf | None = None
        self._service: AsyncServiceInfo | None = None

    async def start(self) -> None:
        info = self._info
        self._aiozc = AsyncZeroconf(
            interfaces=self._interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only
        )
        host_label = re.sub(r"[^a-z0-9-]", "-", info.receiver_id.lower())[:40]
        self._service = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{_instance_label(info.name)}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in info.addresses],
            port=info.port,
            properties={
                "v": str(info.version),
                "id": info.receiver_id,
                "name": info.name[:64],
                "pin": "1" if info.pin_required else "0",
                "fp": info.fingerprint,
            },
            server=f"coalesce-{host_label}.local.",
        )
        await (await self._aiozc.async_register_service(self._service, allow_name_change=True))
        logger.info("published %r on mDNS at %s:%d", info.name, ",".join(info.addresses), info.port)

    async def aclose(self) -> None:
        aiozc, self._aiozc = self._aiozc, None
        if aiozc is None:
            return
        try:
            await aiozc.async_unregister_all_services()
        finally:
            await aiozc.async_close()


def _parse(info: AsyncServiceInfo) -> ReceiverInfo | None:
    props = info.decoded_properties
    try:
        version = int(props.get("v") or 0)
    except ValueError:
        return None
    fingerprint = props.get("fp") or ""
    if not fingerprint or info.port is None:
        return None
    name = props.get("name") or info.name.removesuffix("." + SERVICE_TYPE)
    return ReceiverInfo(
        name=name,
        receiver_id=props.get("id") or "",
        addresses=tuple(info.parsed_addresses(IPVersion.V4Only)),
        port=int(info.port),
        pin_required=props.get("pin") == "1",
        fingerprint=fingerprint,
        version=version,
    )


async def browse(
    timeout: float = 3.0,
    *,
    interfaces: list[str] | None = None,
    until: Callable[[ReceiverInfo], bool] | None = None,
) -> list[ReceiverInfo]:
    """Return the receivers that answer within ``timeout`` seconds, sorted by name.

    With ``until``, return as soon as a receiver for which it is true has been found.
    """
    aiozc = AsyncZeroconf(interfaces=interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
    names: set[str] = set()
    seen: asyncio.Event = asyncio.Event()

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            names.add(name)
            seen.set()

    browser = AsyncServiceBrowser(aiozc.zeroconf, [SERVICE_TYPE], handlers=[on_change])
    found: dict[str, ReceiverInfo] = {}
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pending: set[str] = set()
        while (left := deadline - loop.time()) > 0:
            seen.clear()
            for name in list(names - pending):
                pending.add(name)
                info = AsyncServiceInfo(SERVICE_TYPE, name)
                if await info.async_request(aiozc.zeroconf, int(max(left, 0.1) * 1000)):
                    parsed = _parse(info)
                    if parsed is not None and parsed.addresses:
                        found[name] = parsed
                        if until is not None and until(parsed):
                            return sorted(found.values(), key=lambda r: r.name.lower())
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(seen.wait(), left)
            except TimeoutError:
                break
    finally:
        await browser.async_cancel()
        await aiozc.async_close()
    return sorted(found.values(), key=lambda r: r.name.lower())


async def find(name: str, timeout: float = 5.0, *, interfaces: list[str] | None = None) -> ReceiverInfo:
    """Find the receiver called ``name`` (case-insensitive); raise :class:`DiscoveryError` if absent."""
    wanted = name.lower()
    receivers = await browse(timeout, interfaces=interfaces, until=lambda r: r.name.lower() == wanted)
    for receiver in receivers:
        if receiver.name.lower() == wanted:
            return receiver
    known = ", ".join(repr(r.name) for r in receivers) or "none"
    raise DiscoveryError(
        f"No receiver called {name!r} answered on this network within {timeout:g} s (found: {known}). "
        "If mDNS is blocked here, use --to with the address shown on the room display."
    )
