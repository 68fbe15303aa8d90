"""Small pieces several route modules share."""

from __future__ import annotations

import logging

from fastapi import Request

from coalesce_cloud.api.errors import ApiError
from coalesce_cloud.core.config import ThrottleSettings
from coalesce_cloud.core.throttle import BackoffPolicy
from coalesce_cloud.xmpp_admin import XmppAdminError

logger = logging.getLogger(__name__)


def client_address(request: Request) -> str:
    """The peer's address as the ASGI server saw it (behind a proxy, run uvicorn with --proxy-headers
    and --forwarded-allow-ips so that this is the real client)."""
    return request.client.host if request.client is not None else "unknown"


def backoff(settings: ThrottleSettings, free_failures: int) -> BackoffPolicy:
    return BackoffPolicy(
        free_failures=free_failures,
        base_delay=settings.base_delay,
        max_delay=settings.max_delay,
        forget_after=settings.forget_after,
    )


def xmpp_unavailable(exc: XmppAdminError, *, detail: bool = False, done: str = "") -> ApiError:
    """502 for a failed XMPP admin call; the details (server URLs) only for the admin's eyes."""
    logger.warning("XMPP admin call failed: %s", exc)
    message = f"{done} " if done else ""
    message += "The XMPP server could not be reached or refused the change"
    message += f": {exc}" if detail else "; try again in a moment."
    return ApiError(502, "xmpp_unavailable", message)
