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

from coalesce_client.services.share import (
    ConnectionListener,
    PinProvider,
    Relay,
    Share,
    ShareOptions,
    ShareTarget,
)
from coalesce_common.cloud import ladder, store
from coalesce_common.cloud.device import connect_xmpp
from coalesce_common.cloud.rest import CloudClient, CloudError, DeviceCredentials
from coalesce_common.cloud.turn import TurnServer, order_by_rtt, parse_servers
from coalesce_common.errors import CoalesceError, MediaError, SignalingError
from coalesce_common.net.connector import ProxyConnectError
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver
from coalesce_common.net.turn import TurnRoute
from coalesce_common.protocol import EndReason
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.xmpp import XmppSignaling

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "coalesce-sender"
EARLY_CLIMB = 0.25
"""Seconds without a STUN answer after which the relayed rungs are tried alongside the wait for one."""
NO_RELAY = "The cloud offered no TURN relay; ask your IT administrator to configure one."
STANDING_TIMEOUT = 3.0
"""Seconds to wait for the cloud to say why it ended our connection before saying only that it did."""


def _retryable(error: CloudError) -> CoalesceError:
    """A reconnect's failure as the share's retry loop should take it: the cloud out of reach (or
    failing) is tried again; its refusals (this device suspended or revoked) end the share."""
    if error.code in {"unreachable", "proxy_failed", "bad_response"} or error.status >= 500:
        return SignalingError(str(error))
    return error


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
        on_connection: ConnectionListener | None = None,
    ) -> None:
        self.meeting_id = meeting_id
        self.options = options
        self.remote = remote
        self._credentials = credentials
        self._pin_provider = pin_provider
        self._on_waiting = on_waiting
        self._on_connection = on_connection
        self._stream: XmppSignaling | None = None
        self._closing: set[asyncio.Task[None]] = set()  # XMPP sessions of lost connections, being closed
        self._share: Share | None = None
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
        self._credentials = credentials
        resolver = self._resolver = ProxyResolver(self.remote.proxy)
        async with self._api() as api:
            meeting, turn = await asyncio.gather(api.resolve_meeting(self.meeting_id), api.turn_credentials())
        box = meeting["box"]
        self.box_name = str(box.get("name") or "the room display")
        box_jid = str(box["jid"])
        listed = parse_servers(turn)
        if not listed:
            raise MediaError(NO_RELAY)
        via = await ladder.proxy_on_the_way(resolver, listed[0])
        self.behind_proxy = bool(via)
        # The XMPP login and the search for the media's way run side by side.
        login = asyncio.ensure_future(self._log_in(self.remote.xmpp_timeout))
        try:
            relay = await self._relay_by(listed, via)
        except BaseException:
            login.cancel()
            logged_in = (await asyncio.gather(login, return_exceptions=True))[0]
            if isinstance(logged_in, XmppSignaling):
                await logged_in.aclose()
            raise
        self._stream = await login
        first_relay: Relay | None = relay  # the first connection uses what was found with the login
        first_channel = True

        async def relay_for_this_connection() -> Relay:
            nonlocal first_relay
            found, first_relay = first_relay, None
            return found if found is not None else await self._relay_again()

        async def channel(target: ShareTarget, timeout: float) -> SignalingChannel:
            nonlocal first_channel
            if not first_channel:  # a reconnect: the old session may be dead without knowing it
                await self._log_in_again(min(timeout, self.remote.xmpp_timeout))
            first_channel = False
            assert self._stream is not None
            return self._stream.open_channel(box_jid)

        self._share = Share(
            ShareTarget(host=box_jid, port=0, name=self.box_name),
            self.options,
            pin_provider=self._pin_provider,
            on_waiting=self._on_waiting,
            on_connection=self._on_connection,
            channel_factory=channel,
            relay_finder=relay_for_this_connection,
            relay_wait=None,  # no way without the relay: the offer waits for it (within the media time-out)
            explain_end=self._why_ended,
        )
        await self._share.start()

    def _api(self) -> CloudClient:
        credentials = self._credentials
        assert credentials is not None
        return CloudClient(
            credentials.api_url, token=credentials.token, ca_file=credentials.ca_file, resolver=self._resolver
        )

    async def _log_in(self, timeout: float) -> XmppSignaling:
        """Log in to the cloud's XMPP (by direct TLS behind a proxy: proxies often CONNECT only to 443)."""
        credentials = self._credentials
        assert credentials is not None
        if self.behind_proxy:
            credentials = credentials.with_xmpp(credentials.xmpp.via_direct_tls())
        stream, self._credentials = await connect_xmpp(
            credentials, service=KEYRING_SERVICE, timeout=timeout, resolver=self._resolver
        )
        return stream

    async def _log_in_again(self, timeout: float) -> None:
        """A new XMPP session for a reconnect: the old one's TCP connection may be dead without knowing it
        (after a blackout, or from an address this computer no longer has), and closing it could wait."""
        old, self._stream = self._stream, None
        if old is not None:
            self._closing.add(task := asyncio.ensure_future(old.aclose()))
            task.add_done_callback(self._closing.discard)
        try:
            self._stream = await self._log_in(timeout)
        except CloudError as exc:  # the cloud refused this device a new XMPP password: cut off, or down
            raise _retryable(exc) from exc
        except ProxyConnectError as exc:  # no route, refused, no name yet: the network is not back
            raise SignalingError(str(exc)) from exc

    async def _relay_again(self) -> Relay:
        """The ladder again, for a reconnect (this computer's network may have changed), with fresh TURN
        credentials."""
        try:
            async with self._api() as api:
                listed = parse_servers(await api.turn_credentials())
        except CloudError as exc:
            raise _retryable(exc) from exc
        if not listed:
            raise MediaError(NO_RELAY)
        assert self._resolver is not None
        via = await ladder.proxy_on_the_way(self._resolver, listed[0])
        self.behind_proxy = bool(via)
        return await self._relay_by(listed, via)

    async def _relay_by(self, listed: list[TurnServer], via: str) -> Relay:
        """The relay the ladder finds (:meth:`_find_way`), kept in :attr:`ladder` and :attr:`turn_server`."""
        assert self._credentials is not None
        route = TurnRoute(ca_file=self._credentials.ca_file, resolver=self._resolver)
        server, found = await self._find_way(listed, route, via)
        self.turn_server, self.ladder = server, found
        logger.info(
            "media ladder to %s: %s",
            server.region,
            "; ".join(f"{s.transport} {s.detail}" for s in found.steps),
        )
        if found.chosen is None:
            raise MediaError(found.failure())
        return Relay(
            route.attach(server.ice_servers(found.chosen)), found.relay_path(), only=found.relay_only
        )

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

    async def _why_ended(self, reason: EndReason) -> EndReason:
        """``reason``, unless the cloud says an administrator suspended or revoked this device (asked with a
        bound: the network may be what failed)."""
        credentials = self._credentials
        if credentials is None:
            return reason
        try:
            async with asyncio.timeout(STANDING_TIMEOUT), self._api() as api:
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
        if self._stream is not None:
            await self._stream.aclose()
        await asyncio.gather(*self._closing, return_exceptions=True)
