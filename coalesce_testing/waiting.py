"""Waiting for an observable model (the sender's or the room's) to reach a state, without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

WAIT = 20.0
"""Seconds a test waits for a model by default: generous for a busy two-core machine."""


class Observed(Protocol):
    """A model that calls its listeners after each change (the sender's and the room's models)."""

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]: ...


async def until(model: Observed, holds: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Return once ``holds()`` is true, checked at each change ``model`` announces; fail after ``timeout``."""
    if holds():
        return
    reached = asyncio.Event()
    unsubscribe = model.subscribe(lambda: reached.set() if holds() else None)
    try:
        async with asyncio.timeout(timeout):
            await reached.wait()
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None
    finally:
        unsubscribe()
