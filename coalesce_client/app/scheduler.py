"""The sender's one scheduler: every coroutine the app core runs in the background is started here.

Widgets call plain methods; the flows behind them start their work with :meth:`Scheduler.spawn` on the
event loop the app was given (qasync's in the desktop app, pytest-asyncio's in tests). A task that fails
is logged, never lost. :meth:`Scheduler.aclose` cancels whatever still runs and waits a bounded time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0


class Scheduler:
    """Owns the app core's background tasks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro, name=f"coalesce-sender-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", task.get_name(), exc_info=task.exception())

    async def aclose(self) -> None:
        """Cancel every task and wait for them to end (at most :data:`CLOSE_TIMEOUT`). Idempotent."""
        self.closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: quitting must not hang on a peer or an mDNS socket that takes its time to close.
            _, stuck = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in stuck:
                logger.warning("%s did not stop within %.0f s of quitting", task.get_name(), CLOSE_TIMEOUT)
