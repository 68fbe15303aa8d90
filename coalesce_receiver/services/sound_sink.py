"""The receiving end of a share's sound: drains its remote audio track, plays it while the share is audible.

Every share's sound is decoded (aiortc's receiver keeps going only while its track is read), but only the
audible share's reaches the room's :class:`~coalesce_receiver.services.speaker.RoomSpeaker`: the room
plays one share's sound at a time. Frames that are not 48 kHz stereo ``s16`` (another peer's Opus
decoder settings) are resampled; anything else a peer could send in an audio section is dropped with one
rate-limited line, and the share's picture goes on.

Each frame goes to the speaker with the time it is due there (:mod:`~coalesce_receiver.services.lip_sync`),
once the sound's sender reports and the picture's timing are known: the speaker plays it with the picture,
and the picture is held while the sound needs longer to be heard than the picture to be seen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from coalesce_common.logutil import RateLimitedLog
from coalesce_common.media.receiving import SenderReport
from coalesce_receiver.services.lip_sync import BLOCK_S, PictureClock, SoundClock
from coalesce_receiver.services.speaker import CHANNELS, SAMPLE_RATE, RoomSpeaker

logger = logging.getLogger(__name__)


class SoundSink:
    """Consumes a remote audio track; feeds ``speaker`` while ``audible()`` says this share is heard
    (``None``: drains it unheard). ``report`` gives the track's latest RTCP sender report and ``picture``
    the share's picture timing, for lip sync (without them the sound plays as it comes)."""

    def __init__(
        self,
        track: MediaStreamTrack,
        speaker: RoomSpeaker | None,
        audible: Callable[[], bool],
        *,
        report: Callable[[], SenderReport | None] | None = None,
        picture: Callable[[], PictureClock | None] | None = None,
    ) -> None:
        self.track = track
        self.frames = 0
        """Audio frames decoded so far."""
        self.ended = asyncio.Event()
        self._speaker = speaker
        self._audible = audible
        self._report = report
        self._picture = picture
        self._was_audible = False
        self._clock = SoundClock()
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=SAMPLE_RATE)
        self._log = RateLimitedLog(logger)

    async def run(self) -> None:
        """Receive frames until the track ends; never raises for what the peer sends."""
        try:
            while True:
                try:
                    frame = await self.track.recv()
                except MediaStreamError:
                    break
                if not isinstance(frame, av.AudioFrame):
                    self._log.warning("not-audio", "dropping a non-audio frame on a share's sound")
                    continue
                self.frames += 1
                self._play(frame)
        finally:
            if self._was_audible and self._speaker is not None:
                self._speaker.flush()
                self._release_picture()
            self.ended.set()

    def _play(self, frame: av.AudioFrame) -> None:
        if self._speaker is None:
            return
        audible = self._audible()
        if audible != self._was_audible:
            self._speaker.flush()  # the room switched to (or away from) this share: no stale sound
            self._was_audible = audible
            if not audible:
                self._release_picture()
        if not audible:
            return
        due = self._due(frame)
        try:
            layout_ok = len(frame.layout.channels) == CHANNELS
            if frame.format.name == "s16" and frame.sample_rate == SAMPLE_RATE and layout_ok:
                self._speaker.feed(frame.to_ndarray(), due)
                return
            for resampled in self._resampler.resample(frame):
                self._speaker.feed(resampled.to_ndarray(), due)
        except (ValueError, av.FFmpegError) as exc:
            self._log.warning("bad-sound", "dropping a share's sound frame that cannot be played: %s", exc)

    def _due(self, frame: av.AudioFrame) -> float | None:
        """When the frame should be heard (the room's monotonic clock), if sound and picture are timed."""
        report = self._report() if self._report is not None else None
        picture = self._picture() if self._picture is not None else None
        if report is None or picture is None or frame.pts is None or self._speaker is None:
            return None
        captured_at = report.sender_time(frame.pts)
        # Heard at the earliest: now, through the output, with a block of reserve against jitter.
        self._clock.heard(captured_at, time.monotonic() + self._speaker.output_latency + BLOCK_S)
        picture.wait_for(self._clock)
        return picture.due(captured_at)

    def _release_picture(self) -> None:
        """This share is no longer heard: its picture shows at once again."""
        self._clock.clear()
        picture = self._picture() if self._picture is not None else None
        if picture is not None:
            picture.hold = 0.0
