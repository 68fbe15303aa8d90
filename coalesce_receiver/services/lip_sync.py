"""Lip sync: when the room should play a share's sound so that it is heard with the picture it goes with.

Both of a share's streams carry RTP timestamps, and its RTCP sender reports say when, on the sender's
clock, each timestamp was captured (:class:`~coalesce_common.media.receiving.SenderReport`; Coalesce's
senders report capture times, :mod:`coalesce_common.media.sending`, as browsers do). The room keeps, for
the share's picture, how far its own clock runs ahead of the sender's at the moment a frame reaches the
screen (:class:`PictureClock`: a frame decoded now is on the glass :data:`DISPLAY_DELAY` later), and for
its sound, how far ahead it is when a block could be heard at the earliest (:class:`SoundClock`: its
arrival, plus the output's latency and a block of jitter reserve).

Whichever of the two is later sets the pace. The picture on a LAN is the quicker (measured: 46 ms from
the laptop's screen to the room's, against 111 ms for the sound, which is captured, sent and played in
20 ms blocks), so the audible share's picture is *held* for the difference (:attr:`PictureClock.hold`,
at most :data:`MAX_HOLD`), and a block of sound captured at ``t`` is due at the speaker at
``PictureClock.due(t)``: when the picture captured with it shows. The speaker plays each block then
(:class:`~coalesce_receiver.services.speaker.RoomSpeaker` asks :func:`cue`), waiting when sound runs
ahead and catching up when it lags. Shares that are not heard keep showing their pictures at once.

Pure: times in, times out; the sinks feed it and the speaker asks it.
"""

from __future__ import annotations

import collections
import enum
import statistics

DISPLAY_DELAY = 0.02
"""Seconds from a decoded frame to its picture on the glass: the conversion for the tile and the paint
at the next refresh (the benchmark's glass figure runs about 20 ms above its decoder figure)."""
WINDOW = 32
"""Frames (about half a second at 60 fps) over which the picture's offset is the median: one late frame
moves it little, a lasting change in delay within the window."""
SOUND_WINDOW = 50
"""Blocks of sound (a second) over which the sound's offset is the median."""
MAX_HOLD = 0.25
"""The longest the picture is held for its sound: beyond it (sound relayed from far away, a slow sound
server) the picture stays live and the sound plays as soon as it can, behind it."""


class PictureClock:
    """How far the room's clock runs ahead of a sender's when that sender's picture is on the glass,
    shown at once; :attr:`hold` is how much later it is shown (set while its sound is heard)."""

    def __init__(self) -> None:
        self._offsets: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self.hold = 0.0

    def saw(self, sent_at: float, decoded_at: float) -> None:
        """A frame the sender sent at ``sent_at`` (its clock) was decoded at ``decoded_at`` (the room's)."""
        self._offsets.append(decoded_at + DISPLAY_DELAY - sent_at)

    @property
    def offset(self) -> float | None:
        """The room's time minus the sender's when a frame shows if shown at once, ``None`` before the
        first report."""
        return statistics.median(self._offsets) if self._offsets else None

    def due(self, sent_at: float | None) -> float | None:
        """When (the room's clock) sound captured at ``sent_at`` (the sender's) should be heard: when the
        picture captured with it shows, held or not; ``None`` when either side's timing is not known yet,
        and the sound plays as it comes."""
        offset = self.offset
        return None if sent_at is None or offset is None else sent_at + offset + self.hold

    def wait_for(self, sound: SoundClock) -> None:
        """Hold the picture as long as ``sound`` needs to catch up with it (at most :data:`MAX_HOLD`)."""
        self.hold = hold_for(self.offset, sound.offset)


class SoundClock:
    """How far the room's clock runs ahead of a sender's when a block of its sound can be heard."""

    def __init__(self) -> None:
        self._offsets: collections.deque[float] = collections.deque(maxlen=SOUND_WINDOW)

    def heard(self, sent_at: float, earliest: float) -> None:
        """Sound captured at ``sent_at`` (the sender's clock) can be heard at ``earliest`` (the room's)."""
        self._offsets.append(earliest - sent_at)

    @property
    def offset(self) -> float | None:
        return statistics.median(self._offsets) if self._offsets else None

    def clear(self) -> None:
        self._offsets.clear()


def hold_for(picture: float | None, sound: float | None) -> float:
    """How long to hold a picture with offset ``picture`` for sound with offset ``sound`` (seconds)."""
    if picture is None or sound is None:
        return 0.0
    return min(MAX_HOLD, max(0.0, sound - picture))


BLOCK_S = 0.02
"""The speaker's blocks of sound: 20 ms."""
TOLERANCE = 0.03
"""Seconds a block may be heard after its picture before the speaker drops sound to catch up (the Open
Screen Protocol's lip-sync bound is 45 ms either way)."""
JITTER_RESERVE = 2
"""Blocks the speaker keeps queued when it drops late sound, so that the next packet's jitter is not an
underrun."""
UNTIMED_QUEUE = 8
"""Blocks of untimed sound (no sender report or picture yet) queued at most (160 ms): more, as while the
output opens, and the oldest go; the room never falls behind by more than that."""


class Cue(enum.Enum):
    """What the speaker does with its oldest block of sound."""

    PLAY = "play"
    WAIT = "wait"  # the sound is ahead of its picture: play a block of silence first
    SKIP = "skip"  # the sound lags its picture and more is queued: drop this block


def cue(due: float | None, heard_at: float, queued: int) -> Cue:
    """What to do with a block due at ``due`` that, played now, would be heard at ``heard_at``, with
    ``queued`` blocks waiting (this one included). Untimed sound (``due`` is ``None``) plays as it comes,
    at most :data:`UNTIMED_QUEUE` blocks late; sound that lags with nothing to spare plays too: the room
    never stops the sound to wait for sync."""
    if due is None:
        return Cue.SKIP if queued > UNTIMED_QUEUE else Cue.PLAY
    if due - heard_at > BLOCK_S:
        return Cue.WAIT
    if heard_at - due > TOLERANCE and queued > JITTER_RESERVE:
        return Cue.SKIP
    return Cue.PLAY
