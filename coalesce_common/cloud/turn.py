"""Choosing a TURN server: the cloud's regions ordered by this device's STUN round trip.

aiortc uses only the first STUN and the first TURN URL it is given, so the choice of region and of
transport (UDP, TCP, or TLS, the path through firewalls and proxies) is made here, before the peer
connection is built.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

from aioice import stun
from aiortc import RTCIceServer

logger = logging.getLogger(__name__)

TurnTransport = Literal["udp", "tcp", "tls"]


@dataclass(frozen=True)
class TurnServer:
    region: str
    urls: tuple[str, ...]
    username: str
    credential: str
    rtt: float = math.inf  # seconds; inf when the region did not answer STUN

    def __repr__(self) -> str:
        return f"TurnServer(region={self.region!r}, rtt={self.rtt:.3f})"

    def url(self, transport: TurnTransport) -> str | None:
        for url in self.urls:
            scheme = url.split(":", 1)[0]
            if transport == "tls" and scheme == "turns":
                return url
            if scheme == "turn" and transport != "tls":
                wanted = f"transport={transport}"
                if wanted in url or (transport == "udp" and "transport=" not in url):
                    return url
        return None

    def stun_address(self) -> tuple[str, int] | None:
        for url in self.urls:
            if url.startswith("stun:"):
                host, _, port = url[5:].rpartition(":")
                return (host.strip("[]"), int(port)) if host else (url[5:], 3478)
        return None

    def ice_servers(self, transport: TurnTransport) -> list[RTCIceServer]:
        """STUN plus this server's TURN URL for ``transport`` (aiortc takes one of each)."""
        servers: list[RTCIceServer] = []
        stun_url = next((u for u in self.urls if u.startswith("stun:")), None)
        if stun_url and transport == "udp":
            servers.append(RTCIceServer(urls=stun_url))
        turn_url = self.url(transport)
        if turn_url is None:
            raise ValueError(f"region {self.region} offers no TURN over {transport}")
        servers.append(RTCIceServer(urls=turn_url, username=self.username, credential=self.credential))
        return servers


def tls_endpoint(url: str) -> tuple[str, int]:
    """``turns:host:5349?transport=tcp`` → ``("host", 5349)`` (443 when the port is omitted)."""
    rest = url.split(":", 1)[1].split("?", 1)[0]
    host, _, port = rest.rpartition(":")
    return (host.strip("[]"), int(port)) if host else (rest, 443)


def parse_servers(body: dict[str, Any]) -> list[TurnServer]:
    return [
        TurnServer(
            str(s["region"]), tuple(str(u) for u in s["urls"]), str(s["username"]), str(s["credential"])
        )
        for s in body.get("servers", [])
    ]


class _StunProbe(asyncio.DatagramProtocol):
    def __init__(self, transaction_id: bytes) -> None:
        self.transaction_id = transaction_id
        self.answered: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        if message.transaction_id == self.transaction_id and not self.answered.done():
            self.answered.set_result(time.perf_counter())


async def stun_rtt(address: tuple[str, int], timeout: float = 1.0) -> float:
    """Round trip of one STUN binding request to ``address``, in seconds (``inf`` if no answer)."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    loop = asyncio.get_running_loop()
    try:
        transport, probe = await loop.create_datagram_endpoint(
            lambda: _StunProbe(request.transaction_id), remote_addr=address
        )
    except OSError:
        return math.inf
    try:
        sent = time.perf_counter()
        transport.sendto(bytes(request))
        return await asyncio.wait_for(probe.answered, timeout) - sent
    except (TimeoutError, OSError):
        return math.inf
    finally:
        transport.close()


async def order_by_rtt(servers: list[TurnServer], timeout: float = 1.0) -> list[TurnServer]:
    """The servers with their measured STUN round trip, nearest first (unanswered ones last, in order)."""

    async def measure(server: TurnServer) -> TurnServer:
        address = server.stun_address()
        rtt = await stun_rtt(address, timeout) if address else math.inf
        return TurnServer(server.region, server.urls, server.username, server.credential, rtt)

    measured = await asyncio.gather(*(measure(s) for s in servers))
    ordered = sorted(measured, key=lambda s: s.rtt)
    logger.info(
        "TURN regions by round trip: %s", ", ".join(f"{s.region} {s.rtt * 1000:.0f} ms" for s in ordered)
    )
    return ordered
