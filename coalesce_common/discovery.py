"""Finding receivers on the LAN by mDNS/DNS-SD (python-zeroconf): ``_coalesce._tcp.local.``.

A receiver publishes its name, id, protocol version, whether it needs a PIN and the SHA-256 fingerprint
of its TLS certificate in TXT. A sender that found a receiver this way pins that fingerprint, so even an
open room (no PIN) cannot be impersonated by a relay with another certificate.

:class:`ReceiverPublisher` advertises one receiver. :class:`ReceiverBrowser` is a sender's long-lived view of
the network: it reports receivers as zeroconf sees them come, change and go, and confirms every few seconds
that the ones it listed still answer; :func:`browse` and :func:`find` are one-off looks built on it, for
the command line.
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

# zeroconf exports its DNS classes at the top level without listing them in __all__
from zeroconf import (  # type: ignore[attr-defined]
    DNSOutgoing,
    DNSPointer,
    DNSQuestion,
    DNSService,
    DNSText,
    InterfaceChoice,
    IPVersion,
    RecordUpdate,
    RecordUpdateListener,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from coalesce_common import PROTOCOL_VERSION
from coalesce_common.errors import DiscoveryError
from coalesce_common.protocol.messages import AccessMode

logger = logging.getLogger(__name__)

SERVICE_TYPE = "_coalesce._tcp.local."
RESOLVE_TIMEOUT = 3.0  # seconds to wait for a found receiver's address, port and TXT
RECORD_TTL = 120  # seconds; see ReceiverPublisher
# How a browser confirms that the receivers it lists still answer (see ReceiverBrowser). The timeout leaves
# room for python-zeroconf's answer aggregation (up to 0.62 s when one query asks several questions).
CONFIRM_INTERVAL = 3.0  # seconds between two confirmation rounds
CONFIRM_TIMEOUT = 1.5  # seconds a round waits for the answers
CONFIRM_MISSES = 2  # unanswered rounds in a row before a receiver is reported lost

# DNS numbers zeroconf keeps private: a standard query (RFC 1035 §4.1.1), SRV (RFC 2782), class IN.
_FLAGS_QUERY = 0
_TYPE_SRV = 33
_CLASS_IN = 1


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
    mode: AccessMode | None = None
    """Who may share (TXT ``mode``); ``None`` from a receiver too old to say, read from ``pin_required``."""

    @property
    def access(self) -> AccessMode:
        if self.mode is not None:
            return self.mode
        return AccessMode.PIN if self.pin_required else AccessMode.OPEN

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "id": self.receiver_id,
            "addresses": list(self.addresses),
            "port": self.port,
            "pin_required": self.pin_required,
            "mode": self.access.value,
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


ONE_DOT_LEADER = "\u2024"
"""Stands in for "." in instance names: python-zeroconf splits every name it writes on dots (it has no
escaped-dot labels), so "Room 4.12" would go out as the labels "Room 4" and "12". U+2024 looks the same in
Bonjour and Avahi browsers; the TXT record's ``name`` carries the exact name, which is what Coalesce shows."""
MAX_LABEL_BYTES = 63
"""A DNS label's limit (RFC 1035), which the instance name must fit in UTF-8."""


def instance_label(name: str) -> str:
    """The mDNS instance name for a room called ``name``: the name itself, its dots as U+2024, control
    characters and backslashes dropped, cut to a DNS label's 63 bytes on a character boundary."""
    label = "".join(c for c in name.replace(".", ONE_DOT_LEADER) if c.isprintable() and c != "\\").strip()
    cut = label.encode()[:MAX_LABEL_BYTES].decode(errors="ignore").strip()
    return cut or "Coalesce"


