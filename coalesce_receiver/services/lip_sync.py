"""Lip sync: when the room should play a share's sound so that it is heard with the picture it goes with.

Both of a share's streams carry RTP timestamps, and its RTCP sender reports say when, on the sender's
clock, each timestamp was sent (:class:`~coalesce_common.media.receiving.SenderReport`). The room keeps,
for the share's picture, how far its own clock runs ahead of the sender's at the moment a frame reaches
the screen (:class:`PictureClock`: a frame decoded now is on the glass :data:`DISPLAY_DELAY` later). A
block of sound sent at ``t`` on the sender's clock is then due at the room's speaker at
``t + PictureClock.offset``: the picture's own delay, whatever the network, the decoder and the two
clocks add. The speaker plays each block then (:class:`~coalesce_receiver.services.speaker.RoomSpeaker`
asks :func:`cue`), waiting when sound runs ahead and catching up when it lags.

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


class PictureClock:
    """How far the room's clock runs ahead of a sender's when that sender's picture is on the glass."""

    def __init__(self) -> None:
        self._offsets: collections.deque[float] = collections.deque(maxlen=WINDOW)

    def saw(self, sent_at: float, decoded_at: float) -> None:
        """A frame the sender sent at ``sent_at`` (its clock) was decoded at ``decoded_at`` (the room's)."""
        self._offsets.append(decoded_at + DISPLAY_DELAY - sent_at)

    @property
    def offset(self) -> float | None:
        """The room's time minus the sender's when a frame shows, ``None`` before the first report."""
        return statistics.median(self._offsets) if self._offsets else None

    def due(self, sent_at: float | None) -> float | None:
        """When (the room's clock) sound sent at ``sent_at`` (the sender's) should be heard; ``None`` when
        either side's timing is not known yet, and the sound plays as it comes."""
        offset = self.offset
        return None if sent_at is None or offset is None else sent_at + offset


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
