"""Admin: enrollment codes, device list, suspend / revoke / restore and what they set off."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.cloud.api.support import ADMIN, DOMAIN, Cloud, FakeClock, RecordingXmppAdmin, assert_error


async def test_enrollment_codes_are_shown_once(cloud: Cloud, clock: FakeClock) -> None:
    response = await cloud.client.post(
        "/admin/enrollment-codes", json={"org": "acme", "uses": 3, "ttl_seconds": 600}, headers=ADMIN
    )
    assert response.status_code == 201
    body = response.json()
    assert body["org"] == "acme" and body["uses"] == 3
    assert len(body["code"]) == 19 and body["code"].count("-") == 3
    audit = (await cloud.client.get("/admin/audit", headers=ADMIN)).json()["events"]
    assert audit[0]["action"] == "enrollment_code_create"
    assert body["code"] not in json.dumps(audit)


async def test_device_list(cloud: Cloud) -> None:
    box = await cloud.enroll("box", "Room 1", org="acme")
    sender = await cloud.enroll("sender", "Laptop", org="globex")
    devices = (await cloud.client.get("/admin/devices", headers=ADMIN)).json()["devices"]
    assert {(d["device_id"], d["kind"], d["org"], d["status"]) for d in devices} == {
        (box.device_id, "box", "acme", "active"),
        (sender.device_id, "sender", "globex", "active"),
    }
    only = (await cloud.client.get("/admin/devices", params={"org": "globex"}, headers=ADMIN)).json()
    assert [d["device_id"] for d in only["devices"]] == [sender.device_id]


async def test_suspend_cuts_the_device_off_everywhere(
    cloud: Cloud, clock: FakeClock, xmpp: RecordingXmppAdmin
) -> None:
    box_live, box_idle, sender = await cloud.enroll("box"), await cloud.enroll("box"), await cloud.enroll()
    await cloud.client.post("/meetings", headers=box_live.headers)
    old_password = xmpp.accounts[sender.device_id]
    xmpp.sessions[sender.device_id] = 2
    until = clock.now + timedelta(hours=2)

    response = await cloud.admin("suspend", sender, until=until.isoformat())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["device"]["status"] == "suspended"
    assert body["sessions_kicked"] == 2 and body["boxes_notified"] == 1
    assert xmpp.accounts[sender.device_id] != old_password, "new XMPP logins fail"
    assert ("kick", sender.device_id) in xmpp.calls
    (message,) = xmpp.messages
    assert message.from_jid == f"coalesce-cloud@{DOMAIN}" and message.to_jid == box_live.jid
    assert json.loads(message.body) == {
        "coalesce": "device-status",
        "device_id": sender.device_id,
        "jid": sender.jid,
        "status": "suspended",
    }
    refused = await cloud.client.get("/devices/me", headers=sender.headers)
    error = assert_error(refused, 403, "device_suspended")
    assert datetime.fromisoformat(error["until"]) == until
    assert box_idle.device_id not in {m.to_jid.split("@")[0] for m in xmpp.messages}


async def test_suspensions_lift_by_themselves(
    cloud: Cloud, clock: FakeClock, xmpp: RecordingXmppAdmin
) -> None:
    sender = await cloud.enroll()
    await cloud.admin("suspend", sender, until=(clock.now + timedelta(minutes=30)).isoformat())
    assert_error(await cloud.client.get("/devices/me", headers=sender.headers), 403, "device_suspended")
    clock.advance(minutes=30)
    me = await cloud.client.get("/devices/me", headers=sender.headers)
    assert me.status_code == 200 and me.json()["status"] == "active"
    # XMPP login is not restored by the lift: the device asks for new credentials.
    rotated = await cloud.client.post("/devices/me/xmpp-credentials", headers=sender.headers)
    assert rotated.status_code == 200
    assert rotated.json()["xmpp"]["password"] == xmpp.accounts[sender.device_id]
    actions = [e["action"] for e in (await cloud.client.get("/admin/audit", headers=ADMIN)).json()["events"]]
    assert actions[:3] == ["xmpp_rotate", "restore", "suspend"]


async def test_restore_lifts_a_suspension_but_revoked_is_final(cloud: Cloud, clock: FakeClock) -> None:
    sender = await cloud.enroll()
    await cloud.admin("suspend", sender, until=(clock.now + timedelta(days=1)).isoformat())
    restored = await cloud.admin("restore", sender)
    assert restored.status_code == 200 and restored.json()["device"]["status"] == "active"
    assert (await cloud.client.get("/devices/me", headers=sender.headers)).status_code == 200

    assert (await cloud.admin("revoke", sender)).json()["device"]["status"] == "revoked"
    assert_error(await cloud.client.get("/devices/me", headers=sender.headers), 403, "device_revoked")
    assert_error(await cloud.admin("restore", sender), 409, "device_revoked")
    until = (clock.now + timedelta(days=1)).isoformat()
    assert_error(await cloud.admin("suspend", sender, until=until), 409, "device_revoked")
    assert (await cloud.admin("revoke", sender)).status_code == 200, "revoking again is harmless"


async def test_suspend_needs_a_future_time_with_an_offset(cloud: Cloud, clock: FakeClock) -> None:
    sender = await cloud.enroll()
    past = (clock.now - timedelta(minutes=1)).isoformat()
    assert_error(await cloud.admin("suspend", sender, until=past), 422, "validation_error")
    naive = (clock.now + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert_error(await cloud.admin("suspend", sender, until=naive), 422, "validation_error")
    assert_error(await cloud.admin("suspend", sender), 422, "validation_error")
    assert_error(await cloud.admin("suspend", sender, until=naive, for_seconds=60), 422, "validation_error")
    assert_error(await cloud.admin("suspend", sender, for_seconds=0), 422, "validation_error")


async def test_suspend_for_a_while_counts_on_the_server_clock(cloud: Cloud, clock: FakeClock) -> None:
    sender = await cloud.enroll()
    response = await cloud.admin("suspend", sender, for_seconds=3600)
    until = datetime.fromisoformat(response.json()["device"]["suspended_until"])
    assert until == clock.now + timedelta(hours=1)


async def test_unknown_devices_are_404(cloud: Cloud) -> None:
    for action in ("suspend", "revoke", "restore"):
        response = await cloud.client.post(
            f"/admin/devices/nosuchdevice/{action}", json={"until": "2099-01-01T00:00:00Z"}, headers=ADMIN
        )
        assert_error(response, 404, "device_not_found")


async def test_xmpp_trouble_during_suspend_is_reported_and_retryable(
    cloud: Cloud, clock: FakeClock, xmpp: RecordingXmppAdmin
) -> None:
    sender = await cloud.enroll()
    until = (clock.now + timedelta(hours=1)).isoformat()
    xmpp.fail = True
    failed = await cloud.admin("suspend", sender, until=until)
    error = assert_error(failed, 502, "xmpp_unavailable")
    assert "marked suspended" in error["message"] and "again" in error["message"]
    assert_error(await cloud.client.get("/devices/me", headers=sender.headers), 403, "device_suspended")
    xmpp.fail = False
    assert (await cloud.admin("suspend", sender, until=until)).status_code == 200
