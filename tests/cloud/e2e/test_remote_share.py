"""Remote sharing through the cloud: meeting ID + PIN, XMPP signaling, TURN over TLS, admin actions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from coalesce_client.services.link_stats import MediaRoute
from coalesce_client.services.remote import RemoteOptions, RemoteShare
from coalesce_client.services.share import ShareOptions
from coalesce_cloud.stack import LocalCloud
from coalesce_common.cloud.rest import CloudClient, CloudError
from coalesce_common.errors import WrongPin
from coalesce_common.protocol import EndReason
from coalesce_common.signaling.xmpp import XmppAuthError, XmppSignaling
from coalesce_testing.pulse import SINKS, PulseServer
from coalesce_testing.waiting import until
from tests.cloudlab import Admin, Box, linked_box
from tests.soundlab import TONE_A, heard, steadily_heard
from tests.soundlab import tones as tones  # a fixture

PIN = "4821"


def camera_options(path: Path, pin: str = PIN) -> ShareOptions:
    return ShareOptions(sender_name="Remote laptop", pin=pin, screen=None, camera=str(path))


async def wait_for_model(box: Box, predicate: Callable[[], bool], timeout: float) -> None:
    await until(box.receiver.model, predicate, "the box's room to change", timeout)


async def test_box_shows_a_meeting_id(box: Box) -> None:
    assert box.meeting_id.isdigit() and len(box.meeting_id) >= 9
    assert box.link.xmpp.mechanism == "SCRAM-SHA-256"


async def test_relay_only_remote_share_reaches_the_box_through_turn_over_tls(
    admin: Admin, box: Box, camera_file: Path
) -> None:
    sender = await admin.enroll("Remote laptop", "sender")
    remote = RemoteShare(
        box.meeting_id, camera_options(camera_file), credentials=sender, remote=RemoteOptions(relay_only=True)
    )
    await remote.start()
    try:
        assert remote.turn_server is not None
        assert remote.share is not None
        assert (await remote.share.stats()).route is MediaRoute.RELAYED
        assert any(u.startswith("turns:") for u in remote.turn_server.urls)
        await box.receiver.wait_for_shares(1, timeout=20)
        [shown] = box.receiver.model.shares
        assert shown.sender_name == "Remote laptop"
        frame = shown.tracks["camera"].latest_rgb()
        assert frame is not None and frame.shape == (240, 320, 3)
        assert abs(int(frame[120, 160, 0]) - 255) < 40 and int(frame[120, 160, 1]) < 40
    finally:
        await remote.stop()
    await wait_for_model(box, lambda: not box.receiver.model.shares, 5)


@pytest.mark.parametrize("route", [MediaRoute.PEER_TO_PEER, MediaRoute.RELAYED])
async def test_a_remote_share_carries_the_senders_sound_to_the_box_p2p_and_through_turn(
    admin: Admin,
    pulse: PulseServer,
    tones: None,
    tmp_path: Path,
    camera_file: Path,
    route: MediaRoute,
) -> None:
    sender = await admin.enroll("Remote laptop", "sender")
    options = ShareOptions(
        sender_name="Remote laptop",
        pin=PIN,
        screen=None,
        camera=str(camera_file),
        sound=True,
        sound_device=SINKS["alpha"],
    )
    async with linked_box(admin, tmp_path, sound_output=SINKS["room"]) as box:
        remote = RemoteShare(
            box.meeting_id,
            options,
            credentials=sender,
            remote=RemoteOptions(relay_only=route is MediaRoute.RELAYED),
        )
        await remote.start()
        try:
            assert remote.share is not None and remote.share.sound
            assert (await remote.share.stats()).route is route
            await wait_for_model(box, lambda: box.receiver.model.audible is not None, 20)
            await steadily_heard(pulse, TONE_A)  # the laptop's 997 Hz tone at the box's output
            assert await heard(pulse, TONE_A) > 20
        finally:
            await remote.stop()


async def test_wrong_pin_through_the_cloud_is_refused(admin: Admin, box: Box, camera_file: Path) -> None:
    sender = await admin.enroll("Guesser", "sender")
    with pytest.raises(WrongPin):
        await RemoteShare(box.meeting_id, camera_options(camera_file, pin="0000"), credentials=sender).start()
    assert box.receiver.model.shares == []


async def test_unknown_meeting_id_is_a_clear_error(admin: Admin, camera_file: Path) -> None:
    sender = await admin.enroll("Lost", "sender")
    with pytest.raises(CloudError, match="No meeting has that ID") as info:
        await RemoteShare("000000000", camera_options(camera_file), credentials=sender).start()
    assert info.value.code == "meeting_not_found"


async def test_suspending_a_sender_stops_its_live_share_within_two_seconds(
    admin: Admin, box: Box, camera_file: Path
) -> None:
    sender = await admin.enroll("Soon suspended", "sender")
    remote = RemoteShare(box.meeting_id, camera_options(camera_file), credentials=sender)
    await remote.start()
    try:
        await box.receiver.wait_for_shares(1, timeout=20)
        response = await admin.call(
            "POST", f"/admin/devices/{sender.device_id}/suspend", {"until": "2099-01-01T00:00:00Z"}
        )
        assert response.status_code == 200, response.text
        # The product promise: the live share stops within 2 s, at the box and at the sender.
        await wait_for_model(box, lambda: not box.receiver.model.shares, 2.0)
        notice = box.receiver.model.notice or ""
        assert "Remote laptop" in notice and "an administrator suspended that device" in notice, notice
        reason = await asyncio.wait_for(remote.wait_ended(), 2.0)
        assert reason is EndReason.SUSPENDED, reason  # the cloud's reason, not the media's failure
        assert "suspended this device" in (reason.describe(remote.box_name) or "")
    finally:
        await remote.stop()
    # ... and the device can neither log in, nor use the API, nor get TURN credentials.
    with pytest.raises(XmppAuthError):
        await XmppSignaling(sender.xmpp).connect(10)
    async with CloudClient(sender.api_url, token=sender.token, ca_file=sender.ca_file) as api:
        with pytest.raises(CloudError) as refused:
            await api.turn_credentials()
        assert refused.value.code == "device_suspended"
        assert "suspended" in str(refused.value)
    # Restoring lets it back in, with fresh XMPP credentials.
    assert (await admin.call("POST", f"/admin/devices/{sender.device_id}/restore")).status_code == 200
    async with CloudClient(sender.api_url, token=sender.token, ca_file=sender.ca_file) as api:
        account = await api.rotate_xmpp(sender.ca_file)
        await api.turn_credentials()
    stream = XmppSignaling(account)
    await stream.connect(10)
    await stream.aclose()


async def test_revoking_a_sender_ends_its_share_for_good(admin: Admin, box: Box, camera_file: Path) -> None:
    sender = await admin.enroll("Stolen laptop", "sender")
    remote = RemoteShare(box.meeting_id, camera_options(camera_file), credentials=sender)
    await remote.start()
    try:
        await box.receiver.wait_for_shares(1, timeout=20)
        assert (await admin.call("POST", f"/admin/devices/{sender.device_id}/revoke")).status_code == 200
        await wait_for_model(box, lambda: not box.receiver.model.shares, 2.0)
        assert await asyncio.wait_for(remote.wait_ended(), 2.0) is EndReason.REVOKED
    finally:
        await remote.stop()
    assert (await admin.call("POST", f"/admin/devices/{sender.device_id}/restore")).status_code == 409
    with pytest.raises(CloudError) as refused:
        await RemoteShare(box.meeting_id, camera_options(camera_file), credentials=sender).start()
    assert refused.value.code == "device_revoked"


async def test_box_shows_a_signed_update_notice(box: Box, local_cloud: LocalCloud) -> None:
    import json

    from coalesce_common.cloud.updates import current_platform

    path = local_cloud.state_dir / "updates" / f"{current_platform()}.json"
    manifest = json.dumps(
        {
            "platform": current_platform(),
            "version": "42.0.0",
            "url": "https://downloads.example.invalid/coalesce-42.0.0.tar.gz",
            "sha256": "cd" * 32,
            "notes": "Room display improvements.",
            "published_at": "2026-11-28T12:00:00+00:00",
        }
    )
    await asyncio.to_thread(path.parent.mkdir, exist_ok=True)
    await asyncio.to_thread(path.write_text, manifest)
    try:
        assert box.receiver.model.update_notice is None
        await box.link._check_update()
        assert box.receiver.model.update_notice == "Update available: Coalesce 42.0.0"
    finally:
        await asyncio.to_thread(path.unlink)


async def test_a_suspended_then_restored_box_gets_a_new_meeting_id_and_takes_shares_again(
    admin: Admin, box: Box, camera_file: Path
) -> None:
    old_id = box.meeting_id
    sender = await admin.enroll("Laptop", "sender")
    response = await admin.call(
        "POST", f"/admin/devices/{box.credentials.device_id}/suspend", {"until": "2099-01-01T00:00:00Z"}
    )
    assert response.status_code == 200, response.text
    await wait_for_model(box, lambda: box.receiver.model.meeting_id is None, 10)  # the room stops offering it
    with pytest.raises(CloudError) as refused:
        await RemoteShare(old_id, camera_options(camera_file), credentials=sender).start()
    assert refused.value.code == "meeting_not_found"

    restore = await admin.call("POST", f"/admin/devices/{box.credentials.device_id}/restore")
    assert restore.status_code == 200, restore.text
    restored = asyncio.get_running_loop().time()
    await wait_for_model(box, lambda: box.receiver.model.meeting_id is not None, 10)
    assert box.meeting_id != old_id  # the old meeting ended at the cloud; the room shows its new one
    remote = RemoteShare(box.meeting_id, camera_options(camera_file), credentials=sender)
    await remote.start()
    try:
        await box.receiver.wait_for_shares(1, timeout=10)
        assert asyncio.get_running_loop().time() - restored < 10, "a remote share works within 10 s"
    finally:
        await remote.stop()
