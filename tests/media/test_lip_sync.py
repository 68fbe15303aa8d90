"""Lip sync at the room: the picture's timing against its sender's clock, what the speaker does with each
block of sound, and the speaker doing it on a real (private) PulseAudio output."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from coalesce_receiver.services import lip_sync
from coalesce_receiver.services.lip_sync import Cue, PictureClock, SoundClock, cue, hold_for
from coalesce_receiver.services.speaker import BLOCK, CHANNELS, RoomSpeaker
from coalesce_testing.pulse import SINKS, PulseServer
from tests.e2e.conftest import eventually


def test_the_picture_offset_is_the_median_of_recent_frames_plus_the_display() -> None:
    picture = PictureClock()
    assert picture.offset is None and picture.due(5.0) is None  # no frame timed yet
    for sent, decoded in ((10.0, 110.05), (10.1, 110.15), (10.2, 110.9), (10.3, 110.35)):
        picture.saw(sent, decoded)  # one frame 0.7 s late moves the median little
    assert picture.offset == pytest.approx(100.05 + lip_sync.DISPLAY_DELAY)
    assert picture.due(20.0) == pytest.approx(120.05 + lip_sync.DISPLAY_DELAY)
    assert picture.due(None) is None  # sound without a sender report plays as it comes


def test_the_picture_is_held_for_sound_that_needs_longer_and_never_more_than_the_bound() -> None:
    picture, sound = PictureClock(), SoundClock()
    for n in range(10):
        picture.saw(10.0 + n / 30, 110.03 + n / 30)  # shows 50 ms after capture (with the display)
        sound.heard(10.0 + n / 50, 110.11 + n / 50)  # heard at the earliest 110 ms after capture
    picture.wait_for(sound)
    assert picture.hold == pytest.approx(0.06)
    assert picture.due(20.0) == pytest.approx(120.11)  # sound is due when the held picture shows
    assert hold_for(0.05, 0.02) == 0.0  # the sound is the quicker: it waits, the picture does not
    assert hold_for(0.05, 2.0) == lip_sync.MAX_HOLD  # sound from far away: the picture stays live
    assert hold_for(None, 0.2) == hold_for(0.05, None) == 0.0
    sound.clear()
    picture.wait_for(sound)
    assert picture.hold == 0.0


def test_sound_ahead_of_its_picture_waits_and_sound_behind_catches_up_while_it_can() -> None:
    assert cue(None, 100.0, 5) is Cue.PLAY
    assert cue(None, 100.0, lip_sync.UNTIMED_QUEUE + 1) is Cue.SKIP  # untimed: never more than 160 ms behind
    assert cue(100.1, 100.0, 5) is Cue.WAIT  # due 100 ms from when it would be heard
    assert cue(100.015, 100.0, 5) is Cue.PLAY  # within a block: on time
    assert cue(100.0, 100.02, 5) is Cue.PLAY  # 20 ms late: within the tolerance
    assert cue(100.0, 100.1, 5) is Cue.SKIP  # 100 ms late with sound to spare
    assert cue(100.0, 100.1, lip_sync.JITTER_RESERVE) is Cue.PLAY  # late, but nothing to spare


def tone_blocks(count: int) -> np.ndarray:
    t = np.arange(BLOCK * count) / 48_000
    mono = (8000 * np.sin(2 * np.pi * 997 * t)).astype(np.int16)
    return np.repeat(mono, CHANNELS)


async def test_the_speaker_holds_sound_until_it_is_due_and_drops_sound_that_lags(pulse: PulseServer) -> None:
    speaker = RoomSpeaker(SINKS["room"])
    try:
        speaker.feed(tone_blocks(5))  # untimed: opens the output and plays at once
        await eventually(lambda: speaker.played >= 5, 10, "the untimed sound played")
        assert speaker.sync is None and speaker.waited == 0

        speaker.feed(tone_blocks(10), due=time.monotonic() + 0.4)  # 400 ms ahead of its picture
        await eventually(lambda: speaker.played >= 15, 10, "the timed sound played")
        assert speaker.waited >= 5  # about 0.4 s less the output's latency, in 20 ms blocks of silence
        sync = speaker.sync
        assert sync is not None and abs(sync) <= lip_sync.TOLERANCE, sync

        played = speaker.played
        speaker.feed(tone_blocks(20), due=time.monotonic() - 0.3)  # 300 ms behind its picture
        await eventually(lambda: speaker.played + speaker.skipped >= played + 20, 10, "all handled")
        assert speaker.skipped >= 10 and speaker.played - played <= 10
    finally:
        speaker.close()
        await asyncio.to_thread(speaker.join, 5)
