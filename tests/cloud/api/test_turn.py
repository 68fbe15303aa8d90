"""TURN credentials: shape, validity, refusal for suspended devices."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import datetime

import pytest

from coalesce_cloud.core.config import Settings, TurnRegion
from tests.cloud.api.support import TURN_SECRET, ClientFactory, Cloud, FakeClock, assert_error


async def test_turn_credentials_cover_every_region(cloud: Cloud, clock: FakeClock) -> None:
    device = await cloud.enroll()
    response = await cloud.client.post("/turn-credentials", headers=device.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ttl"] == 600
    assert datetime.fromisoformat(body["expires_at"]) == clock.now.replace(minute=10)
    eu, us = body["servers"]
    assert eu["region"] == "eu-west" and us["region"] == "us-east"
    assert eu["urls"] == [
        "stun:turn-eu.coalesce.test:3478",
        "turn:turn-eu.coalesce.test:3478?transport=udp",
        "turn:turn-eu.coalesce.test:3478?transport=tcp",
        "turns:turn-eu.coalesce.test:443?transport=tcp",
    ]
    assert (
        us["urls"][0] == "stun:[2001:db8::1]:3478"
        and us["urls"][3] == "turns:[2001:db8::1]:5349?transport=tcp"
    )
    expiry = int(clock.now.timestamp()) + 600
    assert eu["username"] == f"{expiry}:{device.device_id}"
    expected = hmac.new(TURN_SECRET.encode(), eu["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(eu["credential"]) == expected


async def test_no_turn_for_suspended_or_revoked_devices(cloud: Cloud, clock: FakeClock) -> None:
    suspended, revoked = await cloud.enroll(), await cloud.enroll()
    await cloud.admin("suspend", suspended, until=clock.now.replace(hour=12).isoformat())
    await cloud.admin("revoke", revoked)
    assert_error(
        await cloud.client.post("/turn-credentials", headers=suspended.headers), 403, "device_suspended"
    )
    assert_error(await cloud.client.post("/turn-credentials", headers=revoked.headers), 403, "device_revoked")


async def test_without_turn_servers_the_answer_is_503(make_client: ClientFactory, settings: Settings) -> None:
    bare = settings.model_copy(update={"turn": settings.turn.model_copy(update={"regions": []})})
    async with make_client(settings=bare) as client:
        device = await Cloud(client).enroll()
        assert_error(await client.post("/turn-credentials", headers=device.headers), 503, "turn_unavailable")


async def test_a_region_names_its_tls_relay_for_firefox_and_the_api_warns_of_an_address(
    make_client: ClientFactory, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    regions = [
        TurnRegion(name="lab", host="192.0.2.10", tls_port=443, tls_host="turn.lab.test"),
        TurnRegion(name="bare", host="192.0.2.11", tls_port=443),
    ]
    named = settings.model_copy(update={"turn": settings.turn.model_copy(update={"regions": regions})})
    with caplog.at_level(logging.WARNING, logger="coalesce_cloud.api.app"):
        async with make_client(settings=named) as client:
            device = await Cloud(client).enroll()
            lab, bare = (await client.post("/turn-credentials", headers=device.headers)).json()["servers"]
    assert lab["urls"][0] == "stun:192.0.2.10:3478"  # UDP and TCP keep the address
    assert lab["urls"][3] == "turns:turn.lab.test:443?transport=tcp"
    assert bare["urls"][3] == "turns:192.0.2.11:443?transport=tcp"
    [warning] = [r.getMessage() for r in caplog.records if "Firefox" in r.getMessage()]
    assert "'bare'" in warning and "192.0.2.11" in warning and "tls_host" in warning
