"""A device's standing with the cloud: enrollment, and an XMPP login that heals rotated credentials."""

from __future__ import annotations

import logging

from coalesce_common.cloud import store
from coalesce_common.cloud.rest import CloudClient, DeviceCredentials
from coalesce_common.net.proxy import ProxyResolver
from coalesce_common.signaling.xmpp import ChannelHandler, NoticeHandler, XmppAuthError, XmppSignaling

logger = logging.getLogger(__name__)


async def enroll(
    api_url: str,
    code: str,
    name: str,
    *,
    ca_file: str | None = None,
    service: str,
    kind: str,
    resolver: ProxyResolver | None = None,
) -> DeviceCredentials:
    """Enroll this device with the cloud once and keep its credentials in the OS keyring."""
    async with CloudClient(api_url, ca_file=ca_file, resolver=resolver) as api:
        credentials = await api.enroll(code, name, kind, ca_file=ca_file)
    store.save(service, credentials)
    return credentials


async def connect_xmpp(
    credentials: DeviceCredentials,
    *,
    on_channel: ChannelHandler | None = None,
    on_notice: NoticeHandler | None = None,
    service: str,
    timeout: float = 15.0,
    resolver: ProxyResolver | None = None,
) -> tuple[XmppSignaling, DeviceCredentials]:
    """Log in to the cloud's XMPP; on a refused login ask the API for fresh XMPP credentials once.

    The API rotates XMPP passwords when an admin suspends a device, so a restored device logs in
    again with new ones; a still suspended or revoked device gets the API's clear refusal instead.
    """
    stream = XmppSignaling(
        credentials.xmpp,
        on_channel=on_channel,
        on_notice=on_notice,
        resolver=resolver,
    )
    try:
        await stream.connect(timeout)
        return stream, credentials
    except XmppAuthError:
        await stream.aclose()
        async with CloudClient(
            credentials.api_url, token=credentials.token, ca_file=credentials.ca_file
        ) as api:
            account = await api.rotate_xmpp(credentials.ca_file)
        credentials = credentials.with_xmpp(account)
        store.save(service, credentials)
        stream = XmppSignaling(
            credentials.xmpp,
            on_channel=on_channel,
            on_notice=on_notice,
            resolver=resolver,
        )
        await stream.connect(timeout)
        return stream, credentials
