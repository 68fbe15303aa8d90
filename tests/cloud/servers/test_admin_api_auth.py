"""ejabberd's admin API (mod_http_api) obeys the cloud's own account only: no credentials, a wrong password,
or a device's valid XMPP credentials are all refused, from the very address the cloud calls from; and that
account cannot be used to log in over XMPP. The managed node sets that account up through a private unix
socket that can do nothing else."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXMLMask

from coalesce_cloud.servers.certs import CaFiles, CertFiles
from coalesce_cloud.servers.ejabberd import EjabberdNode
from coalesce_cloud.servers.errors import ServerNotInstalledError
from tests.cloud.servers.harness import PortFactory, make_ejabberd_node, stop_ejabberd_node_and_check
from tests.cloud.servers.xmpp_client import EVENT_TIMEOUT, TestClient


async def _call(
    node: EjabberdNode, command: str, args: dict[str, str], auth: httpx.Auth | None
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10, auth=auth) as http:
        return await http.post(f"{node.api_url}/{command}", json=args)


@pytest.fixture
async def device_account(ejabberd: EjabberdNode) -> tuple[str, str]:
    """A plain XMPP account (as the cloud makes for a device): (JID, password)."""
    user, password = f"device-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    await ejabberd.async_api_call("register", {"user": user, "host": ejabberd.domain, "password": password})
    return ejabberd.jid(user), password


async def test_only_the_cloud_account_may_call_the_admin_api(
    ejabberd: EjabberdNode, device_account: tuple[str, str]
) -> None:
    victim, _ = device_account
    new_account = {"user": f"intruder-{uuid.uuid4().hex[:8]}", "host": ejabberd.domain, "password": "x" * 20}
    change = {"user": victim.split("@")[0], "host": ejabberd.domain, "newpass": "taken-over"}
    jid, password = ejabberd.api_auth
    strangers: dict[str, httpx.Auth | None] = {
        "no credentials": None,
        "a wrong password": httpx.BasicAuth(jid, "not-the-password"),
        "a device's own credentials": httpx.BasicAuth(*device_account),
        "an unknown account": httpx.BasicAuth(f"nobody@{ejabberd.domain}", password),
    }
    for who, auth in strangers.items():
        for command, args in (("register", new_account), ("change_password", change), ("status", {})):
            response = await _call(ejabberd, command, args, auth)
            assert response.status_code in (401, 403), f"{command} with {who}: {response.status_code}"
    registered = await ejabberd.async_api_call("registered_users", {"host": ejabberd.domain})
    assert isinstance(registered, list) and new_account["user"] not in registered

    # The victim's password is unchanged: the same request with the cloud's account does change it.
    response = await _call(ejabberd, "change_password", change, httpx.BasicAuth(jid, password))
    assert response.status_code == 200, response.text


async def test_a_wrong_password_is_told_apart_from_a_missing_permission(
    ejabberd: EjabberdNode, device_account: tuple[str, str]
) -> None:
    jid, _ = ejabberd.api_auth
    assert (await _call(ejabberd, "status", {}, httpx.BasicAuth(jid, "wrong"))).status_code == 401
    assert (await _call(ejabberd, "status", {}, httpx.BasicAuth(*device_account))).status_code == 403


async def test_the_cloud_account_cannot_log_in_over_xmpp(
    ejabberd: EjabberdNode, cloud_ssl_context: ssl.SSLContext
) -> None:
    jid, password = ejabberd.api_auth
    client = TestClient(jid, password, cloud_ssl_context)
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_error(iq: Any) -> None:
        if not refused.done():
            refused.set_result(str(iq["error"]["condition"]))

    # SASL succeeds (the password is right); the c2s access rule refuses the session at resource binding.
    client.xmpp.register_handler(
        Callback("iq error", MatchXMLMask("<iq xmlns='jabber:client' type='error'/>"), on_error)
    )
    client.xmpp.enable_direct_tls, client.xmpp.enable_plaintext = False, False
    client.xmpp.connect(ejabberd.host, ejabberd.c2s_port)
    try:
        done, _ = await asyncio.wait(
            {refused, client.session_started}, timeout=EVENT_TIMEOUT, return_when="FIRST_COMPLETED"
        )
        assert refused in done and refused.result() == "not-allowed"
        assert not client.session_started.done()
    finally:
        client.session_started.cancel()  # before abort(), which would set "disconnected before the session"
        client.xmpp.abort()
    # The account exists and works for the API all the same.
    assert "is running" in str(await ejabberd.async_api_call("status"))


async def test_the_owner_socket_only_sets_up_accounts(ejabberd: EjabberdNode) -> None:
    transport = httpx.AsyncHTTPTransport(uds=str(ejabberd.config.owner_socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://owner/api", timeout=10) as owner:
        host, user = {"host": ejabberd.domain}, {"host": ejabberd.domain, "user": "x"}
        for command, args in (("registered_users", host), ("kick_user", user), ("status", {})):
            response = await owner.post(f"/{command}", json=args)
            assert response.status_code == 403, command


def test_a_kept_spool_gets_the_new_password(
    tmp_path: Path, xmpp_cert: CertFiles, cloud_ca: CaFiles, free_tcp_port_factory: PortFactory
) -> None:
    """A node restarted on its spool with another API password (the account exists) answers to the new
    one only: it resets the password through its socket rather than failing."""
    first = make_ejabberd_node(tmp_path / "ejabberd", xmpp_cert, cloud_ca, free_tcp_port_factory)
    try:
        first.start()
    except ServerNotInstalledError as exc:
        pytest.skip(str(exc))
    old_jid, old_password = first.api_auth
    stop_ejabberd_node_and_check(first)
    second = EjabberdNode(
        dataclasses.replace(first.config, api_password="a-new-password-" + uuid.uuid4().hex)
    )
    second.start()
    try:
        assert "is running" in str(second.api_call("status"))
        stale = httpx.post(f"{second.api_url}/status", json={}, auth=(old_jid, old_password), timeout=10)
        assert stale.status_code == 401
    finally:
        stop_ejabberd_node_and_check(second)
