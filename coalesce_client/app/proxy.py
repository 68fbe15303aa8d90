"""The proxy settings the cloud connections use: read at start, saved from the Settings dialog.

``sender.json`` holds the choice and the OS keyring any password (:mod:`coalesce_client.settings`); both
are touched in a worker thread. :class:`~coalesce_client.models.app_settings.ProxyChoice` shows what is in
force, or why it could not be read or saved. When no OS keyring works (checked at start, and learnt from a
failed save) the model says why, the Settings dialog says so beside the password and offers to keep it for
this session only: then ``sender.json`` is written without it and the password lives in memory.
"""

from __future__ import annotations

import asyncio

from coalesce_client.app.config import SenderServices
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.models.app_settings import ProxyChoice
from coalesce_client.models.session import ShareSession
from coalesce_client.settings import without_password
from coalesce_common.errors import CoalesceError
from coalesce_common.keyring_store import KeyringUnavailable
from coalesce_common.net.proxy import ProxyConfig


class ProxySettings:
    """Loads and saves the proxy choice into ``proxy``; a failed save is also said on the first screen."""

    def __init__(
        self, proxy: ProxyChoice, session: ShareSession, scheduler: Scheduler, services: SenderServices
    ) -> None:
        self._proxy = proxy
        self._session = session
        self._scheduler = scheduler
        self._services = services

    async def load(self) -> None:
        self._proxy.set_keyring_problem(await asyncio.to_thread(self._services.keyring_problem))
        try:
            config = await asyncio.to_thread(self._services.load_proxy)
        except (OSError, CoalesceError) as exc:
            self._proxy.set_error(f"The saved proxy settings could not be read: {exc}")
            return
        self._proxy.set_config(config)

    def save(self, proxy: ProxyConfig, *, session_only: bool = False) -> None:
        """Keep ``proxy`` (``sender.json``, the password to the keyring), in the background.

        With ``session_only`` the password is not saved anywhere: ``sender.json`` gets the rest and the
        password is used until the app quits.
        """
        self._scheduler.spawn(self._save(proxy, session_only), "save-proxy")

    async def _save(self, proxy: ProxyConfig, session_only: bool) -> None:
        try:
            await asyncio.to_thread(
                self._services.save_proxy, without_password(proxy) if session_only else proxy
            )
        except KeyringUnavailable as exc:
            self._proxy.set_keyring_problem(str(exc))
            message = f"The proxy settings were not saved: {exc}"
            self._proxy.set_error(message)
            self._session.fail_before_start(message)
            return
        except (OSError, CoalesceError) as exc:
            message = f"The proxy settings could not be saved: {exc}"
            self._proxy.set_error(message)
            self._session.fail_before_start(message)
            return
        self._proxy.set_config(proxy, session_only=session_only)
