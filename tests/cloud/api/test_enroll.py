"""Enrollment: codes, devices, XMPP accounts, throttling of wrong codes."""

from __future__ import annotations

import asyncio
import base64

from sqlalchemy import create_engine, text

from coalesce_cloud.core.config import Settings
from coalesce_cloud.core.security import digest
from coalesce_common.cloud.rest import DeviceCredentials, xmpp_account
from tests.cloud.api.support import (
    ADMIN,
    DOMAIN,
    ClientFactory,
    Cloud,
    FakeClock,
    RecordingXmppAdmin,
    assert_error,
)


async def test_enroll_returns_identity_token_and_xmpp_account(cloud: Cloud, xmpp: RecordingXmppAdmin) -> None:
    code = await cloud.enrollment_code("acme")
    response = await cloud.client.post("/enroll", json={"code": code, "name": "Room 4.12", "kind": "box"})

    assert response.status_code == 201, response.text
    body = response.json()
    device_id = body["device_id"]
    assert body["org"] == "acme" and body["kind"] == "box"
    assert body["token"].startswith(f"{device_id}.")
    assert body["xmpp"] == {
        "jid": f"{device_id}@{DOMAIN}",
        "password": xmpp.accounts[device_id],
        "domain": DOMAIN,
        "host": "xmpp.coalesce.test",
        "starttls_port": 5222,
        "tls_port": 443,
        "endpoints": [{"host": "xmpp.coalesce.test", "starttls_port": 5222, "tls_port": 443}],
    }
    assert len(base64.b64decode(body["update_public_key"])) == 32
    me = await cloud.client.get("/devices/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json()["name"] == "Room 4.12" and me.json()["status"] == "active"


async def test_device_ids_are_case_stable_jid_localparts(cloud: Cloud) -> None:
    devices = [await cloud.enroll() for _ in range(3)]
    ids = {d.device_id for d in devices}
    assert len(ids) == 3
    for device_id in ids:
        assert device_id == device_id.lower() and device_id.isalnum() and len(device_id) == 24


async def test_the_service_account_is_registered_at_startup(cloud: Cloud, xmpp: RecordingXmppAdmin) -> None:
    assert "coalesce-cloud" in xmpp.accounts


async def test_codes_are_used_up_and_typed_loosely(cloud: Cloud) -> None:
    code = await cloud.enrollment_code(uses=2)
    loose = code.replace("-", " ").lower()
    first = await cloud.client.post("/enroll", json={"code": loose, "name": "A", "kind": "sender"})
    second = await cloud.client.post("/enroll", json={"code": code, "name": "B", "kind": "sender"})
    third = await cloud.client.post("/enroll", json={"code": code, "name": "C", "kind": "sender"})
    assert first.status_code == 201 and second.status_code == 201
    assert_error(third, 403, "enrollment_code_invalid")


async def test_wrong_expired_and_used_codes_get_one_answer(cloud: Cloud, clock: FakeClock) -> None:
    used = await cloud.enrollment_code()
    first = await cloud.client.post("/enroll", json={"code": used, "name": "A", "kind": "box"})
    assert first.status_code == 201
    expired = await cloud.enrollment_code(ttl_seconds=60)
    clock.advance(seconds=61)
    answers = []
    for code in (used, expired, "AAAA-BBBB-CCCC-DDDD"):
        response = await cloud.client.post("/enroll", json={"code": code, "name": "A", "kind": "box"})
        answers.append(assert_error(response, 403, "enrollment_code_invalid"))
    assert answers[0] == answers[1] == answers[2]


async def test_wrong_codes_are_throttled_per_client_address(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    async with make_client(client_ip="203.0.113.9") as attacker:
        for _ in range(5):
            response = await attacker.post("/enroll", json={"code": "WRONG", "name": "x", "kind": "sender"})
            assert_error(response, 403, "enrollment_code_invalid")
        code = await Cloud(attacker).enrollment_code()
        blocked = await attacker.post("/enroll", json={"code": code, "name": "x", "kind": "sender"})
        error = assert_error(blocked, 429, "too_many_attempts")
        assert error["retry_after"] >= 1 and blocked.headers["Retry-After"] == str(error["retry_after"])

        async with make_client(client_ip="203.0.113.10") as neighbour:
            ok = await neighbour.post("/enroll", json={"code": code, "name": "x", "kind": "sender"})
            assert ok.status_code == 201, "another address is not throttled"

        clock.advance(seconds=error["retry_after"])
        again = await attacker.post("/enroll", json={"code": "WRONG", "name": "x", "kind": "sender"})
        assert_error(again, 403, "enrollment_code_invalid")
        assert_error(
            await attacker.post("/enroll", json={"code": "WRONG", "name": "x", "kind": "sender"}),
            429,
            "too_many_attempts",
        )


async def test_the_enroll_throttle_counts_an_ipv6_network_as_one_address(
    make_client: ClientFactory,
) -> None:
    """A guesser with a /64 has 2^64 addresses: they share one allowance (another /64 has its own)."""
    wrong = {"code": "WRONG", "name": "x", "kind": "sender"}
    for host in range(1, 6):  # five wrong codes, each from another address of 2001:db8:0:1::/64
        async with make_client(client_ip=f"2001:db8:0:1::{host}") as guesser:
            assert_error(await guesser.post("/enroll", json=wrong), 403, "enrollment_code_invalid")
    async with make_client(client_ip="2001:db8:0:1::99") as fresh_address:
        assert_error(await fresh_address.post("/enroll", json=wrong), 429, "too_many_attempts")
    async with make_client(client_ip="2001:db8:0:2::1") as other_network:
        assert_error(await other_network.post("/enroll", json=wrong), 403, "enrollment_code_invalid")


async def test_xmpp_failure_gives_502_and_keeps_the_code(cloud: Cloud, xmpp: RecordingXmppAdmin) -> None:
    code = await cloud.enrollment_code()
    xmpp.fail = True
    failed = await cloud.client.post("/enroll", json={"code": code, "name": "A", "kind": "sender"})
    assert_error(failed, 502, "xmpp_unavailable")
    assert "ejabberd" not in failed.text, "devices do not learn about the server's insides"
    xmpp.fail = False
    retried = await cloud.client.post("/enroll", json={"code": code, "name": "A", "kind": "sender"})
    assert retried.status_code == 201, "the failed attempt did not use up the code"
    devices = (await cloud.client.get("/admin/devices", headers=ADMIN)).json()["devices"]
    assert [d["device_id"] for d in devices] == [retried.json()["device_id"]]


async def test_secrets_are_stored_only_as_digests(cloud: Cloud, settings: Settings) -> None:
    device = await cloud.enroll()
    dump = await asyncio.to_thread(_dump_tables, settings.effective_database_url)
    secret = device.token.split(".", 1)[1]
    assert secret not in dump and device.xmpp["password"] not in dump
    assert digest(secret) in dump


def _dump_tables(database_url: str) -> str:
    """Every row the cloud keeps about devices, as text (a synchronous engine: call it in a thread)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = ("devices", "enrollment_codes", "audit_events")
            return repr([connection.execute(text(f"SELECT * FROM {table}")).all() for table in tables])
    finally:
        engine.dispose()


async def test_a_cluster_cloud_lists_every_xmpp_node_and_the_device_keeps_them(
    make_client: ClientFactory, settings: Settings
) -> None:
    nodes = [{"host": "xmpp-2.coalesce.test", "starttls_port": 5222, "tls_port": 443}]
    fields = settings.model_dump()
    fields["xmpp"]["more_nodes"] = nodes  # as a settings file gives them
    clustered = Settings.model_validate(fields)
    async with make_client(settings=clustered) as client:
        enrolled = await Cloud(client).enroll()
    assert [e["host"] for e in enrolled.xmpp["endpoints"]] == ["xmpp.coalesce.test", "xmpp-2.coalesce.test"]
    account = xmpp_account(enrolled.xmpp, None)
    assert [(a.host, a.port) for a in account.every_node()] == [
        ("xmpp.coalesce.test", 5222),
        ("xmpp-2.coalesce.test", 5222),
    ]
    assert [(a.host, a.port) for a in account.via_direct_tls().every_node()] == [
        ("xmpp.coalesce.test", 443),
        ("xmpp-2.coalesce.test", 443),
    ]
    kept = DeviceCredentials("https://cloud", enrolled.device_id, enrolled.token, "acme", account)
    assert DeviceCredentials.from_json(kept.to_json()).xmpp.others == account.others  # through the keyring
