"""Web guests end with their meeting: each API process removes expired guests from XMPP, in the background.

A guest's row says until when its identity holds: its meeting's end or ``web_guest_ttl`` after its
admission, whichever comes first, and at once when its box opens a new meeting or is suspended
(:func:`coalesce_cloud.crud.expire_meetings_of`). The row alone would not stop anybody: the account lives in
ejabberd. So every ``web_guest_sweep_every`` the sweeper removes each expired guest's account, then kicks
its session, and the sharing page, which has lost the cloud, ends its share. The row goes once ejabberd has
done both; a guest ejabberd could not remove is tried at the next sweep.

Replicas sweep the same rows without harm: removing a removed account, or kicking nobody, is no error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from coalesce_cloud import crud
from coalesce_cloud.xmpp_admin import XmppAdmin, XmppAdminError

logger = logging.getLogger(__name__)

BATCH = 100
"""Expired guests read per query; a sweep goes on while batches come back full."""
AT_ONCE = 8
"""ejabberd calls in flight during a sweep."""


class GuestExpiry:
    """Removes expired web guests every ``every`` from :meth:`start` to :meth:`aclose`; :meth:`sweep` once."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        xmpp_admin: XmppAdmin,
        clock: Callable[[], datetime],
        every: timedelta,
    ) -> None:
        self._sessions = session_factory
        self._admin = xmpp_admin
        self._clock = clock
        self._every = every.total_seconds()
        self._swept = asyncio.Condition()
        self._begun = self._sweeps = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="web guest expiry")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        """Sweep, then wait ``every``, until cancelled; a failed sweep is logged and the next one tried."""
        while True:
            self._begun += 1
            try:
                await self.sweep()
            except Exception:  # the database down, say: one line per sweep, the API goes on
                logger.warning("could not sweep expired web guests", exc_info=True)
            async with self._swept:
                self._sweeps += 1
                self._swept.notify_all()
            await asyncio.sleep(self._every)

    async def next_sweep(self) -> None:
        """Return once the background task has swept from start to end after this call (tests wait for it
        instead of sleeping: a sweep already under way may have read the clock before they moved it)."""
        async with self._swept:
            target = self._begun + 1
            await self._swept.wait_for(lambda: self._sweeps >= target)

    async def sweep(self) -> int:
        """Remove the guests expired by now from XMPP and the database; how many went."""
        now = self._clock()
        limit = asyncio.Semaphore(AT_ONCE)

        async def removed(user: str) -> bool:
            async with limit:
                return await self._removed(user)

        gone_in_all, failed = 0, 0
        while True:
            users = await run_in_threadpool(self._expired, now)
            done = await asyncio.gather(*(removed(user) for user in users))
            gone = [user for user, ok in zip(users, done, strict=True) if ok]
            await run_in_threadpool(self._forget, gone)
            gone_in_all += len(gone)
            failed += len(users) - len(gone)
            if len(users) < BATCH or not gone:
                break
        if gone_in_all:
            logger.info("%d expired web guest(s) removed from XMPP", gone_in_all)
        if failed:
            logger.warning("%d expired web guest(s) could not be removed yet; trying again later", failed)
        return gone_in_all

    def _expired(self, now: datetime) -> list[str]:
        with self._sessions() as session:
            return [guest.user for guest in crud.expired_web_guests(session, now=now, limit=BATCH)]

    def _forget(self, users: list[str]) -> None:
        with self._sessions() as session:
            crud.forget_web_guests(session, users)

    async def _removed(self, user: str) -> bool:
        """Whether the guest's account is gone and its session ended (the account first: a kicked guest
        whose account still existed could log in again)."""
        try:
            await self._admin.unregister(user)
            await self._admin.kick(user)
        except XmppAdminError as exc:
            logger.debug("could not remove expired web guest %s yet: %s", user, exc)
            return False
        return True
