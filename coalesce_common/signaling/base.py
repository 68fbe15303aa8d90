"""The signaling channel interface every transport implements."""

from __future__ import annotations

from typing import Protocol

from coalesce_common.errors import SignalingError


class ChannelClosed(SignalingError):
    """The peer closed the channel, or it broke."""


class SignalingChannel(Protocol):
    """A bidirectional, ordered, message-framed channel between one sender and one receiver."""

    @property
    def peer_address(self) -> str:
        """The peer's network address (the key for PIN throttling on the receiver)."""
        ...

    @property
    def tls_fingerprint(self) -> str:
        """SHA-256 fingerprint of the receiver's TLS certificate as this side sees it.

        On the sender it is the certificate the peer presented; on the receiver its own. Pairing MACs
        cover it, so a relay that re-terminates TLS is detected. Empty for transports without TLS.
        """
        ...

    async def send(self, text: str) -> None:
        """Send one message; raise :class:`ChannelClosed` if the channel is closed."""
        ...

    async def recv(self) -> str | bytes:
        """Receive one message; raise :class:`ChannelClosed` when the channel is closed."""
        ...

    async def aclose(self, reason: str = "") -> None:
        """Close the channel; idempotent."""
        ...
