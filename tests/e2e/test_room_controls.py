"""The room's controls on the service side: moderation, PIN change and rotation, dropping a share."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.errors import RoomFull, RoomLocked, ShareRefused, WrongPin
from coalesce_common.protocol import EndReason
from coalesce_receiver.models.room import SettingsOutcome
from coalesce_receiver.services.receiver import Receiver
from coalesce_testing.waiting import until
from tests.e2e.conftest import ReceiverFactory, eventually


def camera(video: Path, pin: str | None = None, name: str = "Laptop") -> ShareOptions:
    return ShareOptions(sender_name=name, pin=pin, screen=None, camera=str(video))


async def changed(receiver: Receiver, predicate: Callable[[], bool]) -> None:
    await until(receiver.model, predicate, "the room to change")


async def test_a_moderated_room_shows_a_share_only_after_approval(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(moderated=True)
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    approved = asyncio.ensure_future(Share(target, camera(video, name="Ada")).start())
    await changed(receiver, lambda: len(receiver.model.join_requests) == 1)
    [request] = receiver.model.join_requests
    assert request.sender_name == "Ada" and receiver.model.shares == []
    receiver.decide(request.share_id, True)
    await asyncio.wait_for(approved, 20)
    assert [s.sender_name for s in receiver.model.shares] == ["Ada"]
    assert receiver.model.join_requests == []

    declined = asyncio.ensure_future(Share(target, camera(video, name="Mallory")).start())
    await changed(receiver, lambda: len(receiver.model.join_requests) == 1)
    receiver.decide(receiver.model.join_requests[0].share_id, False)
    with pytest.raises(ShareRefused, match="declined"):
        await asyncio.wait_for(declined, 20)
    assert [s.sender_name for s in receiver.model.shares] == ["Ada"]
    assert (
        receiver.model.notice == "Mallory's share was not let in: the moderator said no, or did not answer."
    )


async def test_the_pin_changes_only_with_the_admin_password(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin="4821", admin_password="room-admin-pw")
    wrong = await receiver.apply_settings("wrong", pin="1111", rotate=False)
    assert wrong is SettingsOutcome.WRONG_PASSWORD and receiver.model.pin == "4821"
    short = await receiver.apply_settings("room-admin-pw", pin="12", rotate=False)
    assert short is SettingsOutcome.INVALID_PIN and receiver.model.pin == "4821"
    applied = await receiver.apply_settings("room-admin-pw", pin="1111", rotate=True)
    assert applied is SettingsOutcome.APPLIED
    assert receiver.model.pin == "1111" and receiver.model.pin_rotation
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    with pytest.raises(WrongPin):
        await Share(target, camera(video, pin="4821")).start()
    async with Share(target, camera(video, pin="1111")):
        assert len(receiver.model.shares) == 1


async def test_settings_stay_locked_without_an_admin_password(make_receiver: ReceiverFactory) -> None:
    receiver = await make_receiver(pin="4821")
    for password in ("", "anything"):
        outcome = await receiver.apply_settings(password, pin=None, rotate=False)
        assert outcome is SettingsOutcome.WRONG_PASSWORD
    assert receiver.model.pin == "4821"


async def test_pin_rotates_when_the_meeting_ends(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin="4821", rotate_pin=True)
    async with Share(ShareTarget("127.0.0.1", receiver.port), camera(video_file(), pin="4821")):
        assert receiver.model.pin == "4821"  # not during the meeting
    await changed(receiver, lambda: receiver.model.pin != "4821")
    assert receiver.model.pin is not None and receiver.model.pin.isdigit() and len(receiver.model.pin) == 4
    with pytest.raises(WrongPin):
        await Share(ShareTarget("127.0.0.1", receiver.port), camera(video_file(), pin="4821")).start()


async def test_the_box_can_drop_a_share(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    share = Share(ShareTarget("127.0.0.1", receiver.port), camera(video_file(), name="Talks too long"))
    await share.start()
    try:
        receiver.drop_share(receiver.model.shares[0].share_id)
        assert await asyncio.wait_for(share.wait_ended(), 10) is EndReason.DROPPED_BY_ROOM
        await eventually(lambda: receiver.model.shares == [], 5, "the tile is gone")
    finally:
        await share.stop()


async def test_a_moderator_sender_approves_and_declines_join_requests(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin="4821", moderated=True, moderator_pin="909090")
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    asked: list[str] = []

    async def moderator_says(sender_name: str) -> bool:
        asked.append(sender_name)
        return sender_name == "Welcome guest"

    moderator_options = ShareOptions(
        sender_name="Chair", pin="909090", screen=None, camera=str(video), moderator=True
    )
    async with Share(target, moderator_options, on_join_request=moderator_says):  # admitted without approval
        assert [s.sender_name for s in receiver.model.shares] == ["Chair"]
        async with Share(target, camera(video, pin="4821", name="Welcome guest")):
            assert asked == ["Welcome guest"]
            assert sorted(s.sender_name for s in receiver.model.shares) == ["Chair", "Welcome guest"]
        with pytest.raises(ShareRefused, match="declined"):
            await Share(target, camera(video, pin="4821", name="Gatecrasher")).start()
        assert asked == ["Welcome guest", "Gatecrasher"]


async def test_only_the_moderator_pin_makes_a_moderator(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin="4821", moderated=True, moderator_pin="909090")
    options = ShareOptions(pin="4821", screen=None, camera=str(video_file()), moderator=True)
    with pytest.raises(WrongPin):  # the room PIN is not the moderator PIN
        await Share(ShareTarget("127.0.0.1", receiver.port), options).start()
    no_moderator = await make_receiver(pin="4821", moderated=True)
    with pytest.raises(ShareRefused, match="no moderator"):
        await Share(ShareTarget("127.0.0.1", no_moderator.port), options).start()


async def test_a_moderator_who_arrives_later_is_told_who_is_waiting(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin="4821", moderated=True, moderator_pin="909090")
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    guest = Share(target, camera(video, pin="4821", name="Early guest"))
    waiting = asyncio.ensure_future(guest.start())
    await changed(receiver, lambda: len(receiver.model.join_requests) == 1)
    asked: list[str] = []

    async def approve(sender_name: str) -> bool:
        asked.append(sender_name)
        return True

    options = ShareOptions(sender_name="Chair", pin="909090", screen=None, camera=str(video), moderator=True)
    async with Share(target, options, on_join_request=approve):
        await asyncio.wait_for(waiting, 20)
        assert asked == ["Early guest"]
        assert sorted(s.sender_name for s in receiver.model.shares) == ["Chair", "Early guest"]
    await guest.stop()


async def test_a_locked_room_refuses_new_shares_and_keeps_those_on_screen(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(admin_password="room-admin-pw")
    target, video = ShareTarget("127.0.0.1", receiver.port, name="Room 1"), video_file()  # as mDNS names it
    async with Share(target, camera(video, name="Ada")) as ada:
        locked = await receiver.apply_settings("room-admin-pw", pin=None, rotate=False, locked=True)
        assert locked is SettingsOutcome.APPLIED and receiver.model.locked
        with pytest.raises(RoomLocked) as refused:
            await Share(target, camera(video, name="Brian")).start()
        assert "Room 1 is locked" in str(refused.value) and "settings" in str(refused.value)
        assert (receiver.model.notice or "").startswith("Someone tried to share, but this room is locked")
        assert [s.sender_name for s in receiver.model.shares] == ["Ada"]
        sink = receiver.model.shares[0].tracks["camera"]
        before = int(sink.stats()["frames"])  # type: ignore[call-overload]
        await eventually(lambda: int(sink.stats()["frames"]) > before + 3, 10, "Ada's share goes on")  # type: ignore[call-overload]
        assert ada.state.value == "sharing"
        await receiver.apply_settings("room-admin-pw", pin=None, rotate=False, locked=False)
        async with Share(target, camera(video, name="Brian")):
            assert sorted(s.sender_name for s in receiver.model.shares) == ["Ada", "Brian"]


async def test_a_full_room_says_at_the_box_who_could_not_share(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(max_shares=1)
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    async with Share(target, camera(video, name="Ada")):
        with pytest.raises(RoomFull):
            await Share(target, camera(video, name="Eve")).start()
        notice = receiver.model.notice  # turned away before the PIN step: no name a stranger could choose
        assert notice is not None
        assert notice.startswith("Someone wants to share, but the room already shows 1 share:")
        await changed(receiver, lambda: receiver.model.notice is None)  # it goes after a few seconds


async def test_a_newcomer_to_a_full_room_may_take_the_oldest_shares_place(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin="4821", max_shares=2)
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    async with Share(target, camera(video, "4821", "Ada")) as ada, Share(target, camera(video, "4821", "Bo")):
        with pytest.raises(RoomFull) as caught:
            await Share(target, camera(video, "4821", "Eve")).start()
        assert caught.value.replaceable and "Replace the oldest share" in str(caught.value)
        with pytest.raises(WrongPin):  # the PIN first: a stranger cannot end anyone's share
            await Share(target, replace(camera(video, "0000", "Mallory"), replace_oldest=True)).start()
        assert [s.sender_name for s in receiver.model.shares] == ["Ada", "Bo"]

        async with Share(target, replace(camera(video, "4821", "Eve"), replace_oldest=True)):
            assert await asyncio.wait_for(ada.wait_ended(), 20) is EndReason.REPLACED
            assert [s.sender_name for s in receiver.model.shares] == ["Bo", "Eve"]
            assert receiver.model.notice == "Eve took the place of Ada's share: the room was full."
            said = EndReason.REPLACED.describe("Room 1")
            assert said is not None and "took the place of your share" in said


async def test_a_room_that_does_not_allow_it_turns_the_newcomer_away(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(max_shares=1, replace_when_full=False)
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    async with Share(target, camera(video, name="Ada")) as ada:
        with pytest.raises(RoomFull) as caught:
            await Share(target, replace(camera(video, name="Eve"), replace_oldest=True)).start()
        assert not caught.value.replaceable and "Replace" not in str(caught.value)
        assert ada.end_reason is None and [s.sender_name for s in receiver.model.shares] == ["Ada"]


async def test_a_moderators_share_is_never_replaced(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin="4821", max_shares=1, moderator_pin="909090", moderated=True)
    target, video = ShareTarget("127.0.0.1", receiver.port), video_file()
    chair = ShareOptions(sender_name="Chair", pin="909090", screen=None, camera=str(video), moderator=True)

    async def yes(sender_name: str) -> bool:
        return True

    async with Share(target, chair, on_join_request=yes) as moderator:
        with pytest.raises(RoomFull):
            await Share(target, replace(camera(video, "4821", "Eve"), replace_oldest=True)).start()
        assert moderator.end_reason is None
        assert [s.sender_name for s in receiver.model.shares] == ["Chair"]


async def test_coalesce_share_says_how_to_replace_and_replace_oldest_does(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(max_shares=1)
    video = video_file()
    share_args = (
        "--to",
        f"127.0.0.1:{receiver.port}",
        "--no-screen",
        "--camera",
        str(video),
        "--name",
        "Eve",
    )
    env = {**os.environ, "COALESCE_ICE_HOST_ADDRESSES": "127.0.0.1"}
    async with Share(ShareTarget("127.0.0.1", receiver.port), camera(video, name="Ada")) as ada:
        refused = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "coalesce_client", "share", *share_args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        _, err = await asyncio.wait_for(refused.communicate(), 30)
        assert refused.returncode == 2
        assert (
            err.decode()
            .strip()
            .endswith("or ask someone to stop first. To replace it, share again with --replace-oldest.")
        )
        replacing = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "coalesce_client", "share", *share_args, "--replace-oldest"),
            *("--duration", "30"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert replacing.stdout is not None
        try:
            assert await asyncio.wait_for(ada.wait_ended(), 30) is EndReason.REPLACED
            await changed(receiver, lambda: [s.sender_name for s in receiver.model.shares] == ["Eve"])
            sharing = await asyncio.wait_for(replacing.stdout.readline(), 30)
            assert sharing.startswith(b"Sharing to Room 1") and b"Press Ctrl-C to stop." in sharing
        finally:
            replacing.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(replacing.communicate(), 20)
        assert replacing.returncode == 0, err.decode()
        assert b"Share stopped." in out