class ReceiverPublisher:
    """Publishes one receiver; ``aclose()`` withdraws it (goodbye packets), and browsers drop it at once.

    A receiver that vanishes without a goodbye (a power cut) stops answering: a :class:`ReceiverBrowser`
    drops it within seconds. Other browsers (Bonjour, Avahi) keep it until its records expire in their
    caches, so every record gets the two-minute TTL RFC 6762 gives host records instead of the 75 minutes
    zeroconf gives PTR and TXT by default.
    """

    def __init__(self, info: ReceiverInfo, *, interfaces: list[str] | None = None) -> None:
        self._info = info
        self._interfaces = interfaces
        self._aiozc: AsyncZeroconf | None = None
        self._service: AsyncServiceInfo | None = None

    @property
    def info(self) -> ReceiverInfo:
        return self._info

    def _service_info(self, info: ReceiverInfo, name: str | None = None) -> AsyncServiceInfo:
        host_label = re.sub(r"[^a-z0-9-]", "-", info.receiver_id.lower())[:40]
        return AsyncServiceInfo(
            SERVICE_TYPE,
            name or f"{instance_label(info.name)}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in info.addresses],
            port=info.port,
            properties={
                "v": str(info.version),
                "id": info.receiver_id,
                "name": info.name[:64],
                "pin": "1" if info.pin_required else "0",
                "mode": info.access.value,
                "fp": info.fingerprint,
            },
            server=f"coalesce-{host_label}.local.",
            host_ttl=RECORD_TTL,
            other_ttl=RECORD_TTL,
        )

    async def start(self) -> None:
        info = self._info
        self._aiozc = AsyncZeroconf(
            interfaces=self._interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only
        )
        self._service = self._service_info(info)
        await (await self._aiozc.async_register_service(self._service, allow_name_change=True))
        logger.info("published %r on mDNS at %s:%d", info.name, ",".join(info.addresses), info.port)

    async def update(self, info: ReceiverInfo) -> None:
        """Announce changed TXT (a new PIN, rotation or access mode) under the same name; browsers hear it
        at once (zeroconf multicasts the new records)."""
        self._info = info
        if self._aiozc is None or self._service is None:
            return
        self._service = self._service_info(info, self._service.name)  # the name zeroconf settled on
        await (await self._aiozc.async_update_service(self._service))
        logger.info("mDNS record of %r updated (%s)", info.name, info.access.value)

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
    try:
        mode: AccessMode | None = AccessMode(props.get("mode") or "")
    except ValueError:
        mode = None  # an older receiver, or a mode this sender does not know: read "pin" instead
    return ReceiverInfo(
        name=name,
        receiver_id=props.get("id") or "",
        addresses=tuple(info.parsed_addresses(IPVersion.V4Only)),
        port=int(info.port),
        pin_required=props.get("pin") == "1",
        fingerprint=fingerprint,
        version=version,
        mode=mode,
    )


class ReceiverListener(Protocol):
    """Where a :class:`ReceiverBrowser` reports; ``key`` is the receiver's mDNS instance name (unique)."""

    def found(self, key: str, info: ReceiverInfo) -> None:
        """A receiver appeared, changed what it advertises, or answers again after it was lost."""

    def lost(self, key: str) -> None:
        """A receiver reported found is gone: it said goodbye, or it stopped answering."""


@dataclass
class _Presence:
    """What a browser knows of one receiver zeroconf lists: when it was last heard, how many rounds missed."""

    name: str  # the instance name as zeroconf spells it
    heard: float  # loop time of the newest record heard from it
    misses: int = 0  # confirmation rounds in a row in which nothing was heard from it


class _Hearing(RecordUpdateListener):
    """Tells ``heard`` the (lower-case) instance name of every live SRV, TXT or PTR record that arrives.

    zeroconf calls its record listeners for every record of every response, a refresh of a cached record
    included; goodbyes (TTL 0) are left to the service browser.
    """

    def __init__(self, heard: Callable[[str], None]) -> None:
        super().__init__()
        self._heard = heard

    def async_update_records(self, zc: Zeroconf, now: float, records: list[RecordUpdate]) -> None:
        for update in records:
            record = update.new
            if record.is_expired(now):
                continue
            if isinstance(record, DNSService | DNSText):
                self._heard(record.key)
            elif isinstance(record, DNSPointer):
                self._heard(record.alias_key)


