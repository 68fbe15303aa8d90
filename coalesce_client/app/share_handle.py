"""Which share object a destination gets: a LAN :class:`Share`, or a cloud :class:`RemoteShare` for a meeting.

:class:`ShareHandle` is what the share flow drives of either; :func:`open_share` is the real factory (the
flow takes another in tests), and :func:`lan_share_of` finds the LAN-level share inside a handle, whose
media the flow reads and steers (:class:`~coalesce_client.services.share.Share`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol

from coalesce_client.models.destination import Destination
from coalesce_client.services.lan_relay import cloud_relay
from coalesce_client.services.remote import RemoteOptions, RemoteShare
from coalesce_client.services.share import JoinRequestHandler, PinProvider, Share, ShareOptions, ShareTarget
from coalesce_common.net.proxy import ProxyConfig
from coalesce_common.protocol import EndReason


class ShareHandle(Protocol):
    """A LAN :class:`Share` or a cloud :class:`RemoteShare`, as the share flow drives either."""

    async def start(self) -> None: ...

    async def stop(self, reason: EndReason = EndReason.STOPPED) -> None: ...

    async def wait_ended(self) -> EndReason: ...


ShareFactory = Callable[
    [Destination, ShareOptions, PinProvider, ProxyConfig, JoinRequestHandler, Callable[[], None]], ShareHandle
]


def share_target(destination: Destination) -> ShareTarget:
    """A LAN destination as the share service wants it (with the fingerprint mDNS vouched for)."""
    return ShareTarget(
        destination.host, destination.port, fingerprint=destination.fingerprint, name=destination.name or None
    )


def open_share(
    destination: Destination,
    options: ShareOptions,
    pin_provider: PinProvider,
    proxy: ProxyConfig,
    on_join_request: JoinRequestHandler,
    on_waiting: Callable[[], None],
) -> ShareHandle:
    """The real share: to a meeting through the cloud (with the proxy settings), or straight on the LAN.

    Only a LAN share can moderate (``on_join_request``): the share flow refuses moderator meetings.
    ``on_waiting`` is called when a moderated room puts the share in its queue.
    """
    if destination.is_meeting:
        return RemoteShare(
            destination.meeting_id,
            options,
            remote=RemoteOptions(proxy=proxy),
            pin_provider=pin_provider,
            on_waiting=on_waiting,
        )
    return Share(
        share_target(destination),
        options,
        pin_provider=pin_provider,
        on_join_request=on_join_request,
        on_waiting=on_waiting,
        relay_finder=functools.partial(cloud_relay, proxy),  # when enrolled: the cloud's relay too
    )


def lan_share_of(handle: ShareHandle) -> Share | None:
    """The LAN-level :class:`Share` inside a handle, once it has one (a cloud share makes it on start)."""
    if isinstance(handle, Share):
        return handle
    if isinstance(handle, RemoteShare):
        return handle.share
    return None
