"""The one adapter between aioice's TURN client and Coalesce's own connection rules.

aioice opens TURN-over-TCP/TLS connections itself (``aioice.turn.create_turn_endpoint``) and, for
``turns:`` URLs, with ``ssl=True``: Python's default context, which trusts only the system's CAs. A
self-hosted cloud usually has its own CA, so we hand aioice a context that trusts it too. aioice looks
the function up as a module attribute at call time (``aioice/ice.py``, ``relayed_candidate``), which is
what makes this wrapper effective; ``tests/cloud`` fails if an aioice upgrade changes that.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

import aioice.turn

logger = logging.getLogger(__name__)

_ORIGINAL = aioice.turn.create_turn_endpoint
_tls_context: ssl.SSLContext | None = None


def turn_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        ctx.load_verify_locations(ca_file)
    return ctx


def install_turn_transport(ca_file: str | None = None) -> None:
    """Make aioice's TURN over TLS trust ``ca_file`` as well as the system CAs (idempotent)."""
    global _tls_context
    _tls_context = turn_tls_context(ca_file)
    aioice.turn.create_turn_endpoint = _create_turn_endpoint


async def _create_turn_endpoint(*args: Any, **kwargs: Any) -> Any:
    if kwargs.get("ssl") is True and _tls_context is not None:
        kwargs["ssl"] = _tls_context
    return await _ORIGINAL(*args, **kwargs)
