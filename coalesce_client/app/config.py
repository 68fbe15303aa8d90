"""What the app core is given: its timings (:class:`SenderConfig`) and its IO edge (:class:`SenderServices`).

Every default is the real thing, so the app passes nothing; tests shrink the timings instead of sleeping
and replace only the edges they cannot have (a screen to grab, a camera, the keyring's credentials).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from coalesce_client.app.share_handle import ShareFactory, open_share
from coalesce_client.models.media import Camera, Monitor
from coalesce_client.services import devices, updater
from coalesce_client.services.remote import KEYRING_SERVICE
from coalesce_client.settings import load_proxy, save_proxy
from coalesce_common.cloud import store
from coalesce_common.cloud.device import enroll
from coalesce_common.cloud.rest import DeviceCredentials
from coalesce_common.cloud.updates import Manifest, current_platform, installed_version
from coalesce_common.discovery import CONFIRM_INTERVAL, CONFIRM_TIMEOUT, local_ipv4_addresses
from coalesce_common.keyring_store import keyring_problem
from coalesce_common.net.proxy import ProxyConfig

EnrollFunction = Callable[..., Awaitable[DeviceCredentials]]


def _load_credentials() -> DeviceCredentials | None:
    return store.load(KEYRING_SERVICE)


@dataclass(frozen=True)
class SenderServices:
    """The app core's IO edge; every default is the real thing."""

    grab_monitors: Callable[[str | None], list[Monitor]] = devices.grab_monitors
    list_cameras: Callable[[], list[Camera]] = devices.list_cameras
    open_share: ShareFactory = open_share
    load_credentials: Callable[[], DeviceCredentials | None] = _load_credentials
    load_proxy: Callable[[], ProxyConfig] = load_proxy
    save_proxy: Callable[[ProxyConfig], Path] = save_proxy
    keyring_problem: Callable[[], str | None] = keyring_problem  # why secrets cannot be kept; None: they can
    enroll: EnrollFunction = enroll
    # the platform's installer for a verified update (blocking: apt-get is waited for on Linux)
    install_update: Callable[[Path, Manifest], str] = updater.hand_to_installer
    local_addresses: Callable[[], list[str]] = local_ipv4_addresses  # discovery restarts when they change


@dataclass(frozen=True)
class SenderConfig:
    """Timings and where to look; tests shrink the timings instead of sleeping."""

    discovery: bool = True
    discovery_interfaces: list[str] | None = None
    discovery_settle: float = 3.0  # "Looking for room displays…" this long before an empty list means none
    discovery_retry: float = 10.0  # after mDNS could not be started
    discovery_confirm_interval: float = CONFIRM_INTERVAL  # how often each listed receiver must answer
    discovery_confirm_timeout: float = CONFIRM_TIMEOUT  # how long a confirmation waits for the answers
    network_check_interval: float = 5.0
    display: str | None = None  # X display to capture; None: $DISPLAY
    thumbnail_interval: float = 3.0
    status_interval: float = 1.0
    preview_interval: float = 0.25
    update_check_interval: float = 6 * 3600.0
    connect_timeout: float = 10.0
    join_answer_timeout: float = 100.0  # a join request nobody answers is denied after this long
    fps: float = 30.0
    platform: str = field(default_factory=current_platform)
    version: str = field(default_factory=installed_version)
