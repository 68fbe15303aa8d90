"""A live share's media API: switch sources, pause, statistics and previews without ending the share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from aiortc.mediastreams import MediaStreamTrack

from coalesce_client.services.link_stats import MediaRoute
from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.errors import MediaError
from coalesce_receiver.models.room import ShareView
from coalesce_receiver.services.receiver import Receiver
from coalesce_receiver.services.sink import TrackSink
from coalesce_testing.waiting import until
from tests.conftest import XServer
from tests.e2e.conftest import ReceiverFactory, close_to

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WAIT = 20.0


async def changed(receiver: Receiver, predicate: Callable[[], bool]) -> None:
    await until(receiver.model, predicate, "the room to change", WAIT)


def only_share(receiver: Receiver) -> ShareView:
    [share] = receiver.model.shares
    return share


async def frames_after(sink: TrackSink, more: int) -> None:
    assert await asyncio.wait_for(sink.wait_for_frames(sink.frames + more), WAIT)


async def shows(sink: TrackSink, colour: tuple[int, int, int]) -> None:
    """Wait, frame by frame (bounded), until the sink's picture is ``colour`` in the middle."""
    async with asyncio.timeout(WAIT):
        while not close_to(rgb_centre(sink), colour):
            assert await sink.wait_for_frames(sink.frames + 1), "the track ended"


async def test_the_camera_is_switched_turned_off_and_on_while_the_share_goes_on(
    xvfb: XServer, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    red, blue = video_file(colour=RED), video_file(colour=BLUE)
    options = ShareOptions(sender_name="Cam", screen=None, camera=str(red), display=xvfb.display)
    async with Share(ShareTarget("127.0.0.1", receiver.port), options) as share:
        await receiver.wait_for_shares(1, timeout=WAIT)
        shown = only_share(receiver)
        share_id = shown.share_id
        assert list(shown.tracks) == ["camera"]  # the empty screen section is not shown
        sink = shown.tracks["camera"]
        assert isinstance(sink, TrackSink)

        await share.set_sources(camera=str(blue))  # another camera: the same track goes on
        await shows(sink, BLUE)
        assert only_share(receiver).share_id == share_id and share.options.camera == str(blue)

        await share.set_sources(camera=None, screen=1)  # camera off, the X screen on
        await changed(receiver, lambda: list(only_share(receiver).tracks) == ["screen"])
        screen = only_share(receiver).tracks["screen"]
        assert isinstance(screen, TrackSink)
        await frames_after(screen, 3)
        assert sink.latest_rgb() is None  # a hidden section forgets its last picture

        await share.set_sources(camera=str(red))
        await changed(receiver, lambda: sorted(only_share(receiver).tracks) == ["camera", "screen"])
        await shows(sink, RED)
        assert only_share(receiver).share_id == share_id


def rgb_centre(sink: TrackSink) -> tuple[int, int, int]:
    rgb = sink.latest_rgb()
    if rgb is None:
        return (-999, -999, -999)
    h, w = rgb.shape[:2]
    r, g, b = (int(v) for v in rgb[h // 2, w // 2])
    return (r, g, b)


async def test_a_change_that_leaves_nothing_or_names_a_missing_screen_changes_nothing(
    xvfb: XServer, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    options = ShareOptions(sender_name="Cam", screen=None, camera=str(video_file()), display=xvfb.display)
    async with Share(ShareTarget("127.0.0.1", receiver.port), options) as share:
        await receiver.wait_for_shares(1, timeout=WAIT)
        with pytest.raises(MediaError, match="Nothing to share"):
            await share.set_sources(camera=None)
        with pytest.raises(MediaError, match="no screen 7"):
            await share.set_sources(screen=7)
        assert share.options.camera is not None and share.options.screen is None
        sink = only_share(receiver).tracks["camera"]
        assert isinstance(sink, TrackSink)
        await frames_after(sink, 3)  # still streaming


async def test_pause_is_shown_at_the_room_and_resume_sends_pictures_again(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    options = ShareOptions(sender_name="Cam", screen=None, camera=str(video_file()))
    async with Share(ShareTarget("127.0.0.1", receiver.port), options) as share:
        await receiver.wait_for_shares(1, timeout=WAIT)
        sink = only_share(receiver).tracks["camera"]
        assert isinstance(sink, TrackSink)
        await share.pause()
        await changed(receiver, lambda: only_share(receiver).paused)
        assert share.paused and (await share.stats()).paused
        assert "camera" in only_share(receiver).tracks  # the last picture stays up
        await share.resume()
        await changed(receiver, lambda: not only_share(receiver).paused)
        await frames_after(sink, 5)


async def test_stats_and_preview_describe_the_live_link(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    options = ShareOptions(sender_name="Cam", screen=None, camera=str(video_file(size=(320, 240))))
    async with Share(ShareTarget("127.0.0.1", receiver.port), options) as share:
        await receiver.wait_for_shares(1, timeout=WAIT)
        first = await share.stats()
        sink = only_share(receiver).tracks["camera"]
        assert isinstance(sink, TrackSink)
        await frames_after(sink, 10)
        stats = await share.stats()
        assert first.fps is None  # no rate before a second sample
        assert stats.route is MediaRoute.PEER_TO_PEER and stats.codec == "H264"
        assert (stats.width, stats.height) == (320, 240)
        assert stats.fps is not None and stats.fps > 0
        assert stats.kbps is not None and stats.kbps > 0
        assert stats.bytes_sent > first.bytes_sent and stats.packets_sent > 0
        assert stats.frames_captured >= 10
        frame = share.latest_frame("camera")
        assert frame is not None and (frame.width, frame.height) == (320, 240)
        assert share.latest_frame("screen") is None


async def test_the_receiver_hands_every_frame_to_the_sink_hook(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    hooked: list[av.VideoFrame] = []

    def sinks(track: MediaStreamTrack, kind: str) -> TrackSink:
        return TrackSink(track, kind, on_frame=hooked.append if kind == "camera" else None)

    receiver = await make_receiver(sink_factory=sinks)
    options = ShareOptions(sender_name="Cam", screen=None, camera=str(video_file()))
    async with Share(ShareTarget("127.0.0.1", receiver.port), options):
        await receiver.wait_for_shares(1, timeout=WAIT)
        sink = only_share(receiver).tracks["camera"]
        assert isinstance(sink, TrackSink)
        await frames_after(sink, 5)
        assert len(hooked) == sink.frames and hooked[-1] is sink.latest_frame
