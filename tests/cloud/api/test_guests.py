"""Meeting IDs across organisations: a sender resolves its own organisation's meeting IDs; another
organisation's only after that organisation's admin admits the sender's as guests."""

from __future__ import annotations

import httpx

from tests.cloud.api.support import ADMIN, DOMAIN, Cloud, Enrolled, assert_error


async def _meeting(cloud: Cloud, box: Enrolled) -> str:
    issued = await cloud.client.post("/meetings", headers=box.headers)
    assert issued.status_code == 201, issued.text
    return str(issued.json()["meeting_id"])


async def _guest_access(cloud: Cloud, org: str, guest_org: str, *, allowed: bool) -> httpx.Response:
    body = {"org": org, "guest_org": guest_org, "allowed": allowed}
    return await cloud.client.post("/admin/guest-access", json=body, headers=ADMIN)


async def test_another_orgs_meeting_is_not_found_until_its_admin_admits_guests(cloud: Cloud) -> None:
    box = await cloud.enroll("box", "Room 4.12", org="acme")
    colleague = await cloud.enroll("sender", org="acme")
    guest = await cloud.enroll("sender", org="partner")
    meeting_id = await _meeting(cloud, box)
    unknown_id = "0000000000" if meeting_id != "0000000000" else "0000000001"

    assert (await cloud.client.get(f"/meetings/{meeting_id}", headers=colleague.headers)).status_code == 200
    refused = await cloud.client.get(f"/meetings/{meeting_id}", headers=guest.headers)
    unknown = await cloud.client.get(f"/meetings/{unknown_id}", headers=guest.headers)
    # Nothing tells the guest that the meeting exists: the same status, body and headers as an unknown id.
    assert refused.content == unknown.content
    assert dict(refused.headers) == dict(unknown.headers)
    assert_error(refused, 404, "meeting_not_found")

    allowed = await _guest_access(cloud, "acme", "partner", allowed=True)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["guest_orgs"] == ["partner"]
    found = await cloud.client.get(f"/meetings/{meeting_id}", headers=guest.headers)
    assert found.status_code == 200, found.text
    assert found.json()["box"] == {
        "device_id": box.device_id,
        "name": "Room 4.12",
        "jid": f"{box.device_id}@{DOMAIN}",
    }

    denied = await _guest_access(cloud, "acme", "partner", allowed=False)
    assert denied.status_code == 200 and denied.json()["guest_orgs"] == []
    assert_error(
        await cloud.client.get(f"/meetings/{meeting_id}", headers=guest.headers), 404, "meeting_not_found"
    )


async def test_admitting_guests_goes_one_way(cloud: Cloud) -> None:
    acme_box, partner_box = await cloud.enroll("box", org="acme"), await cloud.enroll("box", org="partner")
    acme_sender, partner_sender = await cloud.enroll(org="acme"), await cloud.enroll(org="partner")
    acme_meeting, partner_meeting = await _meeting(cloud, acme_box), await _meeting(cloud, partner_box)
    assert (await _guest_access(cloud, "acme", "partner", allowed=True)).status_code == 200

    get = cloud.client.get
    assert (await get(f"/meetings/{acme_meeting}", headers=partner_sender.headers)).status_code == 200
    assert_error(
        await get(f"/meetings/{partner_meeting}", headers=acme_sender.headers), 404, "meeting_not_found"
    )


async def test_refused_lookups_count_as_failed_guesses(cloud: Cloud) -> None:
    """Otherwise a guesser could tell another organisation's live ids from unknown ones by the throttle."""
    box, guest = await cloud.enroll("box", org="acme"), await cloud.enroll(org="partner")
    meeting_id = await _meeting(cloud, box)
    for _ in range(10):
        assert_error(
            await cloud.client.get(f"/meetings/{meeting_id}", headers=guest.headers), 404, "meeting_not_found"
        )
    assert_error(
        await cloud.client.get(f"/meetings/{meeting_id}", headers=guest.headers), 429, "too_many_attempts"
    )


async def test_orgs_list_their_guests_and_changes_are_audited(cloud: Cloud) -> None:
    for org in ("acme", "partner", "umbrella"):
        await cloud.enrollment_code(org)
    for guest_org in ("umbrella", "partner"):
        assert (await _guest_access(cloud, "acme", guest_org, allowed=True)).status_code == 200
    again = await _guest_access(cloud, "acme", "partner", allowed=True)  # idempotent
    assert again.json()["guest_orgs"] == ["partner", "umbrella"]

    orgs = (await cloud.client.get("/admin/orgs", headers=ADMIN)).json()["orgs"]
    assert {o["name"]: o["guest_orgs"] for o in orgs} == {
        "acme": ["partner", "umbrella"],
        "partner": [],
        "umbrella": [],
    }
    events = (await cloud.client.get("/admin/audit", headers=ADMIN)).json()["events"]
    grants = [e["details"] for e in events if e["action"] == "guests_allow"]
    assert grants == [{"org": "acme", "guest_org": "partner"}, {"org": "acme", "guest_org": "umbrella"}]


async def test_guest_access_refuses_unknown_and_same_orgs(cloud: Cloud) -> None:
    await cloud.enrollment_code("acme")
    missing = await _guest_access(cloud, "acme", "nobody", allowed=True)
    assert "nobody" in assert_error(missing, 404, "org_not_found")["message"]
    assert_error(await _guest_access(cloud, "nobody", "acme", allowed=True), 404, "org_not_found")
    assert_error(await _guest_access(cloud, "acme", "acme", allowed=True), 422, "validation_error")
    unauthenticated = await cloud.client.post(
        "/admin/guest-access", json={"org": "acme", "guest_org": "x", "allowed": True}
    )
    assert_error(unauthenticated, 401, "unauthenticated")
