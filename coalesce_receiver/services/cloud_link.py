"""The box's link to the cloud: its XMPP session, its meeting ID, TURN credentials, admin notices.

While linked, the box shows a meeting ID (renewed before it expires), serves remote senders whose
signaling arrives over XMPP exactly as it serves LAN senders, and offers TURN so that media can be
relayed when peer to peer fails. When the cloud says a device was suspended or revoked, the box ends
that device's shares at once. If the XMPP session drops, the link reconnects with back-off.

A box that is itself suspended loses its meeting at the cloud and its XMPP password. It then asks again
every few seconds (:data:`CUT_OFF_POLL`), so that within seconds of an admin restoring it, it is back
with a new meeting ID; after any reconnect it checks that its meeting is still live and takes a new one if
the cloud ended it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from typing import Any

from aiortc import RTCIceServer

from coalesce_common.cloud.device import connect_xmpp
from coalesce_common.cloud.notice import DeviceStatusNotice
from coalesce_common.cloud.rest import CloudClient, CloudError, DeviceCredentials
from coalesce_common.cloud.turn import order_by_rtt, parse_servers
from coalesce_common.cloud.updates import (
    UpdateError,
    current_platform,
    installed_version,
    verify_manifest,
    version_tuple,
)
from coalesce_common.errors import CoalesceError
from coalesce_common.logutil import RateLimitedLog
from coalesce_common.net.turn import TurnRoute
from coalesce_common.signaling.xmpp import XmppChannel, XmppSignaling
from coalesce_receiver.services.receiver import Receiver

logger = logging.getLogger(__name__)
_peer_log = RateLimitedLog(logger)

KEYRING_SERVICE = "coalesce-receiver"
CUT_OFF_POLL = 3.0
"""Seconds between a suspended box's attempts to come back: an admin's restore shows within this."""
CUT_OFF_CODES = ("device_suspended", "device_revoked")


class CloudLink:
    def __init__(
        self, receiver: Receiver, credentials: DeviceCredentials, *, renew_margin: float = 60.0
    ) -> None:
        self.receiver = receiver
        self.credentials = credentials
        self.renew_margin = renew_margin
        self._stream: XmppSignaling | None = None
        self._ice_servers: list[RTCIceServer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._maintain: asyncio.Task[None] | None = None
        self.meeting_expires: datetime.datetime | None = None
        self.turn_expires: datetime.datetime | None = None

    @property
    def xmpp(self) -> XmppSignaling:
        assert self._stream is not None, "not started"
        return self._stream

    async def start(self) -> None:
        await self._connect()
        await asyncio.gather(self._renew_meeting(), self._renew_turn(), self._check_update())
        self._maintain = asyncio.ensure_future(self._maintain_loop())

    async def _connect(self) -> None:
        self._stream, self.credentials = await connect_xmpp(
            self.credentials,
            on_channel=self._on_channel,
            on_device_status=self._on_device_status,
            service=KEYRING_SERVICE,
        )

    def _api(self) -> CloudClient:
        c = self.credentials
        return CloudClient(c.api_url, token=c.token, ca_file=c.ca_file)

    async def _renew_meeting(self) -> None:
        async with self._api() as api:
            meeting = await api.create_meeting()
        if self.receiver.model.meeting_id is not None:
            self.receiver.rotate_pin()  # a new meeting, a new PIN (when rotation is on)
        self.meeting_expires = _parse_time(meeting.get("expires_at"))
        share_url = meeting.get("share_url")
        self.receiver.model.set_meeting_id(
            str(meeting["meeting_id"]), share_url=share_url if isinstance(share_url, str) else None
        )
        logger.info("meeting ID issued, valid until %s", self.meeting_expires)

    async def _renew_turn(self) -> None:
        async with self._api() as api:
            body = await api.turn_credentials()
        servers = await order_by_rtt(parse_servers(body))
        route = TurnRoute(ca_file=self.credentials.ca_file)
        self._ice_servers = route.attach(servers[0].ice_servers("udp")) if servers else []
        self.receiver.set_lan_relay(self._ice_servers)
        self.turn_expires = _parse_time(body.get("expires_at"))

    async def _check_update(self) -> None:
        """Show an update notice on the idle screen when the cloud publishes a newer, signed version."""
        key = self.credentials.update_public_key
        if not key:
            return
        try:
            async with self._api() as api:
                document = await api.update_manifest(current_platform())
            manifest = verify_manifest(key, document, platform=current_platform())
        except CloudError as exc:
            if exc.code != "no_update":
                logger.info("update check failed: %s", exc)
            return
        except UpdateError as exc:
            logger.warning("refused an update manifest: %s", exc)
            return
        current = await asyncio.to_thread(installed_version)  # reads the distribution's metadata
        if version_tuple(manifest.version) > version_tuple(current):
            self.receiver.model.set_update_notice(f"Update available: Coalesce {manifest.version}")

    async def _maintain_loop(self) -> None:
        """Renew the meeting ID and TURN credentials before they expire; reconnect XMPP if it drops."""
        backoff = 1.0
        while True:
            stream = self._stream
            assert stream is not None
            dropped = asyncio.ensure_future(stream.wait_disconnected())
            try:
                await asyncio.wait({dropped}, timeout=self._seconds_to_next_renewal())
            finally:
                dropped.cancel()
            try:
                if not stream.connected:
                    logger.warning("the cloud XMPP session dropped (%s); reconnecting", stream.stream_error)
                    await stream.aclose()
                    await self._connect()
                    if not await self._meeting_is_live():
                        self.meeting_expires = None
                if self.meeting_expires is None or self._due(self.meeting_expires):
                    await self._renew_meeting()
                if self._due(self.turn_expires):
                    await self._renew_turn()
                backoff = 1.0
            except CoalesceError as exc:
                cut_off = isinstance(exc, CloudError) and exc.code in CUT_OFF_CODES
                delay = min(backoff, CUT_OFF_POLL) if cut_off else backoff
                if cut_off:
                    if self.receiver.model.meeting_id is not None:
                        logger.warning("cloud link: %s; asking again every %.0f s", exc, CUT_OFF_POLL)
                    self.receiver.model.set_meeting_id(None)  # the cloud ended the meeting
                    self.meeting_expires = None
                else:
                    logger.warning("cloud link: %s; retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, 60.0)

    async def _meeting_is_live(self) -> bool:
        """Whether the cloud still resolves the meeting ID the room shows (it ends it on a suspension)."""
        meeting_id = self.receiver.model.meeting_id
        if meeting_id is None:
            return False
        try:
            async with self._api() as api:
                await api.resolve_meeting(meeting_id)
        except CloudError as exc:
            if exc.code == "meeting_not_found":
                return False
            raise
        return True

    def _due(self, expires: datetime.datetime | None) -> bool:
        if expires is None:
            return False
        left = (expires - datetime.datetime.now(datetime.UTC)).total_seconds()
        return left <= self.renew_margin

    def _seconds_to_next_renewal(self) -> float:
        now = datetime.datetime.now(datetime.UTC)
        deadlines = [e for e in (self.meeting_expires, self.turn_expires) if e is not None]
        if not deadlines:
            return 3600.0
        return max(1.0, min((e - now).total_seconds() for e in deadlines) - self.renew_margin)

    async def _on_channel(self, channel: XmppChannel) -> None:
        if not guest_of(channel.peer_address, self.credentials.device_id):
            _peer_log.warning(
                "other-box-guest", "ignored %s: a web guest admitted to another room", channel.peer_address
            )
            await channel.aclose("not-this-room")
            return
        web_guest = is_web_guest(channel.peer_address)
        await self.receiver.serve(
            channel,
            ice_servers=list(self._ice_servers),
            counted_as=WEB_GUESTS if web_guest else None,
            returns=not web_guest,  # the sharing page does not reconnect: its tile goes with it
        )

    def _on_device_status(self, notice: DeviceStatusNotice) -> None:
        if notice.status.cut_off:
            why = (
                "the cloud ended this browser guest's access (its meeting ended, or the room stopped "
                "taking browser shares)"
                if is_web_guest(notice.jid)
                else f"an administrator {notice.status.value} that device"
            )
            ended = self.receiver.end_shares_from(notice.jid, why=why)
            logger.info("device %s was %s: ended %d share(s)", notice.device_id, notice.status, ended)

    async def aclose(self) -> None:
        if self._maintain is not None:
            self._maintain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintain
        if self._stream is not None:
            await self._stream.aclose()
        self.receiver.set_lan_relay([])
        self.receiver.model.set_meeting_id(None)


WEB_GUESTS = "web guests"
"""What every web guest's wrong PINs count as at the box: one source, as one address on the LAN (the cloud
admits a new guest identity at every ask, each of which would otherwise bring fresh guesses)."""


def is_web_guest(peer: str) -> bool:
    """Whether ``peer`` (a bare JID) is a web guest's: only the API registers ``g-…`` accounts."""
    return peer.startswith("g-")


def guest_of(peer: str, box_id: str) -> bool:
    """Whether ``peer`` (a bare JID) may talk to box ``box_id``: every device may (pairing decides), a web
    guest (``g-<box id>-…``, registered by the API for one meeting) only if it was admitted to this box."""
    local = peer.split("@", 1)[0]
    return not local.startswith("g-") or local.startswith(f"g-{box_id}-")


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
