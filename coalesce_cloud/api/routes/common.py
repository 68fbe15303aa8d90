"""Small pieces several route modules share."""

from __future__ import annotations

from fastapi import Request

from coalesce_cloud.core.config import ThrottleSettings
from coalesce_common.throttle import BackoffPolicy


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
