"""Web guests end with their meeting: the API's background sweep removes expired guests' XMPP accounts and
sessions, at ``web_guest_ttl``, at the meeting's end, and at once when the box opens a new meeting.

The clock is a ``FakeClock``; each test waits for the sweeper's next pass (``GuestExpiry.next_sweep``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from coalesce_cloud import guest_expiry
from coalesce_cloud.api.app import create_app
from coalesce_cloud.core.config import Settings
from coalesce_cloud.guest_expiry import GuestExpiry
from tests.cloud.api.support import DOMAIN, ClientFactory, Cloud, Enrolled, FakeClock, RecordingXmppAdmin


@dataclass
class Room:
    client: httpx.AsyncClient
    expiry: GuestExpiry
    box: Enrolled

    async def new_meeting(self) -> str:
        response = await self.client.post("/meetings", headers=self.box.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["meeting_id"])

    async def admit(self, meeting_id: str) -> dict[str, Any]:
        response = await self.client.post("/web-guests", json={"meeting_id": meeting_id, "name": "Visitor"})
        assert response.status_code == 201, response.text
        admitted: dict[str, Any] = response.json()
        return admitted


@pytest.fixture
async def room(make_client: ClientFactory, settings: Settings, clock: FakeClock, xmpp: RecordingXmppAdmin
               ) -> AsyncIterator[Room]:  # fmt: skip
    settings = settings.model_copy(
        update={
            "web_guest_ttl": timedelta(hours=1),
            "meeting_ttl": timedelta(hours=2),
            "web_guest_sweep_every": timedelta(milliseconds=10),
        }
    )
    app = create_app(settings, xmpp_admin=xmpp, clock=clock)
    async with make_client(app=app) as client:
        box = await Cloud(client).enroll(kind="box", name="Room 4")
        yield Room(client, app.state.context.guest_expiry, box)


def user_of(admitted: dict[str, Any]) -> str:
    return str(admitted["xmpp"]["jid"]).split("@", 1)[0]


async def test_a_guest_is_removed_from_xmpp_when_its_time_is_up(
    room: Room, clock: FakeClock, xmpp: RecordingXmppAdmin
) -> None:
    guest = user_of(await room.admit(await room.new_meeting()))
    xmpp.sessions[guest] = 1  # the page is logged in
    clock.advance(minutes=59)
    await room.expiry.next_sweep()
    assert guest in xmpp.accounts  # an hour is not up: the guest stays

    clock.advance(minutes=1)
    await room.expiry.next_sweep()
    assert guest not in xmpp.accounts and guest not in xmpp.sessions  # account removed, session kicked
    assert xmpp.calls[-3:-1] == [("unregister", guest), ("kick", guest)]  # the account first
    [told] = xmpp.messages  # and the box, which ends the share even if the page would not
    assert told.to_jid == room.box.jid.split("/")[0]
    assert json.loads(told.body) == {
        "coalesce": "device-status", "device_id": guest, "jid": f"{guest}@{DOMAIN}", "status": "revoked",
    }  # fmt: skip
    calls = len(xmpp.calls)
    await room.expiry.next_sweep()
    assert len(xmpp.calls) == calls  # its row went with it: nothing is asked twice


async def test_a_guest_ends_with_its_meeting_when_the_box_opens_a_new_one(
    room: Room, xmpp: RecordingXmppAdmin
) -> None:
    first = user_of(await room.admit(await room.new_meeting()))
    await room.expiry.next_sweep()
    assert first in xmpp.accounts
    meeting = await room.new_meeting()  # a new meeting ID on the room display, no clock moved
    second = user_of(await room.admit(meeting))
    await room.expiry.next_sweep()
    assert first not in xmpp.accounts, "a guest outlived its meeting"
    assert second in xmpp.accounts


async def test_a_guest_never_outlasts_its_meeting(
    room: Room, clock: FakeClock, xmpp: RecordingXmppAdmin
) -> None:
    meeting = await room.new_meeting()  # ends in 2 h
    clock.advance(minutes=90)
    admitted = await room.admit(meeting)  # an hour of its own would end after the meeting
    clock.advance(minutes=30)
    await room.expiry.next_sweep()
    assert user_of(admitted) not in xmpp.accounts


async def test_a_guest_ejabberd_cannot_remove_now_is_removed_later(
    room: Room, clock: FakeClock, xmpp: RecordingXmppAdmin, caplog: pytest.LogCaptureFixture
) -> None:
    guest = user_of(await room.admit(await room.new_meeting()))
    clock.advance(hours=1)
    xmpp.fail = True
    await room.expiry.next_sweep()
    await room.expiry.next_sweep()
    assert guest in xmpp.accounts
    warnings = [r for r in caplog.records if "could not be sent away yet" in r.getMessage()]
    assert warnings and all(r.exc_info is None for r in warnings)  # one line each, no traceback
    xmpp.fail = False
    await room.expiry.next_sweep()
    assert guest not in xmpp.accounts


async def test_a_guest_ejabberd_keeps_refusing_does_not_hold_up_those_behind_it(
    room: Room, clock: FakeClock, xmpp: RecordingXmppAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    meeting = await room.new_meeting()
    stuck = user_of(await room.admit(meeting))
    clock.advance(seconds=1)
    behind = [user_of(await room.admit(meeting)) for _ in range(3)]
    xmpp.refused.add(stuck)  # the oldest, so the first of every batch
    monkeypatch.setattr(guest_expiry, "BATCH", 1)  # a batch of one: the sweep must read past it
    clock.advance(hours=1)
    await room.expiry.next_sweep()
    assert stuck in xmpp.accounts
    assert not any(user in xmpp.accounts for user in behind)
