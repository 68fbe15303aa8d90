"""An in-process signaling channel pair, for tests of the layers above transports."""

from __future__ import annotations

import asyncio

from coalesce_common.signaling.base import ChannelClosed

_CLOSED = object()


class MemoryChannel:
    """One end of an in-memory channel; make a connected pair with :func:`channel_pair`."""

    def __init__(self, peer_address: str, tls_fingerprint: str) -> None:
        self._peer_address = peer_address
        self._tls_fingerprint = tls_fingerprint
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._other: MemoryChannel | None = None
        self._closed = False

    @property
    def peer_address(self) -> str:
        return self._peer_address

    @property
    def tls_fingerprint(self) -> str:
        return self._tls_fingerprint

    async def send(self, text: str) -> None:
        if self._closed or self._other is None or self._other._closed:
            raise ChannelClosed("the in-memory channel is closed")
        self._other._inbox.put_nowait(text)

    async def recv(self) -> str | bytes:
        item = await self._inbox.get()
        if item is _CLOSED:
            self._inbox.put_nowait(_CLOSED)
            raise ChannelClosed("the in-memory channel is closed")
        assert isinstance(item, str | bytes)
        return item

    async def aclose(self, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self._inbox.put_nowait(_CLOSED)
        if self._other is not None:
            self._other._inbox.put_nowait(_CLOSED)


def channel_pair(tls_fingerprint: str = "") -> tuple[MemoryChannel, MemoryChannel]:
    """Return ``(sender_end, receiver_end)``, both reporting the same TLS fingerprint."""
    a = MemoryChannel("memory-receiver", tls_fingerprint)
    b = MemoryChannel("memory-sender", tls_fingerprint)
    a._other, b._other = b, a
    return a, b
