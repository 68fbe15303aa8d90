"""The app's cloud paths against a real local cloud (ejabberd, coturn, HTTPS API) and a linked box."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytestqt.qtbot import QtBot

from coalesce_cloud.stack import LocalCloud
from coalesce_common.cloud import store
from coalesce_common.cloud.rest import CloudClient, DeviceCredentials
from coalesce_common.net.proxy import ProxyConfig
from coalesce_receiver.services.cloud_link import CloudLink
from coalesce_receiver.services.receiver import Receiver, ReceiverConfig
from tests.client_ui.conftest import SENDER_NAME, WAIT_MS, Runner, SenderFactory, off_the_loop
from tests.client_ui.test_flows import enter_pin, shown_senders, type_address, wait_sharing
from tests.cloudlab import local_cloud  # noqa: F401 - the module-scoped cloud fixture

PIN = "4821"


async def _admin(
    cloud: LocalCloud, method: str, path: str, body: dict[str, object] | None = None
) -> httpx.Response:
    verify, token = await asyncio.to_thread(_admin_access, cloud)
    async with httpx.AsyncClient(verify=verify, base_url=cloud.api_url + "/api/v1") as http:
        return await http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})


def _admin_access(cloud: LocalCloud) -> tuple[ssl.SSLContext, str]:
    """The cloud's CA and the admin token, both read from files."""
    return ssl.create_default_context(cafile=cloud.ca_file), cloud.admin_token


async def _enroll(cloud: LocalCloud, name: str, kind: str) -> DeviceCredentials:
    code = await _admin(
        cloud, "POST", "/admin/enrollment-codes", {"org": "acme", "uses": 1, "ttl_seconds": 600}
    )
    async with CloudClient(cloud.api_url, ca_file=cloud.ca_file) as api:
        return await api.enroll(code.json()["code"], name, kind, ca_file=cloud.ca_file)


@pytest.fixture
def linked_box(local_cloud: LocalCloud, run: Runner, tmp_path: Path) -> Iterator[Receiver]:  # noqa: F811
    """A headless box with PIN 4821, enrolled and linked to the cloud on the app's own event loop."""
    receiver = Receiver(
        ReceiverConfig(name="Cloud Room", pin=PIN, host="127.0.0.1", port=0, fallback_port=None,
                       data_dir=tmp_path / "box", mdns=False)
    )  # fmt: skip
    run(receiver.start())
    link = CloudLink(receiver, run(_enroll(local_cloud, "Cloud Room", "box")))
    run(link.start())
    yield receiver
    run(link.aclose())
    run(receiver.aclose())


@pytest.fixture
def enrolled(local_cloud: LocalCloud, run: Runner) -> DeviceCredentials:  # noqa: F811
    credentials = run(_enroll(local_cloud, "Laptop", "sender"))
    off_the_loop(run, store.save, "coalesce-sender", credentials)  # the app reads the keyring (a file here)
    return credentials


def test_sharing_by_meeting_id_through_the_cloud(
    make_sender: SenderFactory, linked_box: Receiver, enrolled: DeviceCredentials, qtbot: QtBot
) -> None:
    app = make_sender(services={"load_credentials": lambda: enrolled})
    assert linked_box.model.meeting_id is not None
    type_address(qtbot, app, linked_box.model.meeting_id)
    enter_pin(qtbot, app, PIN)
    wait_sharing(qtbot, app)
    qtbot.waitUntil(lambda: shown_senders(linked_box) == [SENDER_NAME], timeout=WAIT_MS)
    qtbot.mouseClick(
        app.window.sharing_page.stop_button, __import__("PySide6").QtCore.Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: linked_box.model.shares == [], timeout=WAIT_MS)


def test_a_suspended_device_is_told_so(
    make_sender: SenderFactory, linked_box: Receiver, enrolled: DeviceCredentials, local_cloud: LocalCloud,  # noqa: F811
    run: Runner, qtbot: QtBot,
) -> None:  # fmt: skip
    response = run(
        _admin(
            local_cloud,
            "POST",
            f"/admin/devices/{enrolled.device_id}/suspend",
            {"until": "2099-01-01T00:00:00Z"},
        )
    )
    assert response.status_code == 200
    app = make_sender(services={"load_credentials": lambda: enrolled})
    assert linked_box.model.meeting_id is not None
    type_address(qtbot, app, linked_box.model.meeting_id)
    message = app.window.connect_page.message
    qtbot.waitUntil(lambda: message.isVisible() and "suspended" in message.text(), timeout=WAIT_MS)
    assert linked_box.model.shares == []


def test_a_proxy_that_does_not_answer_is_named(
    make_sender: SenderFactory, linked_box: Receiver, enrolled: DeviceCredentials, qtbot: QtBot
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    proxy = ProxyConfig(mode="manual", url=f"http://127.0.0.1:{dead}")
    app = make_sender(services={"load_credentials": lambda: enrolled, "load_proxy": lambda: proxy})
    assert linked_box.model.meeting_id is not None
    type_address(qtbot, app, linked_box.model.meeting_id)
    message = app.window.connect_page.message
    qtbot.waitUntil(
        lambda: message.isVisible() and f"127.0.0.1:{dead} is unreachable" in message.text(), timeout=WAIT_MS
    )
