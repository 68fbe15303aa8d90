"""Meeting ids: issue, look up, expire, collide, throttle."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from coalesce_cloud import crud
from tests.cloud.api.support import DOMAIN, Cloud, Enrolled, FakeClock, assert_error


async def test_a_box_issues_a_meeting_and_a_sender_resolves_it(cloud: Cloud, clock: FakeClock) -> None:
    box = await cloud.enroll("box", "Room 4.12")
    sender = await cloud.enroll("sender", "Laptop")

    issued = await cloud.client.post("/meetings", headers=box.headers)
    assert issued.status_code == 201, issued.text
    meeting_id = issued.json()["meeting_id"]
    assert len(meeting_id) == 10 and meeting_id.isdigit()
    assert datetime.fromisoformat(issued.json()["expires_at"]) == clock.now.replace(hour=21)  # 12 h

    spaced = f"{meeting_id[:3]} {meeting_id[3:6]}-{meeting_id[6:]}"
    found = await cloud.client.get(f"/meetings/{spaced}", headers=sender.headers)
    assert found.status_code == 200, found.text
    assert found.json() == {
        "meeting_id": meeting_id,
        "box": {"device_id": box.device_id, "name": "Room 4.12", "jid": f"{box.device_id}@{DOMAIN}"},
        "expires_at": issued.json()["expires_at"],
    }


async def test_only_boxes_issue_meetings(cloud: Cloud) -> None:
    sender = await cloud.enroll("sender")
    assert_error(await cloud.client.post("/meetings", headers=sender.headers), 403, "not_a_box")


async def test_meetings_expire_and_a_new_one_ends_the_old(cloud: Cloud, clock: FakeClock) -> None:
    box = await cloud.enroll("box")
    sender = await cloud.enroll("sender")
    first = (await cloud.client.post("/meetings", headers=box.headers)).json()["meeting_id"]
    second = (await cloud.client.post("/meetings", headers=box.headers)).json()["meeting_id"]
    assert first != second
    assert_error(
        await cloud.client.get(f"/meetings/{first}", headers=sender.headers), 404, "meeting_not_found"
    )
    assert (await cloud.client.get(f"/meetings/{second}", headers=sender.headers)).status_code == 200
    clock.advance(hours=12)
    expired = await cloud.client.get(f"/meetings/{second}", headers=sender.headers)
    unknown = await cloud.client.get("/meetings/0000000000", headers=sender.headers)
    assert assert_error(expired, 404, "meeting_not_found") == assert_error(unknown, 404, "meeting_not_found")


@pytest.mark.parametrize("meeting_id", ["123", "abcdefghij", "12345678901", "\uff11" * 10])
async def test_malformed_ids_are_just_not_found(cloud: Cloud, meeting_id: str) -> None:
    sender = await cloud.enroll()
    assert_error(
        await cloud.client.get(f"/meetings/{meeting_id}", headers=sender.headers), 404, "meeting_not_found"
    )


async def test_live_ids_are_drawn_again_and_expired_ids_reused(
    cloud: Cloud, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    box_a, box_b, sender = await cloud.enroll("box"), await cloud.enroll("box"), await cloud.enroll()
    draws = iter(["1111111111", "1111111111", "2222222222", "1111111111"])
    monkeypatch.setattr(crud.security, "new_meeting_id", lambda: next(draws))

    assert (await cloud.client.post("/meetings", headers=box_a.headers)).json()["meeting_id"] == "1111111111"
    # 1111111111 is live (box A): box B gets the next draw.
    assert (await cloud.client.post("/meetings", headers=box_b.headers)).json()["meeting_id"] == "2222222222"
    clock.advance(hours=12, seconds=1)
    # Now box A's meeting has expired, so its id may serve box B's new meeting.
    assert (await cloud.client.post("/meetings", headers=box_b.headers)).json()["meeting_id"] == "1111111111"
    found = (await cloud.client.get("/meetings/1111111111", headers=sender.headers)).json()
    assert found["box"]["device_id"] == box_b.device_id


async def test_guessing_meeting_ids_is_throttled_per_device(cloud: Cloud, clock: FakeClock) -> None:
    box, guesser, honest = await cloud.enroll("box"), await cloud.enroll(), await cloud.enroll()
    meeting_id = (await cloud.client.post("/meetings", headers=box.headers)).json()["meeting_id"]
    wrong = "0000000000" if meeting_id != "0000000000" else "0000000001"
    for _ in range(10):
        assert_error(
            await cloud.client.get(f"/meetings/{wrong}", headers=guesser.headers), 404, "meeting_not_found"
        )
    blocked = await cloud.client.get(f"/meetings/{meeting_id}", headers=guesser.headers)
    assert_error(blocked, 429, "too_many_attempts")
    assert (await cloud.client.get(f"/meetings/{meeting_id}", headers=honest.headers)).status_code == 200
    clock.advance(seconds=int(blocked.headers["Retry-After"]))
    assert (await cloud.client.get(f"/meetings/{meeting_id}", headers=guesser.headers)).status_code == 200


async def test_a_suspended_box_loses_its_meeting(cloud: Cloud, clock: FakeClock) -> None:
    box, sender = await cloud.enroll("box"), await cloud.enroll()
    meeting_id = (await cloud.client.post("/meetings", headers=box.headers)).json()["meeting_id"]
    until = clock.now.replace(hour=10).isoformat()
    assert (await cloud.admin("suspend", box, until=until)).status_code == 200
    assert_error(
        await cloud.client.get(f"/meetings/{meeting_id}", headers=sender.headers), 404, "meeting_not_found"
    )
    clock.advance(hours=1)
    assert_error(
        await cloud.client.get(f"/meetings/{meeting_id}", headers=sender.headers), 404, "meeting_not_found"
    )


async def test_concurrent_requests_do_not_trip_over_each_other(cloud: Cloud, clock: FakeClock) -> None:
    boxes = [await cloud.enroll("box") for _ in range(4)]
    senders = [await cloud.enroll() for _ in range(4)]
    clock.advance(minutes=5)  # every request now also writes last_seen

    async def box_and_lookups(box: Enrolled) -> None:
        for _ in range(3):
            issued = await cloud.client.post("/meetings", headers=box.headers)
            assert issued.status_code == 201, issued.text
            meeting_id = issued.json()["meeting_id"]
            for sender in senders:
                found = await cloud.client.get(f"/meetings/{meeting_id}", headers=sender.headers)
                assert found.status_code in (200, 404), found.text  # 404: the box moved on meanwhile

    await asyncio.gather(*(box_and_lookups(box) for box in boxes))
