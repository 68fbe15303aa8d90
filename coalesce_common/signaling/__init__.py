"""Signaling transports: they move protocol messages as text, nothing more.

``base.SignalingChannel`` is the one interface; ``websocket`` implements it over WebSocket-over-TLS
(the LAN path), ``memory`` in-process (tests). The cloud issue adds XMPP behind the same interface.
"""

from coalesce_common.signaling.base import ChannelClosed, SignalingChannel

__all__ = ["ChannelClosed", "SignalingChannel"]
