"""The cloud standing without Qt: enrollment, and a signed update offered, downloaded and verified.

The cloud's update endpoint and the download are a real HTTP server on loopback (``test_updater``'s); the
enrollment call itself is replaced where the test is about what the app does with its outcome.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from coalesce_client.app.cloud import CloudStanding
from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.models.app_settings import AppSettingsModel
from coalesce_client.models.cloud import CloudAccount, UpdateOffer, UpdatePhase
from coalesce_common.cloud.rest import CloudError, DeviceCredentials
from coalesce_common.cloud.updates import Manifest, sign_manifest
from coalesce_common.net.proxy import ProxyConfig
from coalesce_common.signaling.xmpp import XmppAccount
from tests.client_app.conftest import Server, until
from tests.client_app.test_updater import PACKAGE, PLATFORM, manifest


@pytest.fixture
async def scheduler() -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(asyncio.get_running_loop())
    yield scheduler
    await scheduler.aclose()


def signed_release(cloud: Server) -> DeviceCredentials:
    """Publish a signed 9.0.0 on ``cloud``; credentials that trust its key and point at it."""
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    document = sign_manifest(key, manifest(cloud))
    cloud.routes[f"/api/v1/updates/{PLATFORM}"] = (200, json.dumps(document).encode())
    cloud.routes["/coalesce_9.0.0.deb"] = (200, PACKAGE)
    return DeviceCredentials(
        api_url=cloud.url(""),
        device_id="dev-42",
        token="t",
        org="Acme",
        xmpp=XmppAccount("dev-42@cloud.example", "p", "127.0.0.1", 5222, False, None),
        update_public_key=public,
    )


Standing = tuple[CloudStanding, CloudAccount, UpdateOffer, AppSettingsModel]


@pytest.fixture
def make_standing(scheduler: Scheduler, isolated_home: Path) -> Callable[..., Standing]:
    """``make_standing(**SenderServices fields)``: the cloud standing of a sender at version 0.1.0."""

    def make(**services: Any) -> Standing:
        account, update = CloudAccount(), UpdateOffer()
        settings = AppSettingsModel(isolated_home / "config" / "coalesce" / "app.json")
        config = SenderConfig(platform=PLATFORM, version="0.1.0")
        edge = SenderServices(load_proxy=lambda: ProxyConfig(mode="none"), **services)
        return CloudStanding(account, update, settings, scheduler, config, edge), account, update, settings

    return make


async def test_an_enrolled_sender_is_offered_the_newer_release_and_gets_it_verified(
    server: Server, scheduler: Scheduler, make_standing: Callable[..., Standing], isolated_home: Path
) -> None:
    credentials = signed_release(server)
    handed: list[tuple[Path, str]] = []

    def install(path: Path, manifest: Manifest) -> str:  # the real one runs apt-get: tests/installers does
        handed.append((path, manifest.version))
        return "Coalesce 9.0.0 is installed."

    cloud, account, update, _ = make_standing(load_credentials=lambda: credentials, install_update=install)
    scheduler.spawn(cloud.run(), "cloud")
    await until(update, lambda: update.phase is UpdatePhase.AVAILABLE, "the update offered")
    assert account.enrolled and account.device_id == "dev-42" and account.org == "Acme"
    assert (update.version, update.notes) == ("9.0.0", "Faster sharing.")

    cloud.install_update()
    await until(update, lambda: update.phase is UpdatePhase.READY, "the update downloaded")
    assert update.path is not None and await asyncio.to_thread(update.path.read_bytes) == PACKAGE
    assert update.path.is_relative_to(isolated_home / "cache")
    assert handed == [(update.path, "9.0.0")] and update.message == "Coalesce 9.0.0 is installed."


async def test_a_tampered_download_is_refused(
    server: Server, scheduler: Scheduler, make_standing: Callable[..., Standing]
) -> None:
    credentials = signed_release(server)
    server.routes["/coalesce_9.0.0.deb"] = (200, PACKAGE + b"tampered")
    cloud, _, update, _ = make_standing(load_credentials=lambda: credentials)
    scheduler.spawn(cloud.run(), "cloud")
    await until(update, lambda: update.phase is UpdatePhase.AVAILABLE, "the update offered")
    cloud.install_update()
    await until(update, lambda: update.phase is UpdatePhase.FAILED, "the download refused")
    assert "does not match its signed checksum" in update.message


async def test_enrolling_says_the_clouds_refusal_then_succeeds_and_looks_for_updates(
    server: Server, make_standing: Callable[..., Standing]
) -> None:
    calls: list[dict[str, Any]] = []
    outcomes: list[Exception | DeviceCredentials] = [
        CloudError("This enrollment code has expired: ask your IT administrator for a new one.", "expired"),
        signed_release(server),
    ]

    async def enroll(url: str, code: str, name: str, **kwargs: Any) -> DeviceCredentials:
        calls.append({"url": url, "code": code, "name": name, **kwargs})
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    cloud, account, update, settings = make_standing(enroll=enroll, load_credentials=lambda: None)
    proxy = ProxyConfig(mode="none")
    cloud.enroll(url=" https://cloud.example ", code="ABCD-1234", ca_file="", proxy=proxy)
    assert account.enrolling
    cloud.enroll(url="https://cloud.example", code="ABCD-1234", ca_file="", proxy=proxy)  # one at a time
    await until(account, lambda: not account.enrolling, "the refusal")
    assert account.error is not None and "has expired" in account.error and not account.enrolled

    cloud.enroll(url="https://cloud.example", code="ABCD-1234", ca_file="", proxy=proxy)
    await until(update, lambda: update.phase is UpdatePhase.AVAILABLE, "an update looked for once enrolled")
    assert account.enrolled and account.error is None
    assert settings.settings.cloud_url == "https://cloud.example"
    assert len(calls) == 2 and calls[0]["url"] == "https://cloud.example"  # trimmed
    assert calls[0]["service"] == "coalesce-sender" and calls[0]["kind"] == "sender"
    assert calls[0]["ca_file"] is None


async def test_enrolling_without_an_address_or_code_says_what_to_type(
    make_standing: Callable[..., Standing],
) -> None:
    cloud, account, _, _ = make_standing()
    cloud.enroll(url="cloud.example", code="ABCD-1234", ca_file="", proxy=ProxyConfig(mode="none"))
    await until(account, lambda: not account.enrolling, "the answer")
    assert account.error is not None and account.error.startswith("Type the cloud's address (https://…)")
