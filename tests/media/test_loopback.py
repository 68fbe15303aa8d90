"""Two aiortc peers in one process, on loopback only: a camera (a video file) is captured, encoded with the
tuned H.264 encoder, sent, decoded and measured by a TrackSink."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection

from coalesce_common.media.capture import CameraSource
from coalesce_common.media.encoding import TunedH264Encoder, prefer_codec
from coalesce_common.media.tracks import CaptureTrack
from coalesce_receiver.services.sink import TrackSink

from .conftest import VideoFile

WAIT = 30.0
FRAMES = 20


def negotiated_video_codec(sdp: str) -> str:
    media = next(line for line in sdp.splitlines() if line.startswith("m=video"))
    payload_type = media.split()[3]
    return next(
        line.split()[1].split("/")[0]
        for line in sdp.splitlines()
        if line.startswith(f"a=rtpmap:{payload_type} ")
    )


def candidate_addresses(sdp: str) -> set[str]:
    return {
        match.group(1) for match in re.finditer(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+", sdp, re.MULTILINE)
    }


async def test_a_camera_reaches_the_receiver_over_h264_on_loopback(
    video_file: VideoFile, patched_aiortc: None, loopback_only_ice: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[int, int]] = []
    open_codec = TunedH264Encoder._open_codec

    def spy(encoder: TunedH264Encoder, width: int, height: int) -> object:
        opened.append((width, height))
        return open_codec(encoder, width, height)

    monkeypatch.setattr(TunedH264Encoder, "_open_codec", spy)
    # No ICE servers: aiortc would otherwise add a public STUN server.
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = CaptureTrack(CameraSource(str(video_file.path)))
    remote_track: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    receiver.on("track", remote_track.set_result)
    sink_task: asyncio.Task[None] | None = None
    try:
        assert prefer_codec(sender.addTransceiver(track, direction="sendonly"))
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)

        answer = receiver.localDescription.sdp
        assert negotiated_video_codec(answer) == "H264"
        assert candidate_addresses(sender.localDescription.sdp) == {"127.0.0.1"}
        assert candidate_addresses(answer) == {"127.0.0.1"}

        sink = TrackSink(await asyncio.wait_for(remote_track, WAIT), "camera")
        sink_task = asyncio.create_task(sink.run())
        assert await asyncio.wait_for(sink.wait_for_frames(FRAMES), WAIT)
        stats = sink.stats()
        assert (stats["width"], stats["height"]) == (video_file.width, video_file.height)
        assert isinstance(stats["fps"], float) and stats["fps"] > 5
        assert opened[:1] == [(video_file.width, video_file.height)], "the tuned encoder did the encoding"
        rgb = sink.latest_rgb()
        assert rgb is not None
        _, distance = video_file.nearest_index(rgb[30:90, 40:120])
        assert distance < 30, "the decoded picture is one of the file's colours"
    finally:
        track.stop()
        await sender.close()
        await receiver.close()
        if sink_task is not None:
            await asyncio.wait_for(sink_task, WAIT)
        # track.stop() only asks the thread to stop (it runs on the loop); the source's owner joins it.
        await track.source.aclose()
    assert track.source.error is None
    assert not track.source.running
