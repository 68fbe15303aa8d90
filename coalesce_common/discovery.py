"""Finding receivers on the LAN by mDNS/DNS-SD (python-zeroconf): ``_coalesce._tcp.local.``.

A receiver publishes its name, id, protocol version, whether it needs a PIN and the SHA-256 fingerprint
of its TLS certificate in TXT. A sender that found a receiver this way pins that fingerprint, so even an
open room (no PIN) cannot be impersonated by a relay with another certificate.

:class:`ReceiverPublisher` advertises one receiver. :class:`ReceiverBrowser` is a sender's long-lived view of
the network: it reports receivers as zeroconf sees them come, change and go; :func:`browse` and
:func:`find` are one-off looks built on it, for the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import ifaddr
from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from coalesce_common import PROTOCOL_VERSION
from coalesce_common.errors import DiscoveryError

logger = logging.getLogger(__name__)

SERVICE_TYPE = "_coalesce._tcp.local."
RESOLVE_TIMEOUT = 3.0  # seconds to wait for a found receiver's address, port and TXT
RECORD_TTL = 120  # seconds; see ReceiverPublisher


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
    """Publishes one receiver; ``aclose()`` withdraws it (goodbye packets), and browsers drop it at once.

    A receiver that vanishes without a goodbye (a power cut) stays listed until its records expire in the
    browsers' caches. Every record gets the two-minute TTL RFC 6762 gives host records instead of the 75
    minutes zeroconf gives PTR and TXT by default; python-zeroconf browsers raise a PTR's TTL to at least
    1125 s, so a sender of ours forgets such a receiver after about 19 minutes, Bonjour and Avahi sooner.
    """

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
            host_ttl=RECORD_TTL,
            other_ttl=RECORD_TTL,
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


class ReceiverListener(Protocol):
    """Where a :class:`ReceiverBrowser` reports; ``key`` is the receiver's mDNS instance name (unique)."""

    def found(self, key: str, info: ReceiverInfo) -> None:
        """A receiver appeared, or changed what it advertises."""

    def lost(self, key: str) -> None:
        """A receiver reported found is gone: it said goodbye, or its records expired unanswered."""


class ReceiverBrowser:
    """Watches the network for receivers, for as long as it is open, with one zeroconf service browser.

    zeroconf says when a service appears, changes or goes (a goodbye packet, or its PTR record expiring
    after the browser's refresh queries went unanswered). Each appearance or change is resolved (address,
    port, TXT) and reported as ``found``; ``lost`` follows only a receiver that was reported found. A change
    that cannot be resolved in time keeps what was reported; one that no longer parses as a receiver is lost.
    Listeners are called on the event loop the browser was started on.
    """

    def __init__(
        self,
        listener: ReceiverListener,
        *,
        interfaces: list[str] | None = None,
        resolve_timeout: float = RESOLVE_TIMEOUT,
    ) -> None:
        self._listener = listener
        self._interfaces = interfaces
        self._resolve_timeout = resolve_timeout
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._found: set[str] = set()

    async def start(self) -> None:
        """Start browsing; ``OSError`` when this computer cannot open mDNS sockets."""
        aiozc = AsyncZeroconf(interfaces=self._interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
        self._aiozc = aiozc
        self._browser = AsyncServiceBrowser(aiozc.zeroconf, [SERVICE_TYPE], handlers=[self._on_change])

    async def aclose(self) -> None:
        """Stop browsing and resolving; nothing is reported afterwards. Idempotent."""
        browser, self._browser = self._browser, None
        aiozc, self._aiozc = self._aiozc, None
        resolving = list(self._resolving.values())
        self._resolving.clear()
        for task in resolving:
            task.cancel()
        await asyncio.gather(*resolving, return_exceptions=True)
        if browser is not None:
            await browser.async_cancel()
        if aiozc is not None:
            await aiozc.async_close()

    async def __aenter__(self) -> ReceiverBrowser:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        pending = self._resolving.pop(name, None)
        if pending is not None:
            pending.cancel()  # superseded by what zeroconf says now
        if state_change is ServiceStateChange.Removed:
            self._lose(name)
            return
        task = asyncio.ensure_future(self._resolve(zeroconf, name))
        self._resolving[name] = task
        task.add_done_callback(lambda done: self._resolved(name, done))

    async def _resolve(self, zeroconf: Zeroconf, name: str) -> None:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(zeroconf, int(self._resolve_timeout * 1000)):
            logger.debug("%s did not answer with its address in time", name)
            return
        parsed = _parse(info)
        if parsed is None or not parsed.addresses:
            logger.debug("%s does not advertise a usable receiver", name)  # untrusted: not at warning level
            self._lose(name)
            return
        self._found.add(name)
        self._listener.found(name, parsed)

    def _resolved(self, name: str, task: asyncio.Task[None]) -> None:
        if self._resolving.get(name) is task:
            del self._resolving[name]
        if not task.cancelled() and task.exception() is not None:
            logger.error("resolving %s failed", name, exc_info=task.exception())

    def _lose(self, name: str) -> None:
        if name in self._found:
            self._found.discard(name)
            self._listener.lost(name)


class _Collector:
    """The receivers a one-off :func:`browse` has seen; ``wanted`` is set once ``until`` holds for one."""

    def __init__(self, until: Callable[[ReceiverInfo], bool] | None) -> None:
        self._until = until
        self.receivers: dict[str, ReceiverInfo] = {}
        self.wanted = asyncio.Event()

    def found(self, key: str, info: ReceiverInfo) -> None:
        self.receivers[key] = info
        if self._until is not None and self._until(info):
            self.wanted.set()

    def lost(self, key: str) -> None:
        self.receivers.pop(key, None)


async def browse(
    timeout: float = 3.0,
    *,
    interfaces: list[str] | None = None,
    until: Callable[[ReceiverInfo], bool] | None = None,
) -> list[ReceiverInfo]:
    """Return the receivers that answer within ``timeout`` seconds, sorted by name.

    With ``until``, return as soon as a receiver for which it is true has been found.
    """
    collector = _Collector(until)
    async with ReceiverBrowser(collector, interfaces=interfaces, resolve_timeout=timeout):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.wanted.wait(), timeout)
    return sorted(collector.receivers.values(), key=lambda r: r.name.lower())


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
