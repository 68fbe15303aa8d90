"""Shared sound end to end: what the sender's computer plays reaches the room's output, on loopback.

A private PulseAudio server (``coalesce_testing.pulse``) has a null sink per sender and one for the room.
A tone played into a sender's sink is what that sender's computer "plays"; the room plays to its own
sink, whose monitor the test records with ``parec`` and looks at through an FFT.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coalesce_client.services.share import Share, ShareOptions, ShareTarget
from coalesce_common.errors import SoundUnavailable
from coalesce_receiver.services.receiver import Receiver
from coalesce_testing.pulse import SINKS, PulseServer
from coalesce_testing.waiting import until
from tests.e2e.conftest import ReceiverFactory, eventually
from tests.soundlab import TONE_A, TONE_B, heard, record_room, rms, steadily_heard, volume_near
from tests.soundlab import tones as tones  # a fixture


def sound_share(receiver: Receiver, video: Path, name: str, sink: str) -> Share:
    options = ShareOptions(
        sender_name=name, screen=None, camera=str(video), sound=True, sound_device=SINKS[sink]
    )
    return Share(ShareTarget("127.0.0.1", receiver.port), options)


async def test_the_senders_sound_is_played_at_the_room_and_stops_when_turned_off(
    pulse: PulseServer, tones: None, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(sound_output=SINKS["room"])
    async with sound_share(receiver, video_file(), "Ada", "alpha") as ada:
        assert ada.sound and ada.sound_problem is None
        await until(receiver.model, lambda: receiver.model.audible is not None, "Ada's sound is heard")
        speaker = receiver.speaker
        assert speaker is not None
        await eventually(lambda: speaker.played >= 25, 20, "half a second of Ada's sound played")
        await steadily_heard(pulse, TONE_A)  # Ada's 997 Hz tone at the room's output
        # timed against Ada's picture by the RTCP reports of both streams (how well: benchmarks/)
        await eventually(lambda: speaker.sync is not None, 10, "the sound is played in step with the picture")
        full = rms(await record_room(pulse, 0.5))
        receiver.set_sound_volume(0.5)  # the room's - key, five times
        await eventually(volume_near(pulse, full / 2), 10, "half the level at half the volume")
        receiver.set_sound_volume(1.0)
        ada.set_sound_volume(0.5)  # the sender's own volume: the room plays it at half the level too
        await eventually(volume_near(pulse, full / 2), 10, "half the level at the sender's half volume")
        ada.set_sound_volume(1.0)

        await ada.set_sound(False)  # mid-share: silence at the room, the picture goes on
        await until(receiver.model, lambda: receiver.model.audible is None, "the room hears nothing")
        played = speaker.played
        after = await record_room(pulse, 1.0)  # what was buffered plays out (160 ms at most), then silence
        quiet = after[len(after) // 2 :]
        assert rms(quiet) < 30  # against ~11,000 for the tone
        assert speaker.played - played <= 10  # a buffer's worth at most, then nothing
        assert ada.state.value == "sharing" and [s.sender_name for s in receiver.model.shares] == ["Ada"]

        await ada.set_sound(True)  # and back, without a new share
        await until(receiver.model, lambda: receiver.model.audible is not None, "heard again")
        await eventually(lambda: speaker.played >= played + 25, 20, "the sound plays again")


async def test_with_two_shares_only_the_spotlit_or_the_chosen_one_is_heard(
    pulse: PulseServer, tones: None, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver(sound_output=SINKS["room"])
    video = video_file()
    async with sound_share(receiver, video, "Ada", "alpha"), sound_share(receiver, video, "Bo", "beta"):
        ada_id, bo_id = (share.share_id for share in receiver.model.shares)
        await until(receiver.model, lambda: receiver.model.audible == ada_id, "the first share is heard")
        await steadily_heard(pulse, TONE_A)  # Ada's share came first
        assert await heard(pulse, TONE_B) < 0  # and not Bo's

        receiver.spotlight(bo_id)
        assert receiver.model.audible == bo_id
        await steadily_heard(pulse, TONE_B)  # Bo's, once Bo is spotlit
        assert await heard(pulse, TONE_A) < 0

        receiver.listen_to(ada_id)  # the room's key H (or a moderator's Listen): Ada, though Bo is spotlit
        assert receiver.model.audible == ada_id and receiver.model.spotlit == bo_id
        await steadily_heard(pulse, TONE_A)
        assert await heard(pulse, TONE_B) < 0


async def test_a_sound_output_that_does_not_exist_is_said_and_the_share_goes_on(
    pulse: PulseServer, make_receiver: ReceiverFactory, video_file: Callable[..., Path]
) -> None:
    receiver = await make_receiver()
    options = ShareOptions(
        sender_name="Ada", screen=None, camera=str(video_file()), sound=True, sound_device="Nowhere"
    )
    async with Share(ShareTarget("127.0.0.1", receiver.port), options) as ada:
        assert not ada.sound
        assert ada.sound_problem is not None and "'Nowhere'" in ada.sound_problem
        assert "check that it exists" in ada.sound_problem and "without it" in ada.sound_problem
        with pytest.raises(SoundUnavailable):
            await ada.set_sound(True)
        assert ada.state.value == "sharing" and receiver.model.audible is None


async def test_the_room_and_the_sender_exit_cleanly_after_playing_sound(
    pulse: PulseServer, tones: None, tmp_path: Path, video_file: Callable[..., Path]
) -> None:
    """The sound library aborts the process (a libpulse assertion) if a stream is still open at exit: both
    programs close theirs, and wait for that, before they return. The abort is a race (it was seen once
    by hand, from a receiver that did not wait), so this test may pass without the wait too."""
    env = pulse.env(COALESCE_ICE_HOST_ADDRESSES="127.0.0.1")
    room = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "coalesce_receiver", "--headless", "--no-mdns", "--host", "127.0.0.1"),
        *("--port", "0", "--data-dir", str(tmp_path / "room"), "--sound-output", SINKS["room"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert room.stdout is not None
    try:
        port = int((await asyncio.wait_for(room.stdout.readline(), 30)).decode().rsplit(":", 1)[1])
        sender = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "coalesce_client", "share", "--to", f"127.0.0.1:{port}", "--audio"),
            *("--audio-device", SINKS["alpha"], "--no-screen", "--camera", str(video_file())),
            *("--duration", "3"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(sender.communicate(), 60)
        assert sender.returncode == 0, err.decode()[-2000:]
        assert b"Your computer's sound is shared too." in out
    finally:
        room.send_signal(signal.SIGTERM)
        _, room_err = await asyncio.wait_for(room.communicate(), 30)
    assert room.returncode == 0, room_err.decode()[-2000:]
    assert b"playing shared sound on CoalesceRoom" in room_err  # it did play, and still exited cleanly