class ReceiverBrowser:
    """Watches the network for receivers, for as long as it is open, with one zeroconf service browser.

    zeroconf says when a service appears, changes, or goes with a goodbye packet. Each appearance or change
    is resolved (address, port, TXT) and reported as ``found``; ``lost`` follows only a receiver that was
    reported found. A change that cannot be resolved in time keeps what was reported; one that no longer
    parses as a receiver is lost. Listeners are called on the event loop the browser was started on.

    A receiver that vanishes without a goodbye (a power cut, its Wi-Fi gone, a crash) is found out by
    *confirmation*: RFC 6762 §10.4's reconfirmation, run on a timer. Every ``confirm_interval`` seconds one
    multicast query asks each receiver zeroconf lists for its SRV record, with no known answer in it (so
    that §7.1's known-answer suppression keeps no responder quiet). A receiver from which nothing fresh is
    heard within ``confirm_timeout`` misses that round; after ``confirm_misses`` rounds in a row it is
    reported lost. Two, as §10.4 asks for two or more queries before a record is flushed: multicast over
    Wi-Fi is sent without acknowledgement, and one lost packet must not hide a room. Anything fresh from it
    counts: the answer to our query, its announcements, and its answers to other hosts' queries, which are
    multicast too; a receiver heard since the last round is not asked again, so a building full of
    senders costs little more than one. A lost receiver that answers again is resolved and found again.
    A receiver gone silent leaves the list 4.5 to 9 s later with the defaults: its second unanswered round
    ends at most two intervals and a timeout after it was last heard, three intervals if that was between
    two rounds.

    Why not the alternatives: zeroconf alone takes about 19 minutes, because it raises a PTR record's TTL
    to at least 1125 s and only re-asks at 75 % of that. ``ServiceInfo.async_request`` cannot confirm:
    it answers from its cache, where SRV, TXT and A records live 120 s, and when it does ask it lists the
    answers it knows, which tells responders to stay silent. python-zeroconf has no §10.4 reconfirmation
    and no §10.5 passive observation (that needs the other hosts' queries, which zeroconf does not hand to
    listeners). A TCP connect to each receiver's signaling port would work too, but every sender would
    connect to every receiver every few seconds, each receiver would log a stream of aborted TLS
    handshakes, and no sender could use another's answer: senders times receivers connections, against one
    small multicast answer per receiver that all senders hear.
    """

    def __init__(
        self,
        listener: ReceiverListener,
        *,
        interfaces: list[str] | None = None,
        resolve_timeout: float = RESOLVE_TIMEOUT,
        confirm_interval: float = CONFIRM_INTERVAL,
        confirm_timeout: float = CONFIRM_TIMEOUT,
        confirm_misses: int = CONFIRM_MISSES,
    ) -> None:
        if not 0 < confirm_timeout < confirm_interval or confirm_misses < 1:
            raise ValueError(
                "confirmations need 0 < confirm_timeout < confirm_interval and confirm_misses >= 1"
            )
        self._listener = listener
        self._interfaces = interfaces
        self._resolve_timeout = resolve_timeout
        self._confirm_interval = confirm_interval
        self._confirm_timeout = confirm_timeout
        self._confirm_misses = confirm_misses
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._hearing = _Hearing(self._heard)
        self._confirming: asyncio.Task[None] | None = None
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._present: dict[str, _Presence] = {}  # by lower-case instance name: DNS names ignore case
        self._found: set[str] = set()

    async def start(self) -> None:
        """Start browsing; ``OSError`` when this computer cannot open mDNS sockets."""
        aiozc = AsyncZeroconf(interfaces=self._interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
        self._aiozc = aiozc
        aiozc.zeroconf.async_add_listener(self._hearing, None)
        self._browser = AsyncServiceBrowser(aiozc.zeroconf, [SERVICE_TYPE], handlers=[self._on_change])
        self._confirming = asyncio.ensure_future(self._confirm_forever(aiozc.zeroconf))
        self._confirming.add_done_callback(self._confirming_ended)

    async def aclose(self) -> None:
        """Stop browsing, confirming and resolving; nothing is reported afterwards. Idempotent."""
        browser, self._browser = self._browser, None
        aiozc, self._aiozc = self._aiozc, None
        confirming, self._confirming = self._confirming, None
        tasks = [*self._resolving.values(), *([confirming] if confirming is not None else [])]
        self._resolving.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if browser is not None:
            await browser.async_cancel()
        if aiozc is not None:
            aiozc.zeroconf.async_remove_listener(self._hearing)
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
            self._present.pop(name.lower(), None)
            self._lose(name)
            return
        self._present[name.lower()] = _Presence(name, heard=asyncio.get_running_loop().time())
        self._start_resolving(zeroconf, name)

    def _start_resolving(self, zeroconf: Zeroconf, name: str) -> None:
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

    # -- confirmation (see the class docstring) -----------------------------------------------------

    def _heard(self, key: str) -> None:
        presence = self._present.get(key)
        if presence is not None:
            presence.heard = asyncio.get_running_loop().time()

    async def _confirm_forever(self, zeroconf: Zeroconf) -> None:
        loop = asyncio.get_running_loop()
        counted = loop.time()  # when the last round's answers were counted
        while True:
            await asyncio.sleep(self._confirm_interval - self._confirm_timeout)
            asked_at = loop.time()
            asked = []
            for presence in self._present.values():
                if presence.heard > counted:
                    self._answered(zeroconf, presence)  # heard meanwhile, without asking
                else:
                    asked.append(presence)
            if asked:
                query = DNSOutgoing(_FLAGS_QUERY)
                for presence in asked:
                    query.add_question(DNSQuestion(presence.name, _TYPE_SRV, _CLASS_IN))
                zeroconf.async_send(query)
            await asyncio.sleep(self._confirm_timeout)  # the time answers have to come, not a poll
            counted = loop.time()
            for presence in asked:
                if self._present.get(presence.name.lower()) is not presence:
                    continue  # zeroconf removed it meanwhile, or it came back as a new service
                if presence.heard >= asked_at:
                    self._answered(zeroconf, presence)
                else:
                    self._missed(presence)

    def _answered(self, zeroconf: Zeroconf, presence: _Presence) -> None:
        presence.misses = 0
        name = presence.name
        if name not in self._found and name not in self._resolving:
            logger.debug("%s answers: resolving it again", name)
            self._start_resolving(zeroconf, name)

    def _missed(self, presence: _Presence) -> None:
        presence.misses += 1
        if presence.misses >= self._confirm_misses and presence.name in self._found:
            logger.info("%s stopped answering: no longer listed", presence.name)
            self._lose(presence.name)

    def _confirming_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("confirming receivers failed", exc_info=task.exception())


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
