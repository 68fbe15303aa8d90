"""Hostile bytes get an error code and end only their session: no traceback, the live share goes on.

Deep JSON nesting, every kind of bad SPAKE2 element, and a garbage ``m=`` line in a paired sender's offer
(aiortc's SDP parser asserts on it) each once made the receiver log a traceback and answer ``internal``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiortc import RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common import PROTOCOL_VERSION
from coalesce_common.media.peer import new_peer_connection
from coalesce_common.protocol import (
    Answer,
    Challenge,
    Hello,
    MediaState,
    Offer,
    Pair,
    Role,
    SignalingSession,
    Welcome,
    encode,
)
from coalesce_common.protocol.pairing import PairingKey, SenderPairing
from coalesce_common.signaling.memory import MemoryChannel, channel_pair
from coalesce_receiver.models.room import ShareView
from coalesce_receiver.services.receiver import Receiver
from coalesce_receiver.services.sink import TrackSink
from coalesce_testing.waiting import until
from tests.e2e.conftest import ReceiverFactory, eventually
from tests.e2e.test_security import raw_exchange
from tests.protocol.test_hostile_input import bad_elements

PIN = "4821"
DTLS = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)


async def good_share_streams(receiver: Receiver) -> None:
    [shown] = [s for s in receiver.model.shares if s.sender_name == "Good"]
    sink = shown.tracks["camera"]
    assert isinstance(sink, TrackSink)
    assert await asyncio.wait_for(sink.wait_for_frames(sink.frames + 3), 10), "the good share keeps streaming"


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logged = [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO]
    assert logged == [], [r.getMessage() for r in logged]


async def error_codes(replies: list[str | bytes]) -> list[str]:
    return [json.loads(r)["code"] for r in replies if json.loads(r)["type"] == "error"]


@pytest.fixture
async def room_with_a_good_share(
    make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> AsyncIterator[Receiver]:
    receiver = await make_receiver(pin=PIN)
    share = Share(
        ShareTarget("127.0.0.1", receiver.port),
        ShareOptions(sender_name="Good", pin=PIN, screen=None, camera=str(video_file())),
    )
    await share.start()
    await receiver.wait_for_shares(1, timeout=20)
    yield receiver
    await share.stop()


async def test_deep_nesting_is_malformed(
    room_with_a_good_share: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="coalesce_receiver")
    replies = await raw_exchange(room_with_a_good_share, "[" * 5000 + "]" * 5000)
    assert await error_codes(replies) == ["malformed"]
    no_tracebacks(caplog)
    await good_share_streams(room_with_a_good_share)


@pytest.mark.parametrize("name", list(bad_elements()))
async def test_a_bad_spake2_element_is_a_bad_pairing(
    room_with_a_good_share: Receiver, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.INFO, logger="coalesce_receiver")
    pair = Pair(spake=base64.b64encode(bad_elements()[name]).decode(), confirm="AAAA", binding="AAAA")
    hello = Hello(v=PROTOCOL_VERSION, sender_name="Mallory", sender_id="m")
    replies = await raw_exchange(room_with_a_good_share, encode(hello), encode(pair))
    assert await error_codes(replies) == ["bad-pairing"]
    no_tracebacks(caplog)
    await good_share_streams(room_with_a_good_share)


async def paired(
    receiver: Receiver, name: str
) -> tuple[MemoryChannel, SignalingSession, PairingKey, asyncio.Future[object]]:
    """A hand-driven sender, paired with the right PIN over an in-memory channel the receiver serves."""
    sender_end, receiver_end = channel_pair(tls_fingerprint="AA:BB")
    serving = asyncio.ensure_future(receiver.serve(receiver_end))
    session = SignalingSession(Role.SENDER)
    await sender_end.send(session.send(Hello(v=PROTOCOL_VERSION, sender_name=name, sender_id=name.lower())))
    challenge = session.receive(await sender_end.recv())
    assert isinstance(challenge, Challenge)
    pair, key = SenderPairing(PIN).finish(challenge.spake, sender_end.tls_fingerprint)
    await sender_end.send(session.send(pair))
    assert isinstance(session.receive(await sender_end.recv()), Welcome)  # paired with the right PIN
    return sender_end, session, key, serving


@pytest.mark.parametrize(
    "media", ["m=garbage", "m=video x UDP/TLS/RTP/SAVPF 96", "m=video 9 UDP/TLS/RTP/SAVPF\r\na=mid:0"]
)
async def test_a_garbage_media_line_from_a_paired_sender_is_bad_sdp(
    room_with_a_good_share: Receiver, caplog: pytest.LogCaptureFixture, media: str
) -> None:
    caplog.set_level(logging.INFO, logger="coalesce_receiver")
    receiver = room_with_a_good_share
    sender_end, session, key, serving = await paired(receiver, "Paired")
    sdp = f"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n{DTLS}\r\n{media}\r\n"
    await sender_end.send(session.send(Offer(sdp=sdp, tracks={"0": "screen"}, mac=key.offer_mac(sdp))))
    reply = json.loads(await sender_end.recv())
    assert (reply["type"], reply["code"]) == ("error", "bad-sdp")
    await asyncio.wait_for(serving, 10)
    no_tracebacks(caplog)
    assert [s.sender_name for s in receiver.model.shares] == ["Good"]
    await good_share_streams(receiver)


async def test_audio_sections_not_asked_for_are_drained_unheard_and_the_video_goes_on(
    room_with_a_good_share: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coalesce_receiver")
    receiver = room_with_a_good_share
    sender_end, session, key, serving = await paired(receiver, "Odd")
    pc = new_peer_connection(None)
    try:
        for _ in range(2):  # two audio sections: one claims to be the camera, one the sound
            pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        tracks = {"0": "camera", "1": "sound"}
        await sender_end.send(session.send(Offer(sdp=sdp, tracks=tracks, mac=key.offer_mac(sdp))))
        answer = session.receive(await sender_end.recv())
        assert isinstance(answer, Answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        await sender_end.send(session.send(MediaState(screen=False, camera=True, sound=True)))
        odd = await until_share(receiver, "Odd")
        await eventually(lambda: odd.sound, 10, "the real sound section is taken as sound")
        assert "camera" not in odd.tracks  # an audio section is never shown as a picture
        ignored = [r.getMessage() for r in caplog.records if "unexpected audio section" in r.getMessage()]
        assert ignored == [
            "share from memory-sender: ignoring an unexpected audio section offered as 'camera'"
        ]
        await good_share_streams(receiver)
    finally:
        await pc.close()
        await sender_end.aclose()
        await asyncio.wait_for(serving, 10)
    no_tracebacks(caplog)


async def until_share(receiver: Receiver, name: str) -> ShareView:
    await until(receiver.model, lambda: any(s.sender_name == name for s in receiver.model.shares), name)
    return next(s for s in receiver.model.shares if s.sender_name == name)
