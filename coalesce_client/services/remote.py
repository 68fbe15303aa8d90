"""Sharing to a room through the cloud: meeting ID → box, TURN credentials, XMPP signaling.

The REST API (authenticated by the device token) turns the meeting ID into the box's XMPP address and
hands out short-lived TURN credentials; the regions are ordered by this device's STUN round trip. The
same signaling and PIN pairing as on the LAN then run as XMPP payloads, and media goes peer to peer
when it can or through TURN (``relay_only`` forces TURN over TLS, the path through proxies).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from coalesce_client.services.share import PinProvider, Share, ShareOptions, ShareTarget
from coalesce_common.cloud import ladder, store
from coalesce_common.cloud.device import connect_xmpp
from coalesce_common.cloud.rest import CloudClient, CloudError, DeviceCredentials
from coalesce_common.cloud.turn import TurnServer, order_by_rtt, parse_servers
from coalesce_common.errors import CoalesceError, MediaError
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver
from coalesce_common.net.turn import TurnRoute
from coalesce_common.protocol import EndReason
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.xmpp import XmppSignaling

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "coalesce-sender"
EARLY_CLIMB = 0.25
"""Seconds without a STUN answer after which the relayed rungs are tried alongside the wait for one."""
STANDING_TIMEOUT = 3.0
"""Seconds to wait for the cloud to say why it ended our connection before saying only that it did."""


class NotEnrolled(CoalesceError):
    def __init__(self) -> None:
        super().__init__(
            "This computer is not enrolled with a Coalesce cloud: run `coalesce enroll URL CODE` first."
        )


@dataclass(frozen=True)
class RemoteOptions:
    relay_only: bool = False
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    stun_timeout: float = 1.0
    xmpp_timeout: float = 15.0


class RemoteShare:
    """A share to a meeting ID: ``async with RemoteShare(...) as remote: await remote.wait_ended()``.

    Or ``start()``, then ``wait_ended()``; ``stop()`` at any time.
    """

    def __init__(
        self,
        meeting_id: str,
        options: ShareOptions,
        *,
        credentials: DeviceCredentials | None = None,
        remote: RemoteOptions = RemoteOptions(),
        pin_provider: PinProvider | None = None,
        on_waiting: Callable[[], None] | None = None,
    ) -> None:
        self.meeting_id = meeting_id
        self.options = options
        self.remote = remote
        self._credentials = credentials
        self._pin_provider = pin_provider
        self._on_waiting = on_waiting
        self._stream: XmppSignaling | None = None
        self._share: Share | None = None
        self._watch: asyncio.Task[None] | None = None
        self.turn_server: TurnServer | None = None
        self.behind_proxy = False
        self.ladder: ladder.Ladder | None = None
        """How media reaches the relay (each rung tried, and the one chosen), once :meth:`start` found it."""
        self.box_name = ""
        self._resolver: ProxyResolver | None = None

    @property
    def share(self) -> Share | None:
        """The share to the box once :meth:`start` has reached it; ``None`` before."""
        return self._share

    async def __aenter__(self) -> RemoteShare:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop(EndReason.FAILED)
            raise

    async def _start(self) -> None:
        credentials = self._credentials or await asyncio.to_thread(store.load, KEYRING_SERVICE)
        if credentials is None:
            raise NotEnrolled()
        resolver = self._resolver = ProxyResolver(self.remote.proxy)
        async with CloudClient(
            credentials.api_url, token=credentials.token, ca_file=credentials.ca_file, resolver=resolver
        ) as api:
            meeting, turn = await asyncio.gather(api.resolve_meeting(self.meeting_id), api.turn_credentials())
        box = meeting["box"]
        self.box_name = str(box.get("name") or "the room display")
        listed = parse_servers(turn)
        if not listed:
            raise MediaError("The cloud offered no TURN relay; ask your IT administrator to configure one.")
        via = await ladder.proxy_on_the_way(resolver, listed[0])
        self.behind_proxy = bool(via)
        if self.behind_proxy:  # HTTP proxies usually CONNECT only to 443: XMPP's direct-TLS port
            credentials = credentials.with_xmpp(credentials.xmpp.via_direct_tls())
        route = TurnRoute(ca_file=credentials.ca_file, resolver=resolver)
        # The XMPP login and the search for the media's way run side by side.
        login = asyncio.ensure_future(
            connect_xmpp(
                credentials, service=KEYRING_SERVICE, timeout=self.remote.xmpp_timeout, resolver=resolver
            )
        )
        try:
            server, self.ladder = await self._find_way(listed, route, via)
        except BaseException:
            login.cancel()
            logged_in = (await asyncio.gather(login, return_exceptions=True))[0]
            if isinstance(logged_in, tuple):
                await logged_in[0].aclose()
            raise
        self._stream, self._credentials = await login
        self.turn_server = server
        logger.info(
            "media ladder to %s: %s",
            server.region,
            "; ".join(f"{s.transport} {s.detail}" for s in self.ladder.steps),
        )
        if self.ladder.chosen is None:
            await self._stream.aclose()
            raise MediaError(self.ladder.failure())
        relay_only = self.ladder.relay_only
        ice_servers = route.attach(server.ice_servers(self.ladder.chosen))
        stream = self._stream

        async def channel(target: ShareTarget, timeout: float) -> SignalingChannel:
            return stream.open_channel(str(box["jid"]))

        self._share = Share(
            ShareTarget(host=str(box["jid"]), port=0, name=self.box_name),
            self.options,
            pin_provider=self._pin_provider,
            on_waiting=self._on_waiting,
            channel_factory=channel,
            ice_servers=ice_servers,
            relay_only=relay_only,
            relay_path=self.ladder.relay_path(),
            explain_end=self._why_ended,
        )
        await self._share.start()
        self._watch = asyncio.ensure_future(self._watch_stream(stream, self._share))

    async def _find_way(
        self, listed: list[TurnServer], route: TurnRoute, via: str
    ) -> tuple[TurnServer, ladder.Ladder]:
        """The TURN region and the ladder's rung (:mod:`coalesce_common.cloud.ladder`).

        The regions are ordered by their STUN answers (up to ``stun_timeout``); when none has answered
        within :data:`EARLY_CLIMB`, UDP is probably blocked and the relayed rungs of the first listed region
        (the one the ordering keeps first when nobody answers) are tried meanwhile. The first of the two to
        settle wins: a STUN answer (UDP, peer to peer) or a relayed rung that works while UDP is still
        silent, so a blocked network does not wait out the STUN time-out.
        """
        if self.remote.relay_only:
            return listed[0], ladder.forced(
                listed[0], "tls", via=via, why="media only through the relay over TLS"
            )
        if via:  # a proxy carries TCP only: UDP is not tried, and STUN is not waited for
            return listed[0], await ladder.climb(listed[0], route, via=via)

        async def climb_unless_udp_answers() -> ladder.Ladder:
            await asyncio.sleep(EARLY_CLIMB)
            return await ladder.climb(listed[0], route)

        early = asyncio.ensure_future(climb_unless_udp_answers())
        stun = asyncio.ensure_future(order_by_rtt(listed, self.remote.stun_timeout))
        try:
            await asyncio.wait({stun, early}, return_when=asyncio.FIRST_COMPLETED)
            if not stun.done() and early.exception() is None and early.result().chosen is not None:
                return listed[0], early.result()  # a relayed rung works and UDP has not answered
            nearest = (await stun)[0]
            if math.isfinite(nearest.rtt):
                return nearest, await ladder.climb(nearest, route)  # UDP works: chosen at once
            return nearest, await early
        finally:
            for task in (early, stun):
                task.cancel()
            await asyncio.gather(early, stun, return_exceptions=True)

    async def _watch_stream(self, stream: XmppSignaling, share: Share) -> None:
        """The cloud dropping our XMPP session (an admin suspended this device) ends the share at once."""
        error = await stream.wait_disconnected()
        logger.warning("the cloud connection ended (%s): stopping the share", error or "no reason given")
        await share.stop(EndReason.CLOUD_DISCONNECTED)

    async def _why_ended(self, reason: EndReason) -> EndReason:
        """``reason``, unless the cloud says an administrator suspended or revoked this device (asked with a
        bound: the network may be what failed)."""
        credentials = self._credentials
        if credentials is None:
            return reason
        try:
            async with (
                asyncio.timeout(STANDING_TIMEOUT),
                CloudClient(
                    credentials.api_url,
                    token=credentials.token,
                    ca_file=credentials.ca_file,
                    resolver=self._resolver,
                ) as api,
            ):
                await api.read_me()
        except CloudError as exc:
            standing = {"device_suspended": EndReason.SUSPENDED, "device_revoked": EndReason.REVOKED}
            return standing.get(exc.code, reason)
        except (CoalesceError, TimeoutError) as exc:
            logger.info("could not ask the cloud why the share ended (%s): %s", reason, exc)
        return reason

    async def wait_ended(self) -> EndReason:
        if self._share is None:
            raise RuntimeError("wait_ended() before start()")
        return await self._share.wait_ended()

    async def stop(self, reason: EndReason = EndReason.STOPPED) -> None:
        if self._share is not None:
            await self._share.stop(reason)
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        if self._stream is not None:
            await self._stream.aclose()
