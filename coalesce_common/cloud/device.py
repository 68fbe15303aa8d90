"""A device's standing with the cloud: enrollment, an XMPP login that heals rotated credentials, and
the cloud's device-status notices (:mod:`coalesce_common.cloud.notice`), trusted only from its service JID.

Keyring calls (D-Bus on Linux, which can wait for an unlock prompt) run in a worker thread, never on the
event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from coalesce_common import keyring_store
from coalesce_common.cloud import store
from coalesce_common.cloud.notice import DeviceStatusNotice, service_jid
from coalesce_common.cloud.rest import CloudClient, DeviceCredentials
from coalesce_common.errors import ProtocolError, SignalingError
from coalesce_common.net.connector import ProxyConnectError
from coalesce_common.net.proxy import ProxyResolver
from coalesce_common.signaling.xmpp import (
    ChannelHandler,
    NoticeHandler,
    XmppAccount,
    XmppAuthError,
    XmppSignaling,
)

logger = logging.getLogger(__name__)

DeviceStatusHandler = Callable[[DeviceStatusNotice], None]


async def enroll(
    api_url: str,
    code: str,
    name: str,
    *,
    ca_file: str | None = None,
    service: str,
    kind: str,
    resolver: ProxyResolver | None = None,
    keep: bool = True,
) -> DeviceCredentials:
    """Enroll this device with the cloud once and keep its credentials in the OS keyring.

    With ``keep=False`` nothing is stored (the user chose "for this session only" because no OS keyring
    works): the caller holds the credentials until it quits. With ``keep``, a missing keyring is found out
    before the one-time code is spent (a throwaway entry is stored and deleted), so the user can still
    choose and the code still works.
    """
    if keep:
        await asyncio.to_thread(keyring_store.check_writable, service)  # raises KeyringUnavailable
    async with CloudClient(api_url, ca_file=ca_file, resolver=resolver) as api:
        credentials = await api.enroll(code, name, kind, ca_file=ca_file)
    if keep:
        await asyncio.to_thread(store.save, service, credentials)
    return credentials


async def connect_xmpp(
    credentials: DeviceCredentials,
    *,
    on_channel: ChannelHandler | None = None,
    on_device_status: DeviceStatusHandler | None = None,
    service: str,
    timeout: float = 15.0,
    resolver: ProxyResolver | None = None,
) -> tuple[XmppSignaling, DeviceCredentials]:
    """Log in to the cloud's XMPP; on a refused login ask the API for fresh XMPP credentials once.

    A node that cannot be reached is passed over for the next of the cluster's nodes the cloud listed
    (:meth:`XmppAccount.every_node`); a refused password is not (every node would refuse it).

    The API rotates XMPP passwords when an admin suspends a device, so a restored device logs in
    again with new ones; a still suspended or revoked device gets the API's clear refusal instead.
    Both the login and the API call go the way ``resolver`` says (through the proxy, if there is one).
    The new credentials are returned and saved where :func:`store.credential_source` says they live (a
    systemd credential is read-only: the caller's copy is then the only one, see ``SystemdCredentials``).
    """
    on_notice = notice_reader(credentials.xmpp.jid, on_device_status) if on_device_status else None

    async def log_in(account: XmppAccount) -> XmppSignaling:
        """At the account's node, or at the first of the cluster's other nodes that can be reached."""
        first_error: SignalingError | ProxyConnectError | None = None
        for candidate in account.every_node():
            stream = XmppSignaling(candidate, on_channel=on_channel, on_notice=on_notice, resolver=resolver)
            try:
                await stream.connect(timeout)
            except XmppAuthError:
                await stream.aclose()
                raise
            except (SignalingError, ProxyConnectError) as exc:  # this node (or the way to it) is down
                await stream.aclose()
                logger.warning("XMPP node %s:%d: %s", candidate.host, candidate.port, exc)
                first_error = first_error or exc
                continue
            if candidate is not account:
                logger.info("logged in at the cluster's node %s:%d instead", candidate.host, candidate.port)
            return stream
        assert first_error is not None  # every_node() has the account itself at least
        raise first_error

    try:
        return await log_in(credentials.xmpp), credentials
    except XmppAuthError:
        async with CloudClient(
            credentials.api_url, token=credentials.token, ca_file=credentials.ca_file, resolver=resolver
        ) as api:
            account = await api.rotate_xmpp(credentials.ca_file)
        credentials = credentials.with_xmpp(account)
        source = await asyncio.to_thread(store.credential_source, service)  # looks at the disk
        await asyncio.to_thread(source.save, credentials)
        return await log_in(credentials.xmpp), credentials


def notice_reader(own_jid: str, handler: DeviceStatusHandler) -> NoticeHandler:
    """Hands ``handler`` the device-status notices that come from the cloud's service JID, parsed."""
    cloud = service_jid(own_jid)

    def read(message: dict[str, Any]) -> None:
        sender = message.get("from")
        if sender != cloud:
            logger.debug("ignoring a notice from %s (not the cloud)", sender)
            return
        try:
            notice = DeviceStatusNotice.parse({k: v for k, v in message.items() if k != "from"})
        except ProtocolError as exc:
            logger.warning("ignoring a notice from the cloud: %s", exc)
            return
        handler(notice)

    return read
