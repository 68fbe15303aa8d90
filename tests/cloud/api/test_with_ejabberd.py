"""The API against a real ejabberd (the ``ejabberd`` fixture): enrolled credentials log in with SCRAM,
suspend and revoke kick live sessions and stop new logins, boxes hear about it from the service JID."""

from __future__ import annotations

import json
import secrets
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from coalesce_cloud.api.app import create_app
from coalesce_cloud.core.config import Settings
from coalesce_cloud.servers.ejabberd import EjabberdNode
from coalesce_cloud.xmpp_admin import (
    EjabberdHttpAdmin,
    XmppAccountExists,
    XmppAdminError,
    ensure_account,
)
from tests.cloud.api.support import ClientFactory, Cloud, Enrolled, FakeClock, assert_error
from tests.cloud.servers.xmpp_client import TestClient


@pytest.fixture
def ejabberd_settings(settings: Settings, ejabberd: EjabberdNode) -> Settings:
    xmpp = {
        "domain": ejabberd.domain,
        "host": ejabberd.host,
        "starttls_port": ejabberd.c2s_port,
        "tls_port": ejabberd.c2s_tls_port,
        "api_url": ejabberd.api_url,
        "api_user": ejabberd.config.api_user,
        "api_password": SecretStr(ejabberd.config.api_password),
    }
    return settings.model_copy(update={"xmpp": settings.xmpp.model_copy(update=xmpp)})


@pytest.fixture
async def real_cloud(make_client: ClientFactory, ejabberd_settings: Settings) -> AsyncIterator[Cloud]:
    # No injected XmppAdmin: the app builds its ejabberd client from the settings, as in production.
    async with make_client(settings=ejabberd_settings, xmpp_admin=None) as client:
        yield Cloud(client)


