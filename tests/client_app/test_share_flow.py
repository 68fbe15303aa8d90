"""The share flow without Qt, against real receivers: PIN prompts and retries, restarts, moderation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from coalesce_client.app.config import SenderConfig, SenderServices
from coalesce_client.app.media_devices import MediaDevices
from coalesce_client.app.scheduler import Scheduler
from coalesce_client.app.share_flow import MODERATOR_MEETING, ShareFlow
from coalesce_client.app.share_handle import lan_share_of
from coalesce_client.models.app_settings import AppSettingsModel
from coalesce_client.models.media import Camera, MediaSources
from coalesce_client.models.session import SharePhase, ShareSession
from coalesce_client.services.remote import RemoteShare
from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.errors import ShareRefused, WrongPin
from coalesce_receiver.services.receiver import Receiver
from coalesce_receiver.services.sink import TrackSink
from tests.client_app.conftest import PIN, SENDER_NAME, no_screen, until, write_app_settings
from tests.cuttable import CuttableTcp
from tests.e2e.conftest import ReceiverFactory

MODERATOR_PIN = "909090"


@dataclass
class Sharing:
    """A share flow and the models it writes."""

    flow: ShareFlow
    session: ShareSession
    media: MediaSources
    settings: AppSettingsModel

    async def until(self, holds: Callable[[], bool], what: str) -> None:
        await until(self.session, holds, what)

    async def sharing(self) -> None:
        await self.until(lambda: self.session.phase is SharePhase.SHARING, "sharing")

    async def idle(self) -> None:
        await self.until(lambda: self.session.phase is SharePhase.IDLE, "back to idle")

    async def asked_for_pin(self) -> None:
        await self.until(lambda: self.session.phase is SharePhase.WAITING_FOR_PIN, "the PIN prompt")


SharingFactory = Callable[..., Awaitable[Sharing]]


@pytest.fixture
async def make_sharing(isolated_home: Path, video_file: Callable[..., Path]) -> AsyncIterator[SharingFactory]:
    """``make_sharing(cameras=None, **SenderConfig fields)``: a share flow with a video file as its camera."""
    path = isolated_home / "config" / "coalesce" / "app.json"
    await asyncio.to_thread(write_app_settings, path, display_name=SENDER_NAME)
    scheduler = Scheduler(asyncio.get_running_loop())

    async def make(*, cameras: list[Camera] | None = None, **overrides: object) -> Sharing:
        settings = await asyncio.to_thread(AppSettingsModel, path)  # the app reads app.json before its loop
        listed = cameras if cameras is not None else [Camera(str(video_file((0, 160, 255))), "Test camera")]
        config = SenderConfig(
            discovery=False, thumbnail_interval=0.5, status_interval=0.3, preview_interval=0.1, **overrides
        )  # type: ignore[arg-type]
        services = SenderServices(grab_monitors=no_screen, list_cameras=lambda: list(listed))
        session, media = ShareSession(), MediaSources()
        devices = MediaDevices(media, session, scheduler, config, services)
        flow = ShareFlow(session, settings, media, devices, scheduler, config, services)
        return Sharing(flow, session, media, settings)

    yield make
    await scheduler.aclose()  # ends any share still running: the receiver is told


def shown_senders(receiver: Receiver) -> list[str]:
    return [share.sender_name for share in receiver.model.shares]


async def test_a_share_asks_for_the_pin_then_reports_the_link(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory
) -> None:
    receiver = await make_receiver(pin=PIN)
    sharing = await make_sharing()
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.asked_for_pin()
    request = sharing.session.pin_request
    assert request is not None and request.receiver_name == "Room 1" and request.error is None
    sharing.flow.submit_pin(PIN)
    await sharing.sharing()
    assert shown_senders(receiver) == [SENDER_NAME]
    assert sharing.session.receiver_name == "Room 1"
    assert sharing.session.media.camera is not None  # no screen here: the camera was shared instead
    await sharing.until(lambda: sharing.session.status.route == "peer-to-peer", "the link status")
    await sharing.until(lambda: sharing.media.camera_preview is not None, "the camera preview")
    last = sharing.settings.settings.last_destination
    assert last is not None and last.address == f"127.0.0.1:{receiver.port}"

    sharing.flow.stop()
    await sharing.idle()
    assert sharing.session.error is None and sharing.session.notice is None
    assert sharing.media.camera_preview is None
    await until(receiver.model, lambda: receiver.model.shares == [], "the receiver told")


async def test_a_wrong_pin_is_asked_again_with_the_reason(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory
) -> None:
    receiver = await make_receiver(pin=PIN)
    sharing = await make_sharing()
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.asked_for_pin()
    sharing.flow.submit_pin("1111")
    await sharing.until(
        lambda: sharing.session.pin_request is not None and sharing.session.pin_request.error is not None,
        "the second prompt",
    )
    assert sharing.session.pin_request is not None
    assert sharing.session.pin_request.error == str(WrongPin())
    sharing.flow.submit_pin(PIN)
    await sharing.sharing()
    assert shown_senders(receiver) == [SENDER_NAME]


async def test_cancelling_the_pin_prompt_gives_up_quietly(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory
) -> None:
    receiver = await make_receiver(pin=PIN)
    sharing = await make_sharing()
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.asked_for_pin()
    sharing.flow.stop()  # Stop while the prompt is up cancels it
    await sharing.idle()
    assert sharing.session.error is None and sharing.session.notice is None
    assert receiver.model.shares == []


async def test_another_camera_changes_the_live_share(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory, video_file: Callable[..., Path]
) -> None:
    red, green = str(video_file((255, 0, 0))), str(video_file((0, 255, 0)))
    receiver = await make_receiver(pin=PIN)
    sharing = await make_sharing(cameras=[Camera(red, "Red"), Camera(green, "Green")])
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.asked_for_pin()
    sharing.flow.submit_pin(PIN)
    await sharing.sharing()
    [shown] = receiver.model.shares
    sink = shown.tracks["camera"]
    assert isinstance(sink, TrackSink)
    phases: list[SharePhase] = []
    sharing.session.subscribe(lambda: phases.append(sharing.session.phase))

    sharing.flow.choose_camera(green)

    async with asyncio.timeout(20):  # frame by frame until the room shows the green camera
        while not is_green(sink.latest_rgb()):
            assert await sink.wait_for_frames(sink.frames + 1)
    assert [s.share_id for s in receiver.model.shares] == [shown.share_id]  # the same tile
    assert set(phases) <= {SharePhase.SHARING}  # never left sharing, never asked for the PIN again
    assert sharing.session.media.camera == green and sharing.settings.settings.media.camera == green
    assert sharing.session.media_problem is None


async def test_a_change_that_cannot_be_made_is_said_and_the_share_goes_on(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory, video_file: Callable[..., Path]
) -> None:
    red = str(video_file((255, 0, 0)))
    receiver = await make_receiver()
    sharing = await make_sharing(cameras=[Camera(red, "Red")])
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.sharing()
    sharing.flow.choose_screen(9)  # no such screen here
    await sharing.until(lambda: sharing.session.media_problem is not None, "the problem is said")
    assert (sharing.session.media_problem or "").endswith("The room display keeps showing what it showed.")
    assert sharing.session.phase is SharePhase.SHARING
    assert sharing.session.media.screen is None  # the choice shown is what is sent
    [shown] = receiver.model.shares
    sink = shown.tracks["camera"]
    assert isinstance(sink, TrackSink)
    assert await asyncio.wait_for(sink.wait_for_frames(sink.frames + 3), 20)  # still streaming


def is_green(rgb: np.ndarray | None) -> bool:
    if rgb is None:
        return False
    r, g, b = (int(v) for v in rgb[rgb.shape[0] // 2, rgb.shape[1] // 2])
    return g > 200 and r < 60 and b < 60


async def test_the_receiver_switched_off_ends_the_share_with_a_notice(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory
) -> None:
    receiver = await make_receiver()  # an open room: no PIN
    sharing = await make_sharing()
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.sharing()
    await receiver.aclose()
    await sharing.idle()
    assert sharing.session.notice == "Room 1 was switched off or restarted, so the share ended."
    assert sharing.session.error is None


async def test_a_lost_connection_is_said_and_the_share_comes_back(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory
) -> None:
    receiver = await make_receiver()  # an open room: no PIN
    async with CuttableTcp(receiver.port) as path:
        sharing = await make_sharing()
        sharing.flow.share_typed(f"127.0.0.1:{path.port}")
        await sharing.sharing()
        await sharing.until(lambda: sharing.session.status.route == "peer-to-peer", "the link status")
        path.cut()  # the signaling connection breaks, and new ones are refused
        await sharing.until(lambda: sharing.session.status.reconnecting, "the reconnecting status")
        assert (
            sharing.session.status.describe() == "Connection lost: reconnecting… (the room keeps your place)"
        )
        assert sharing.session.phase is SharePhase.SHARING and sharing.session.error is None
        await until(
            receiver.model, lambda: receiver.model.shares[0].reconnecting, "the room to keep the tile"
        )
        path.restore()
        await sharing.until(
            lambda: (
                not sharing.session.status.reconnecting and sharing.session.status.route == "peer-to-peer"
            ),
            "the share back",
        )
        await until(
            receiver.model,
            lambda: len(receiver.model.shares) == 1 and not receiver.model.shares[0].reconnecting,
            "the room to give the tile back",
        )
        assert shown_senders(receiver) == [SENDER_NAME]
        sharing.flow.stop()
        await sharing.idle()


async def test_an_unreachable_address_fails_in_words(
    make_sharing: SharingFactory, free_tcp_port: int
) -> None:
    sharing = await make_sharing()
    sharing.flow.share_typed(f"127.0.0.1:{free_tcp_port}")
    await sharing.idle()
    assert sharing.session.error is not None and "Could not reach" in sharing.session.error


async def test_a_meeting_before_enrolling_says_where_to_enroll(make_sharing: SharingFactory) -> None:
    sharing = await make_sharing()
    sharing.flow.share_typed("123 456 7890")  # the real cloud share: no credentials in the keyring
    await sharing.idle()
    assert sharing.session.error is not None and "open Settings and enroll" in sharing.session.error


async def test_nothing_to_share_is_said_before_connecting(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory
) -> None:
    receiver = await make_receiver()
    sharing = await make_sharing(cameras=[])
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.idle()
    assert sharing.session.error == (
        "No screen can be captured here: share a camera instead. No camera was found either, so there is "
        "nothing to share."
    )
    assert receiver.model.shares == []


async def test_a_moderator_meeting_is_refused_at_once(make_sharing: SharingFactory) -> None:
    sharing = await make_sharing()
    sharing.session.set_moderator(True)
    sharing.flow.share_typed("123 456 7890")
    assert sharing.session.error == MODERATOR_MEETING and not sharing.session.active


async def test_the_moderator_queue_is_answered_in_order_and_an_unanswered_one_denied(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    sharing = await make_sharing(join_answer_timeout=2.0)
    sharing.session.set_moderator(True)
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.asked_for_pin()
    assert sharing.session.pin_request is not None and sharing.session.pin_request.moderator
    sharing.flow.submit_pin(MODERATOR_PIN)
    await sharing.sharing()

    camera = str(video_file((0, 200, 0)))
    guests = [
        Share(
            ShareTarget("127.0.0.1", receiver.port),
            ShareOptions(sender_name=name, pin=PIN, screen=None, camera=camera),
        )
        for name in ("Welcome", "Ignored")
    ]
    starting = [asyncio.ensure_future(guest.start()) for guest in guests]
    try:
        await sharing.until(lambda: len(sharing.session.join_requests) == 2, "both requests queued")
        first, second = sharing.session.join_requests
        assert {first.sender_name, second.sender_name} == {"Welcome", "Ignored"}
        welcome = guests[0] if first.sender_name == "Welcome" else guests[1]
        sharing.session.answer_join(first, True)
        # The second nobody answers: denied once join_answer_timeout has passed, and the prompt withdrawn.
        done, _ = await asyncio.wait(starting, timeout=15)
        assert len(done) == 2
        outcomes = {g.options.sender_name: t.exception() for g, t in zip(guests, starting, strict=True)}
        assert outcomes[welcome.options.sender_name] is None
        refused = outcomes[second.sender_name]
        assert isinstance(refused, ShareRefused) and "declined" in str(refused)
        assert sharing.session.join_requests == []
        assert sorted(shown_senders(receiver)) == sorted([SENDER_NAME, welcome.options.sender_name])
    finally:
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        for guest in guests:
            await guest.stop()


async def test_one_deny_ends_the_attempt_for_good(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(pin=PIN, moderated=True, moderator_pin=MODERATOR_PIN)
    asked: list[str] = []

    async def deny(sender_name: str) -> bool:
        asked.append(sender_name)
        return False

    moderator = Share(
        ShareTarget("127.0.0.1", receiver.port),
        ShareOptions(
            sender_name="Chair", pin=MODERATOR_PIN, moderator=True, screen=None, camera=str(video_file())
        ),
        on_join_request=deny,
    )
    await moderator.start()
    try:
        sharing = await make_sharing()
        sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
        await sharing.asked_for_pin()  # prompted: the case where the app used to connect once more
        sharing.flow.submit_pin(PIN)
        await sharing.idle()
        assert sharing.session.error is not None and "declined" in sharing.session.error
        assert asked == [SENDER_NAME], "the moderator was asked once"
        assert receiver.model.join_requests == [] and shown_senders(receiver) == ["Chair"]
    finally:
        await moderator.stop()


async def test_waiting_to_be_let_in_is_said_and_cancel_withdraws_the_request(
    make_receiver: ReceiverFactory, make_sharing: SharingFactory
) -> None:
    receiver = await make_receiver(pin=PIN, moderated=True)
    sharing = await make_sharing()
    sharing.flow.share_typed(f"127.0.0.1:{receiver.port}")
    await sharing.asked_for_pin()
    sharing.flow.submit_pin(PIN)
    await sharing.until(lambda: sharing.session.phase is SharePhase.WAITING_TO_JOIN, "waiting to be let in")
    await until(receiver.model, lambda: len(receiver.model.join_requests) == 1, "the box asks")
    assert sharing.session.active

    sharing.flow.stop()  # Cancel
    await sharing.idle()
    assert sharing.session.error is None, "the user's own cancel is no error"
    await until(receiver.model, lambda: receiver.model.join_requests == [], "the request withdrawn at once")
    assert receiver.model.shares == []


def test_a_cloud_share_has_no_lan_share_before_it_starts() -> None:
    remote = RemoteShare("1234567890", ShareOptions(screen=None))
    assert lan_share_of(remote) is None
