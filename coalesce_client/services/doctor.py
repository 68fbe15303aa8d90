"""``coalesce doctor``: can this computer reach the cloud, and by which way? A report for users and IT.

For the REST API, XMPP and TURN it says which route the proxy resolver picks and whether each hop
works; then whether UDP gets out (STUN), the round trip to each TURN region and each rung of the media
ladder (:mod:`coalesce_common.cloud.ladder`: UDP, TURN over TCP, TURN over TLS, all tried to the end) with
the way a share would take, and optionally whether a meeting ID resolves. Nothing here changes any setting.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from coalesce_common.cloud import ladder
from coalesce_common.cloud.rest import CloudClient, DeviceCredentials
from coalesce_common.cloud.turn import order_by_rtt, parse_servers
from coalesce_common.errors import CoalesceError
from coalesce_common.net.connector import open_socket
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver
from coalesce_common.net.turn import TurnRoute
from coalesce_common.net.why import describe_ca_file_error, describe_os_error
from coalesce_common.signaling.xmpp import XmppSignaling


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: information only
    detail: str

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "info"}[self.ok]
        return f"[{mark}] {self.name}: {self.detail}"


async def _route(
    resolver: ProxyResolver, name: str, host: str, port: int, tls: ssl.SSLContext | None
) -> Check:
    try:
        hops = await resolver.resolve(host, port)
    except CoalesceError as exc:
        return Check(name, False, str(exc))
    route = " then ".join(h.label for h in hops)
    try:
        sock = await open_socket(host, port, resolver, timeout=8)
    except CoalesceError as exc:
        return Check(name, False, f"via {route}: {exc}")
    try:
        if tls is not None:
            loop = asyncio.get_running_loop()
            transport, _ = await asyncio.wait_for(
                loop.create_connection(asyncio.Protocol, sock=sock, ssl=tls, server_hostname=host), 8
            )
            transport.close()
        else:
            sock.close()
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        sock.close()
        return Check(
            name, False, f"via {route}: TCP works but TLS failed: {describe_os_error(exc, host, port)}"
        )
    return Check(name, True, f"{host}:{port} via {route}")


async def diagnose(
    credentials: DeviceCredentials | None, proxy: ProxyConfig, meeting_id: str | None = None
) -> list[Check]:
    checks = [Check("proxy settings", None, proxy.describe())]
    try:
        resolver = ProxyResolver(proxy)
    except CoalesceError as exc:
        return [*checks, Check("proxy settings", False, str(exc))]
    if credentials is None:
        return [
            *checks,
            Check("enrollment", False, "this computer is not enrolled: run coalesce enroll URL CODE"),
        ]
    tls = ssl.create_default_context()
    if credentials.ca_file:
        try:
            tls.load_verify_locations(credentials.ca_file)
        except (OSError, ssl.SSLError) as exc:
            why = describe_ca_file_error(exc, credentials.ca_file)
            return [*checks, Check("CA certificate", False, f"{why}; enroll again with the right --ca")]
    api = urlsplit(credentials.api_url)
    checks.append(await _route(resolver, "REST API", api.hostname or "", api.port or 443, tls))
    api_client = CloudClient(
        credentials.api_url, token=credentials.token, ca_file=credentials.ca_file, resolver=resolver
    )
    async with api_client:
        try:
            turn = await api_client.turn_credentials()
            checks.append(
                Check("REST API login", True, f"device {credentials.device_id} is in good standing")
            )
        except CoalesceError as exc:
            checks.append(Check("REST API login", False, str(exc)))
            turn = {}
        if meeting_id:
            try:
                meeting = await api_client.resolve_meeting(meeting_id)
                checks.append(
                    Check("meeting", True, f"{meeting_id} is {meeting['box'].get('name', 'a room')}")
                )
            except CoalesceError as exc:
                checks.append(Check("meeting", False, str(exc)))
    xmpp = credentials.xmpp
    stream = XmppSignaling(xmpp, resolver=resolver)
    try:
        await stream.connect(10)
        checks.append(Check("XMPP", True, f"{xmpp.host}:{xmpp.port} signed in with {stream.mechanism}"))
    except CoalesceError as exc:
        checks.append(Check("XMPP", False, str(exc)))
    finally:
        await stream.aclose()
    servers = await order_by_rtt(parse_servers(turn)) if turn else []
    udp = [s for s in servers if math.isfinite(s.rtt)]
    if servers:
        checks.append(
            Check(
                "UDP",
                bool(udp),
                "STUN answered: UDP gets out" if udp else "no STUN answer: UDP is blocked here",
            )
        )
    for server in servers:
        rtt = f"{server.rtt * 1000:.0f} ms" if math.isfinite(server.rtt) else "no UDP answer"
        checks.append(Check(f"TURN {server.region} round trip", None, rtt))
        via = await ladder.proxy_on_the_way(resolver, server)
        route = TurnRoute(ca_file=credentials.ca_file, resolver=resolver)
        found = await ladder.climb(server, route, via=via, every_rung=True)
        for step in found.steps:
            name = f"TURN {server.region} over {ladder.NAMES[step.transport]}"
            detail = f"{step.detail} via {via}" if via and step.ok else step.detail
            checks.append(Check(name, step.ok, detail))
        if found.chosen is None:
            checks.append(Check(f"media to {server.region}", False, found.failure()))
        else:
            path = (
                "peer to peer when the room can be reached, else relayed "
                if found.chosen == "udp"
                else "relayed "
            )
            checks.append(Check(f"media to {server.region}", None, path + found.relay_path()))
    return checks
