"""Discovery: the room displays on this network, kept current in :class:`ReceiverList` while the app runs.

One long-lived :class:`~coalesce_common.discovery.ReceiverBrowser` reports receivers straight into the list
as they come, change and go, a room display switched off without a goodbye included: the browser confirms
every few seconds (``SenderConfig.discovery_confirm_interval``) that each one still answers. zeroconf joins
the multicast group on the interfaces it finds when it starts, so when this computer's addresses change
(Wi-Fi joined after login, a VPN, another network) the browser is started again on the new ones, and the
list with it. When mDNS cannot be used at all, the list says so and discovery tries again a little later.
"""

from __future__ import annotations

import asyncio
import logging

from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.models.receivers import ReceiverList
from coalesce_common.discovery import ReceiverBrowser
from coalesce_common.errors import CoalesceError

logger = logging.getLogger(__name__)


class Discovery:
    """Keeps ``receivers`` current for as long as :meth:`run` runs."""

    def __init__(self, receivers: ReceiverList, config: SenderConfig, services: SenderServices) -> None:
        self._receivers = receivers
        self._config = config
        self._services = services

    async def run(self) -> None:
        """Browse until cancelled, starting again whenever this computer's addresses change."""
        config, receivers, loop = self._config, self._receivers, asyncio.get_running_loop()
        while True:
            addresses = set(self._services.local_addresses())
            browser = ReceiverBrowser(
                receivers,
                interfaces=config.discovery_interfaces,
                confirm_interval=config.discovery_confirm_interval,
                confirm_timeout=config.discovery_confirm_timeout,
            )
            receivers.restart()  # what an earlier browser found was its to vouch for
            try:
                await browser.start()
            except (OSError, CoalesceError) as exc:
                logger.warning("mDNS browsing failed: %s", exc)
                receivers.set_problem(
                    f"Cannot look for room displays on this network ({exc}). "
                    "Type the address shown on the room display instead."
                )
                await browser.aclose()
                await asyncio.sleep(config.discovery_retry)
                continue
            settled = loop.call_later(config.discovery_settle, receivers.searched)
            try:
                await self._until_addresses_change(addresses)
            finally:
                settled.cancel()
                await browser.aclose()

    async def _until_addresses_change(self, addresses: set[str]) -> None:
        # Polled: no portable signal says the addresses changed (netlink, NotifyAddrChange and SCDynamicStore
        # each exist on one platform only).
        while (now := set(self._services.local_addresses())) == addresses:  # noqa: ASYNC110
            await asyncio.sleep(self._config.network_check_interval)
        logger.info(
            "this computer's addresses changed (%s → %s): looking for room displays again",
            ", ".join(sorted(addresses)),
            ", ".join(sorted(now)),
        )
