"""A whole local cloud (ejabberd, coturn, HTTPS REST API) and devices, for end-to-end remote-share tests.

The fixtures are imported by the conftest.py of each test folder that needs them (tests/cloud/e2e,
tests/proxy).

The cloud runs on its own event loop in a background thread for the whole module, so each test keeps
its own loop (pytest-asyncio) and talks to the cloud over real TLS sockets, as a device would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import keyring
import numpy as np
import pytest
from keyrings.alt.file import PlaintextKeyring

from coalesce_cloud.servers.errors import ServerNotInstalledError
from coalesce_cloud.stack import LocalCloud
from coalesce_common.cloud.rest import CloudClient, DeviceCredentials
from coalesce_common.media.ice import reset_host_addresses_policy, set_host_addresses_policy
from coalesce_receiver.services.cloud_link import CloudLink
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig

WEB_GUEST_SWEEP_SECONDS = 0.5
"""Expired web guests go within this in the tests' clouds (30 s in production)."""


class CloudThread:
    """Runs a :class:`LocalCloud` on a private event loop in a daemon thread."""

    def __init__(self, state_dir: Path, host: str = "127.0.0.1") -> None:
        self.cloud = LocalCloud(state_dir, host=host, web_guest_sweep_seconds=WEB_GUEST_SWEEP_SECONDS)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="local-cloud", daemon=True)

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.cloud.start(), self.loop).result(120)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.cloud.aclose(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@contextlib.contextmanager
def running_cloud(state_dir: Path, host: str = "127.0.0.1") -> Iterator[LocalCloud]:
    """A started :class:`LocalCloud` on ``host`` (the test is skipped when a server is not installed)."""
    runner = CloudThread(state_dir, host=host)
    try:
        runner.start()
    except ServerNotInstalledError as exc:
        runner.stop()
        pytest.skip(str(exc))
    try:
        yield runner.cloud
    finally:
        runner.stop()


@pytest.fixture(scope="module")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with running_cloud(tmp_path_factory.mktemp("cloud")) as cloud:
        yield cloud


@pytest.fixture
def camera_file(tmp_path: Path) -> Path:
    """A short magenta video standing in for a webcam (through the same camera code path)."""
    path = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (320, 240))
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:] = (255, 0, 255)
    for _ in range(30):
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(autouse=True)
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Credentials go to a keyring file in this test's folder, never to the developer's keyring."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def loopback_only_ice() -> Iterator[None]:
    set_host_addresses_policy(only=["127.0.0.1"])
    yield
    reset_host_addresses_policy()


@dataclass
class Admin:
    cloud: LocalCloud

    async def call(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        verify, token = await asyncio.to_thread(self._access)
        async with httpx.AsyncClient(verify=verify, base_url=self.cloud.api_url + "/api/v1") as http:
            return await http.request(method, path, json=json, headers={"Authorization": f"Bearer {token}"})

    def _access(self) -> tuple[ssl.SSLContext, str]:
        """The cloud's CA and the admin token, both read from files."""
        return ssl.create_default_context(cafile=self.cloud.ca_file), self.cloud.admin_token

    async def enrollment_code(self, uses: int = 1) -> str:
        response = await self.call(
            "POST", "/admin/enrollment-codes", {"org": "acme", "uses": uses, "ttl_seconds": 600}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["code"])

    async def enroll(self, name: str, kind: str) -> DeviceCredentials:
        async with CloudClient(self.cloud.api_url, ca_file=self.cloud.ca_file) as api:
            return await api.enroll(await self.enrollment_code(), name, kind, ca_file=self.cloud.ca_file)


@pytest.fixture
def admin(local_cloud: LocalCloud) -> Admin:
    return Admin(local_cloud)


@dataclass
class Box:
    receiver: Receiver
    link: CloudLink
    credentials: DeviceCredentials

    @property
    def meeting_id(self) -> str:
        assert self.receiver.model.meeting_id is not None
        return self.receiver.model.meeting_id


@pytest.fixture
async def box(admin: Admin, tmp_path: Path) -> AsyncIterator[Box]:
    """A headless box, enrolled and linked to the local cloud, with PIN 4821 and a meeting ID."""
    async with linked_box(admin, tmp_path) as started:
        yield started


@contextlib.asynccontextmanager
async def linked_box(admin: Admin, tmp_path: Path, **config: Any) -> AsyncIterator[Box]:
    """:func:`box` with other :class:`ReceiverConfig` fields (``sound_output=...``)."""
    credentials = await admin.enroll("Cloud Room", "box")
    fields: dict[str, Any] = {
        "name": "Cloud Room",
        "pin": "4821",
        "host": "127.0.0.1",
        "port": 0,
        "fallback_port": None,
        "data_dir": tmp_path / "box",
        "mdns": False,
    }
    receiver = Receiver(ReceiverConfig(**(fields | config)))
    await receiver.start()
    link = CloudLink(receiver, credentials)
    try:
        await link.start()
        yield Box(receiver, link, credentials)
    finally:
        await link.aclose()
        await receiver.aclose()