class Logins:
    """Logs devices in with the credentials the API handed out; closes every client at the end."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self.ssl_context = ssl_context
        self.clients: list[TestClient] = []

    async def login(self, xmpp: dict[str, object], *, direct_tls: bool = False) -> TestClient:
        port = xmpp["tls_port"] if direct_tls else xmpp["starttls_port"]
        assert isinstance(port, int)
        client = await TestClient.login(
            str(xmpp["jid"]),
            str(xmpp["password"]),
            host=str(xmpp["host"]),
            port=port,
            ssl_context=self.ssl_context,
            direct_tls=direct_tls,
        )
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def logins(cloud_ssl_context: ssl.SSLContext) -> AsyncIterator[Logins]:
    logins = Logins(cloud_ssl_context)
    yield logins
    await logins.close()


async def test_enrolled_credentials_log_in_with_scram(real_cloud: Cloud, logins: Logins) -> None:
    device = await real_cloud.enroll("sender")
    starttls = await logins.login(device.xmpp)
    direct = await logins.login(device.xmpp, direct_tls=True)
    assert starttls.sasl_mechanism.startswith("SCRAM-SHA-256")
    assert direct.tls_version in {"TLSv1.2", "TLSv1.3"}


async def expect_login_refused(
    logins: Logins, device: Enrolled, xmpp: dict[str, object] | None = None
) -> None:
    with pytest.raises(PermissionError):
        await logins.login(xmpp or device.xmpp)


@pytest.mark.parametrize("action", ["suspend", "revoke"])
async def test_cutting_off_a_device_kicks_it_and_tells_the_boxes(
    real_cloud: Cloud, logins: Logins, clock: FakeClock, action: str
) -> None:
    box = await real_cloud.enroll("box", "Room 4.12")
    sender = await real_cloud.enroll("sender", "Laptop")
    box_session = await logins.login(box.xmpp)
    sender_session = await logins.login(sender.xmpp)
    assert (await real_cloud.client.post("/meetings", headers=box.headers)).status_code == 201

    body = {"until": (clock.now + timedelta(hours=1)).isoformat()} if action == "suspend" else {}
    response = await real_cloud.admin(action, sender, **body)

    assert response.status_code == 200, response.text
    assert response.json()["sessions_kicked"] == 1 and response.json()["boxes_notified"] == 1
    await sender_session.wait_disconnected()
    notice = await box_session.next_message()
    assert str(notice["from"]) == f"coalesce-cloud@{box.jid.split('@')[1]}"
    assert json.loads(notice["body"]) == {
        "coalesce": "device-status",
        "device_id": sender.device_id,
        "jid": sender.jid,
        "status": "suspended" if action == "suspend" else "revoked",
    }
    await expect_login_refused(logins, sender)
    code = "device_suspended" if action == "suspend" else "device_revoked"
    assert_error(await real_cloud.client.post("/turn-credentials", headers=sender.headers), 403, code)
    assert_error(
        await real_cloud.client.post("/devices/me/xmpp-credentials", headers=sender.headers), 403, code
    )


async def test_after_a_suspension_the_device_gets_new_xmpp_credentials(
    real_cloud: Cloud, logins: Logins, clock: FakeClock
) -> None:
    sender = await real_cloud.enroll("sender")
    await real_cloud.admin("suspend", sender, until=(clock.now + timedelta(hours=1)).isoformat())
    assert (await real_cloud.admin("restore", sender)).status_code == 200

    await expect_login_refused(logins, sender)  # restore does not bring the old password back
    rotated = await real_cloud.client.post("/devices/me/xmpp-credentials", headers=sender.headers)
    assert rotated.status_code == 200, rotated.text
    session = await logins.login(rotated.json()["xmpp"])
    assert session.session_started.done()


async def test_a_web_guest_is_logged_out_and_locked_out_when_its_meeting_ends(
    make_client: ClientFactory, ejabberd_settings: Settings, logins: Logins
) -> None:
    settings = ejabberd_settings.model_copy(update={"web_guest_sweep_every": timedelta(milliseconds=50)})
    app = create_app(settings)
    async with make_client(app=app) as client:
        cloud = Cloud(client)
        box = await cloud.enroll("box", "Room 4.12")
        meeting = await client.post("/meetings", headers=box.headers)
        admitted = await client.post(
            "/web-guests", json={"meeting_id": meeting.json()["meeting_id"], "name": "V"}
        )
        assert admitted.status_code == 201, admitted.text
        xmpp = settings.xmpp
        guest = {**admitted.json()["xmpp"], "host": xmpp.host, "starttls_port": xmpp.starttls_port}
        page = await logins.login(guest)
        assert (await client.post("/meetings", headers=box.headers)).status_code == 201  # the next meeting
        await app.state.context.guest_expiry.next_sweep()
        await page.wait_disconnected()
        with pytest.raises(PermissionError):
            await logins.login(guest)


async def test_ejabberd_admin_maps_errors(ejabberd: EjabberdNode, free_tcp_port: int) -> None:
    user = f"probe-{secrets.token_hex(4)}"
    account = {"user": ejabberd.config.api_user, "password": ejabberd.config.api_password}
    async with EjabberdHttpAdmin(ejabberd.api_url, ejabberd.domain, **account) as admin:
        await admin.register(user, "pw-1")
        with pytest.raises(XmppAccountExists):
            await admin.register(user, "pw-2")
        await ensure_account(admin, user, "pw-3")
        assert await admin.kick(user) == 0
        await admin.ban(user, "test")
        with pytest.raises(XmppAdminError) as unknown:
            await admin.change_password(f"nobody-{secrets.token_hex(4)}", "pw")
        assert unknown.value.status == 404 and unknown.value.command == "change_password"
        await admin.unregister(user)
        await admin.unregister(user)  # an account already gone is no error (two API replicas sweep guests)
        assert await admin.kick(user) == 0
    dead_url = f"http://127.0.0.1:{free_tcp_port}/api"
    async with EjabberdHttpAdmin(dead_url, ejabberd.domain, **account, timeout=2) as dead:
        with pytest.raises(XmppAdminError, match="could not reach ejabberd") as unreachable:
            await dead.register(user, "pw")
    assert f"nothing is listening at 127.0.0.1:{free_tcp_port}" in str(unreachable.value)
    assert "Errno" not in str(unreachable.value)


async def test_ejabberd_admin_fails_over_to_the_next_node(ejabberd: EjabberdNode, free_tcp_port: int) -> None:
    account = {"user": ejabberd.config.api_user, "password": ejabberd.config.api_password}
    dead_url = f"http://127.0.0.1:{free_tcp_port}/api"  # a node that is down
    user = f"failover-{secrets.token_hex(4)}"
    async with EjabberdHttpAdmin(
        [dead_url, ejabberd.api_url], ejabberd.domain, **account, timeout=2
    ) as admin:
        await admin.register(user, "pw-1")  # the dead node is passed over
        await admin.change_password(user, "pw-2")  # and the live one is asked first from now on
        await admin.unregister(user)
    async with EjabberdHttpAdmin([dead_url, dead_url], ejabberd.domain, **account, timeout=2) as nobody:
        with pytest.raises(XmppAdminError, match="could not reach ejabberd") as unreachable:
            await nobody.register(user, "pw")
    assert f"nothing is listening at 127.0.0.1:{free_tcp_port}" in str(unreachable.value)
