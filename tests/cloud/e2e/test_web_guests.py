"""Web guests (the browser sender's identity): a browser with the meeting ID gets a short-lived XMPP identity
scoped to that meeting's box, and shares with the room's PIN like the app; organisations can refuse them.

Each test asks from a loopback address of its own (127.0.0.x), so that the per-address back-off of one test
never meets another's.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Origin, Subprotocol

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_cloud.stack import LocalCloud
from coalesce_common.cloud.rest import CloudClient
from coalesce_common.errors import CoalesceError, WrongPin
from coalesce_common.signaling import SignalingChannel
from coalesce_common.signaling.xmpp import XmppAccount, XmppSignaling
from coalesce_receiver.services.cloud_link import guest_of
from coalesce_testing.waiting import until
from tests.cloudlab import Admin, Box

PIN = "4821"


async def ask_as_guest(
    cloud: LocalCloud, source: str, meeting_id: str, name: str = "Visitor"
) -> httpx.Response:
    """``POST /web-guests`` as a browser would, from the loopback address ``source``."""
    context = await asyncio.to_thread(ssl.create_default_context, cafile=cloud.ca_file)
    transport = httpx.AsyncHTTPTransport(verify=context, local_address=source)
    async with httpx.AsyncClient(transport=transport, base_url=cloud.api_url + "/api/v1") as http:
        return await http.post("/web-guests", json={"meeting_id": meeting_id, "name": name})


def guest_account(cloud: LocalCloud, admitted: dict[str, Any]) -> XmppAccount:
    xmpp = admitted["xmpp"]
    return XmppAccount(
        jid=xmpp["jid"], password=xmpp["password"], host=cloud.host, port=cloud.ports.xmpp_starttls,
        ca_file=cloud.ca_file,
    )  # fmt: skip


def options(camera: Path, pin: str = PIN) -> ShareOptions:
    return ShareOptions(sender_name="Visitor", pin=pin, screen=None, camera=str(camera))


async def test_a_web_guest_is_admitted_to_one_meeting_and_shares_with_the_rooms_pin(
    box: Box, local_cloud: LocalCloud, camera_file: Path
) -> None:
    response = await ask_as_guest(local_cloud, "127.0.0.11", f"{box.meeting_id[:3]} {box.meeting_id[3:]}")
    assert response.status_code == 201, response.text
    admitted = response.json()
    jid: str = admitted["xmpp"]["jid"]
    assert jid.startswith(f"g-{box.credentials.device_id}-")  # scoped to this box by its very name
    assert admitted["box"]["jid"] == box.credentials.xmpp.jid.split("/")[0]
    assert admitted["turn"]["servers"], admitted
    expires = datetime.datetime.fromisoformat(admitted["expires_at"])
    assert box.link.meeting_expires is not None and expires <= box.link.meeting_expires
    stream = XmppSignaling(guest_account(local_cloud, admitted))
    await stream.connect(10)

    async def channel(target: ShareTarget, timeout: float) -> SignalingChannel:
        return stream.open_channel(admitted["box"]["jid"])

    try:
        target = ShareTarget(host=admitted["box"]["jid"], port=0, name=admitted["box"]["name"])
        try:
            await Share(target, options(camera_file, pin="0000"), channel_factory=channel).start()
            raise AssertionError("a wrong PIN was taken")
        except WrongPin:
            pass  # the same pairing as the app's: the PIN is checked by the box
        async with Share(target, options(camera_file), channel_factory=channel):
            await box.receiver.wait_for_shares(1, timeout=20)
            [shown] = box.receiver.model.shares
            assert shown.sender_name == "Visitor"
            await asyncio.wait_for(shown.tracks["camera"].wait_for_frames(1), 20)
        await until(box.receiver.model, lambda: not box.receiver.model.shares, "the tile to go", 20)
    finally:
        await stream.aclose()


async def test_a_web_guests_share_ends_with_its_meeting_at_the_room_too(
    box: Box, local_cloud: LocalCloud, camera_file: Path
) -> None:
    """The room opens its next meeting while a guest shares: the cloud sends the guest away within its
    sweep (0.5 s here, 30 s by default) and tells the box, which ends the share whatever the guest does."""
    response = await ask_as_guest(local_cloud, "127.0.0.16", box.meeting_id)
    assert response.status_code == 201, response.text
    admitted = response.json()
    stream = XmppSignaling(guest_account(local_cloud, admitted))
    await stream.connect(10)

    async def channel(target: ShareTarget, timeout: float) -> SignalingChannel:
        return stream.open_channel(admitted["box"]["jid"])

    target = ShareTarget(host=admitted["box"]["jid"], port=0, name=admitted["box"]["name"])
    share = Share(target, options(camera_file), channel_factory=channel)
    try:
        await share.start()
        await box.receiver.wait_for_shares(1, timeout=20)
        c = box.credentials
        async with CloudClient(c.api_url, token=c.token, ca_file=c.ca_file) as api:
            await api.create_meeting()  # the next meeting: this one ends
        await until(box.receiver.model, lambda: not box.receiver.model.shares, "the guest's tile to go", 10)
        notice = box.receiver.model.notice or ""
        assert "Visitor" in notice and "the cloud ended this browser guest's access" in notice, notice
    finally:
        await share.stop()
        await stream.aclose()
    locked_out = XmppSignaling(guest_account(local_cloud, admitted))
    with pytest.raises(CoalesceError):
        await locked_out.connect(10)  # its account is gone
    await locked_out.aclose()


async def test_an_organisation_can_turn_web_guests_off_and_a_suspended_one_admits_none(
    admin: Admin, box: Box, local_cloud: LocalCloud
) -> None:
    async def change(**fields: bool) -> dict[str, Any]:
        response = await admin.call("PATCH", "/admin/orgs/acme", fields)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def new_meeting() -> dict[str, Any]:
        c = box.credentials
        async with CloudClient(c.api_url, token=c.token, ca_file=c.ca_file) as api:
            return await api.create_meeting()

    assert (await new_meeting())["share_url"] == local_cloud.share_page_url
    try:
        assert (await change(web_guests=False))["web_guests"] is False
        meeting = await new_meeting()  # the room display shows no browser page for it
        assert meeting["share_url"] is None, meeting
        refused = await ask_as_guest(local_cloud, "127.0.0.12", meeting["meeting_id"])
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "web_guests_off"
        assert "use the Coalesce app" in refused.json()["error"]["message"]
        await change(web_guests=True, suspended=True)
        refused = await ask_as_guest(local_cloud, "127.0.0.12", meeting["meeting_id"])
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "org_suspended"
    finally:
        await change(web_guests=True, suspended=False)
    assert (await ask_as_guest(local_cloud, "127.0.0.12", meeting["meeting_id"])).status_code == 201


async def test_unknown_meetings_and_floods_from_one_address_are_throttled(
    box: Box, local_cloud: LocalCloud
) -> None:
    unknown = await ask_as_guest(local_cloud, "127.0.0.13", "0000000000")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "meeting_not_found"
    answers = [(await ask_as_guest(local_cloud, "127.0.0.13", box.meeting_id)).status_code for _ in range(12)]
    assert answers[:9] == [201] * 9  # ten admissions are free (the unknown ID was the first)
    assert answers[-1] == 429, answers
    # another address is served meanwhile
    assert (await ask_as_guest(local_cloud, "127.0.0.14", box.meeting_id)).status_code == 201


async def test_malformed_requests_get_a_validation_error(local_cloud: LocalCloud) -> None:
    for body in (
        {"meeting_id": "1" * 40, "name": "x"},
        {"meeting_id": "123"},
        {"name": "\u0000", "meeting_id": "1"},
    ):
        context = await asyncio.to_thread(ssl.create_default_context, cafile=local_cloud.ca_file)
        transport = httpx.AsyncHTTPTransport(verify=context, local_address="127.0.0.15")
        async with httpx.AsyncClient(transport=transport, base_url=local_cloud.api_url + "/api/v1") as http:
            response = await http.post("/web-guests", json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error", body


def test_a_box_talks_to_devices_and_to_its_own_web_guests_only() -> None:
    assert guest_of("abc123@coalesce.test", "box1")  # a device: pairing decides
    assert guest_of("g-box1-5f3a@coalesce.test", "box1")
    assert not guest_of("g-box2-5f3a@coalesce.test", "box1")
    assert not guest_of("g-box1@coalesce.test", "box1x")


async def test_xmpp_websockets_are_taken_from_the_sharing_pages_origin_only(local_cloud: LocalCloud) -> None:
    context = await asyncio.to_thread(ssl.create_default_context, cafile=local_cloud.ca_file)
    opening = f'<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="{local_cloud.domain}" version="1.0"/>'
    connect = functools.partial(
        websockets.connect, local_cloud.websocket_url, ssl=context, subprotocols=[Subprotocol("xmpp")]
    )
    async with connect(origin=Origin(local_cloud.api_url)) as ws:
        await ws.send(opening)
        assert "xmpp-framing" in str(await asyncio.wait_for(ws.recv(), 10))
        features = str(await asyncio.wait_for(ws.recv(), 10))
        assert "<mechanism>SCRAM-SHA-256</mechanism>" in features and "PLAIN" not in features, features
    try:
        async with connect(origin=Origin("https://elsewhere.example")):
            raise AssertionError("a page from another site opened an XMPP WebSocket")
    except websockets.InvalidStatus as exc:
        assert exc.response.status_code == 403
