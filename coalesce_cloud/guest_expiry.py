"""How web guests end: sent away (:func:`send_away`), and expired ones swept in the background.

A guest's identity holds until its meeting ends or ``web_guest_ttl`` after its admission, whichever comes
first (its row's ``expires_at``). A meeting also ends early, when its box opens the next one or is
suspended; its guests then count as expired whatever their rows say
(:func:`coalesce_cloud.crud.expired_web_guests`), including one admitted while the box opened the next.

The row alone would not stop anybody: the account lives in ejabberd, and the media runs between browser
and box. So every ``web_guest_sweep_every`` the sweeper sends each expired guest away: its account is
removed, its session kicked (the sharing page, which has lost the cloud, ends its share), and its box told,
so that the box ends the share even if the page would not. The row goes once ejabberd has done all three;
a guest ejabberd could not send away is tried again at the next sweep.

Replicas sweep the same rows without harm: removing a removed account, or kicking nobody, is no error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Self

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from coalesce_cloud import crud
from coalesce_cloud.core.config import XmppSettings
from coalesce_cloud.models import DeviceStatus
from coalesce_cloud.xmpp_admin import XmppAdmin, XmppAdminError
from coalesce_common.cloud.notice import DeviceStatusNotice

logger = logging.getLogger(__name__)

BATCH = 100
"""Expired guests read per query; a sweep goes on while batches come back full."""
AT_ONCE = 8
"""Guests sent away at the same time (ejabberd calls in flight)."""


async def send_away(xmpp_admin: XmppAdmin, xmpp: XmppSettings, user: str, box_id: str) -> bool:
    """Whether a web guest's account was removed, its session ended and its box told (else it is to be
    tried again). The account first: a kicked guest whose account still existed could log in again."""
    jid = f"{user}@{xmpp.domain}"
    notice = DeviceStatusNotice(device_id=user, jid=jid, status=DeviceStatus.REVOKED)
    try:
        await xmpp_admin.unregister(user)
        await xmpp_admin.kick(user)
        await xmpp_admin.send_message(xmpp.service_jid, f"{box_id}@{xmpp.domain}", notice.encode())
    except XmppAdminError as exc:
        logger.debug("could not send web guest %s away yet: %s", user, exc)
        return False
    return True


async def send_all_away(
    xmpp_admin: XmppAdmin, xmpp: XmppSettings, guests: Iterable[tuple[str, str]]
) -> list[str]:
    """:func:`send_away` for each ``(user, box id)``, :data:`AT_ONCE` at a time; the users sent away."""
    listed = list(guests)
    limit = asyncio.Semaphore(AT_ONCE)

    async def sent(user: str, box_id: str) -> bool:
        async with limit:
            return await send_away(xmpp_admin, xmpp, user, box_id)

    done = await asyncio.gather(*(sent(user, box_id) for user, box_id in listed), return_exceptions=True)
    failures = [outcome for outcome in done if isinstance(outcome, BaseException)]
    if failures:  # not ejabberd's refusal (send_away takes that): a bug, logged once, the others still go
        logger.error("sending web guests away failed", exc_info=failures[0])
    return [user for (user, _), ok in zip(listed, done, strict=True) if ok is True]


class GuestExpiry:
    """Sends expired web guests away every ``every`` while open (``async with``); :meth:`sweep` once."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        xmpp_admin: XmppAdmin,
        xmpp: XmppSettings,
        clock: Callable[[], datetime],
        every: timedelta,
    ) -> None:
        self._sessions = session_factory
        self._admin = xmpp_admin
        self._xmpp = xmpp
        self._clock = clock
        self._every = every.total_seconds()
        self._swept = asyncio.Condition()
        self._begun = self._sweeps = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="web guest expiry")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
        if self._task is None or self._task.done():
            raise RuntimeError("the web guest sweeper is not running")
        async with self._swept:
            target = self._begun + 1
            await self._swept.wait_for(lambda: self._sweeps >= target)

    async def sweep(self) -> int:
        """Send away the guests expired by now; how many went. A guest ejabberd refuses is left out of the
        rest of this sweep, so that those behind it are still reached."""
        now = self._clock()
        gone_in_all: int = 0
        failed: set[str] = set()
        while True:
            guests = await run_in_threadpool(self._expired, now, failed)
            gone = await send_all_away(self._admin, self._xmpp, guests)
            await run_in_threadpool(self._forget, gone)
            gone_in_all += len(gone)
            failed.update(user for user, _ in guests if user not in gone)
            if len(guests) < BATCH:
                break
        if gone_in_all:
            logger.info("%d expired web guest(s) sent away", gone_in_all)
        if failed:
            logger.warning(
                "%d expired web guest(s) could not be sent away yet; trying again later", len(failed)
            )
        return gone_in_all

    def _expired(self, now: datetime, leaving_out: set[str]) -> list[tuple[str, str]]:
        with self._sessions() as session:
            return crud.expired_web_guests(session, now=now, limit=BATCH, leaving_out=leaving_out)

    def _forget(self, users: list[str]) -> None:
        with self._sessions() as session:
            crud.forget_web_guests(session, users)
