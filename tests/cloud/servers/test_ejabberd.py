"""A real ejabberd node: accounts through the HTTP API, SCRAM-SHA-256 logins over STARTTLS and direct
TLS, SCRAM-only password storage, kicks, and messages (64 KiB ones too)."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from coalesce_cloud.servers.ejabberd import EjabberdNode
from coalesce_cloud.servers.errors import ServerCommandError
from tests.cloud.servers.xmpp_client import TestClient

Login = Callable[..., Awaitable[TestClient]]


def new_user(node: EjabberdNode, prefix: str) -> tuple[str, str]:
    """Register a fresh account through the API; returns (localpart, password)."""
    user = f"{prefix}-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex}"
    result = node.api_call("register", {"user": user, "host": node.domain, "password": password})
    assert result == f"User {user}@{node.domain} successfully registered"
    return user, password


@pytest.fixture
async def login(ejabberd: EjabberdNode, cloud_ssl_context: ssl.SSLContext) -> AsyncIterator[Login]:
    """``await login(user, password, direct_tls=False)``: a logged-in client, disconnected at teardown."""
    clients: list[TestClient] = []

    async def factory(user: str, password: str, *, direct_tls: bool = False) -> TestClient:
        client = await TestClient.login(
            ejabberd.jid(user),
            password,
            host=ejabberd.host,
            port=ejabberd.c2s_tls_port if direct_tls else ejabberd.c2s_port,
            ssl_context=cloud_ssl_context,
            direct_tls=direct_tls,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


def test_api_answers_status_and_manages_accounts(ejabberd: EjabberdNode) -> None:
    assert "is running" in str(ejabberd.api_call("status"))
    user, _ = new_user(ejabberd, "acct")
    account = {"user": user, "host": ejabberd.domain}
    assert ejabberd.api_call("check_account", account) == 0
    users = ejabberd.api_call("registered_users", {"host": ejabberd.domain})
    assert isinstance(users, list) and user in users
    with pytest.raises(ServerCommandError, match="HTTP 409"):
        ejabberd.api_call("register", {**account, "password": "another"})
    assert ejabberd.api_call("unregister", account) == ""
    assert ejabberd.api_call("check_account", account) == 1


def test_commands_outside_the_allowed_list_are_refused(ejabberd: EjabberdNode) -> None:
    with pytest.raises(ServerCommandError, match="HTTP 403"):
        ejabberd.api_call("stop")


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
async def test_login_uses_scram_sha_256_over_tls(
    ejabberd: EjabberdNode, login: Login, direct_tls: bool
) -> None:
    user, password = await asyncio.to_thread(new_user, ejabberd, "scram")
    client = await login(user, password, direct_tls=direct_tls)
    assert client.sasl_mechanism == "SCRAM-SHA-256"
    assert "PLAIN" not in client.offered_mechanisms
    assert client.tls_version in {"TLSv1.2", "TLSv1.3"}
    sessions = await ejabberd.async_api_call("user_sessions_info", {"user": user, "host": ejabberd.domain})
    assert isinstance(sessions, list) and len(sessions) == 1


async def test_wrong_password_is_refused(ejabberd: EjabberdNode, login: Login) -> None:
    user, _ = await asyncio.to_thread(new_user, ejabberd, "wrong")
    with pytest.raises(PermissionError):
        await login(user, "not-the-password")


async def test_passwords_are_stored_as_scram_only(
    ejabberd: EjabberdNode, login: Login, tmp_path: Path
) -> None:
    user, password = await asyncio.to_thread(new_user, ejabberd, "stored")
    await login(user, password)  # a login must not upgrade or add any other form
    dump = tmp_path / "passwd.txt"
    await asyncio.to_thread(ejabberd.ctl, "dump_table", str(dump), "passwd")
    table = await asyncio.to_thread(dump.read_text)
    records = [line for line in table.split("{passwd,") if f'<<"{user}">>' in line]
    assert len(records) == 1
    assert "{scram," in records[0] and ",sha256," in records[0]
    assert password not in table


async def test_kick_user_drops_the_live_session(ejabberd: EjabberdNode, login: Login) -> None:
    user, password = await asyncio.to_thread(new_user, ejabberd, "kicked")
    client = await login(user, password)
    result = await ejabberd.async_api_call("kick_user", {"user": user, "host": ejabberd.domain})
    assert result == {"num_resources": 1}
    await client.wait_disconnected()
    assert await ejabberd.async_api_call("user_sessions_info", {"user": user, "host": ejabberd.domain}) == []


async def test_two_users_exchange_messages_up_to_64_kib(ejabberd: EjabberdNode, login: Login) -> None:
    alice_user, alice_password = await asyncio.to_thread(new_user, ejabberd, "alice")
    bob_user, bob_password = await asyncio.to_thread(new_user, ejabberd, "bob")
    alice = await login(alice_user, alice_password)
    bob = await login(bob_user, bob_password, direct_tls=True)

    # To the full JID: a message to the bare JID right after login races the server's handling of bob's
    # initial presence, and without it ejabberd keeps the message for later (mod_offline).
    alice.send_chat(str(bob.xmpp.boundjid.full), "hello bob")
    message = await bob.next_message()
    assert message["body"] == "hello bob"
    assert message["from"].bare == ejabberd.jid(alice_user)

    # 64 KiB of signaling-like JSON (an SDP full of candidates), the largest payload we promise to carry.
    line = "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0\\r\\n"
    big = ('{"type": "offer", "sdp": "' + line * (64 * 1024 // len(line) + 1))[: 64 * 1024 - 2] + '"}'
    assert len(big.encode()) == 64 * 1024
    bob.send_chat(str(alice.xmpp.boundjid.full), big)
    reply = await alice.next_message()
    assert reply["body"] == big
