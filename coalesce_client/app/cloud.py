"""The sender's standing with its organisation's cloud: enrollment, and updates offered and installed.

At start the device credentials are read from the keyring; an enrolled sender then checks for a newer
release every ``update_check_interval`` (:func:`coalesce_client.services.updater.newer_release`, the
manifest's signature checked), and right after enrolling. An offered update is downloaded through the
proxy settings, verified against the signed checksum and handed to the platform's installer.
"""

from __future__ import annotations

import asyncio
import logging

from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.models.app_settings import AppSettingsModel
from coalesce_client.models.cloud import CloudAccount, UpdateOffer
from coalesce_client.services import updater
from coalesce_client.services.remote import KEYRING_SERVICE
from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.cloud.updates import Manifest
from coalesce_common.errors import CoalesceError
from coalesce_common.keyring_store import KeyringUnavailable
from coalesce_common.net.proxy import ProxyConfig, ProxyResolver

logger = logging.getLogger(__name__)


class CloudStanding:
    """Writes enrollment into ``account`` and update offers into ``update``."""

    def __init__(
        self,
        account: CloudAccount,
        update: UpdateOffer,
        settings: AppSettingsModel,
        scheduler: Scheduler,
        config: SenderConfig,
        services: SenderServices,
    ) -> None:
        self._account = account
        self._update = update
        self._settings = settings
        self._scheduler = scheduler
        self._config = config
        self._services = services
        self._manifest: Manifest | None = None
        self._credentials: DeviceCredentials | None = None

    async def run(self) -> None:
        """Read the credentials; when enrolled, check for updates now and every so often, until cancelled."""
        try:
            credentials = await asyncio.to_thread(self._services.load_credentials)
        except CoalesceError as exc:
            logger.warning("cannot read the cloud credentials: %s", exc)
            return
        if credentials is None:
            return
        self._set_credentials(credentials)
        while True:
            await self._check_update(credentials)
            await asyncio.sleep(self._config.update_check_interval)

    def enroll(
        self, *, url: str, code: str, ca_file: str, proxy: ProxyConfig, session_only: bool = False
    ) -> None:
        """Enroll in the background; ``session_only``: keep the credentials in memory, not in the keyring."""
        if self._account.enrolling:
            return
        self._account.begin_enrollment()
        self._scheduler.spawn(
            self._enroll(url.strip(), code.strip(), ca_file.strip(), proxy, session_only), "enroll"
        )

    def check_for_update(self) -> None:
        if self._credentials is not None:
            self._scheduler.spawn(self._check_update(self._credentials), "update-check")

    def install_update(self) -> None:
        if self._manifest is not None and self._credentials is not None:
            self._scheduler.spawn(self._install_update(self._manifest, self._credentials), "update-install")

    def _set_credentials(self, credentials: DeviceCredentials) -> None:
        self._credentials = credentials
        self._account.set_enrolled(credentials.api_url, credentials.device_id, credentials.org)

    async def _enroll(
        self, url: str, code: str, ca_file: str, proxy: ProxyConfig, session_only: bool
    ) -> None:
        account = self._account
        if not url.startswith(("https://", "http://")) or not code:
            account.enrollment_done(
                error="Type the cloud's address (https://…) and the enrollment code from your IT "
                "administrator."
            )
            return
        try:
            credentials = await self._services.enroll(
                url,
                code,
                self._settings.settings.display_name,
                ca_file=ca_file or None,
                service=KEYRING_SERVICE,
                kind="sender",
                resolver=ProxyResolver(proxy),
                keep=not session_only,
            )
        except KeyringUnavailable as exc:  # found before the one-time code is spent
            account.enrollment_done(
                error=f"{exc} Or tick “for this session only” to enroll until Coalesce quits "
                "(you will need a new code next time)."
            )
            return
        except (CoalesceError, OSError) as exc:
            account.enrollment_done(error=str(exc))
            return
        self._settings.update(cloud_url=url, cloud_ca=ca_file)
        self._set_credentials(credentials)
        account.enrollment_done()
        await self._check_update(credentials)

    async def _check_update(self, credentials: DeviceCredentials) -> None:
        try:
            proxy = await asyncio.to_thread(self._services.load_proxy)
            manifest = await updater.newer_release(
                credentials,
                ProxyResolver(proxy),
                platform=self._config.platform,
                current=self._config.version,
            )
        except CoalesceError as exc:
            logger.warning("update check failed: %s", exc)
            return
        if manifest is not None:
            self._manifest = manifest
            self._update.offer(manifest.version, manifest.notes)

    async def _install_update(self, manifest: Manifest, credentials: DeviceCredentials) -> None:
        offer = self._update
        offer.downloading(0.0)
        try:
            updater.check_release(manifest, platform=self._config.platform, current=self._config.version)
            proxy = await asyncio.to_thread(self._services.load_proxy)
            path = await updater.download(
                manifest,
                updater.downloads_dir(),
                resolver=ProxyResolver(proxy),
                ca_file=credentials.ca_file,
                progress=offer.downloading,
            )
            # The platform's installer: apt-get (waited for) on Linux, a process started elsewhere.
            message = await asyncio.to_thread(self._services.install_update, path, manifest)
        except (CoalesceError, OSError) as exc:
            offer.failed(str(exc))
            return
        offer.ready(path, message)
