"""The room's sound output: one share's sound at a time, through a short jitter buffer, to an output device.

A thread of its own plays 20 ms blocks to the output (the ``soundcard`` library: PulseAudio or PipeWire
on Linux, WASAPI on Windows, Core Audio on macOS), taking them from a buffer that the audible share's
sound fills as it is decoded. The buffer holds at most :data:`MAX_BUFFERED` blocks: when the network
delivers a burst, the oldest sound is dropped rather than the room falling behind the picture; when it
delivers nothing, the output plays silence. Playback starts once :data:`START_BLOCKS` are buffered, which
absorbs the usual jitter of a LAN or a relay without adding more delay than that.

Blocks fed with the time they are due (lip sync, :mod:`~coalesce_receiver.services.lip_sync`) are played
to be heard then: the speaker plays silence while the sound is ahead of its picture, and drops sound
while it lags and more is queued. :attr:`RoomSpeaker.sync` says how far behind its picture the sound was
heard lately.

The device is opened on first use, not at start: a room box without sound hardware runs as before, and
says once that it cannot play sound.
"""

from __future__ import annotations

import collections
import importlib
import logging
import statistics
import threading
import time
from typing import Any

import numpy as np

from coalesce_common.logutil import RateLimitedLog
from coalesce_receiver.services.lip_sync import Cue, cue

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
CHANNELS = 2
BLOCK = 960  # 20 ms
START_BLOCKS = 2
"""Blocks buffered before playback starts (40 ms): the jitter an audio path needs, no more."""
MAX_BUFFERED = 25
"""Blocks kept at most (500 ms): as long as sound may wait for a slower picture; more means the room fell
behind, and the oldest go."""
DEVICE_BUFFER = 2 * BLOCK
"""Samples the sound server holds ahead of the speaker (40 ms): with one block only, any pause of this
thread longer than 20 ms was heard as a gap; with four (80 ms) the sound came 76 ms behind a small
camera picture, which the speaker cannot make up (it can only hold sound back), and 29 ms with two."""
SYNC_WINDOW = 50
"""Blocks (a second) over which :attr:`RoomSpeaker.sync` is the median."""


class RoomSpeaker:
    """Plays blocks handed to :meth:`feed` on ``device`` (``None``: the default output)."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self.volume = 1.0
        self.muted = False
        self.played = 0
        """Blocks of sound (not silence) played so far."""
        self.underruns = 0
        """Times the sound ran out while playing (the network or the sender paused), for the stats."""
        self.waited = 0
        """Blocks of silence played because the sound was ahead of its picture (lip sync)."""
        self.skipped = 0
        """Blocks of sound dropped because they lagged their picture (lip sync)."""
        self.output_latency = DEVICE_BUFFER / SAMPLE_RATE
        """Seconds from writing a block to hearing it, as the sound server last said."""
        self._lags: collections.deque[float] = collections.deque(maxlen=SYNC_WINDOW)
        self._blocks: collections.deque[tuple[np.ndarray, float | None]] = collections.deque(
            maxlen=MAX_BUFFERED
        )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed = False
        self._log = RateLimitedLog(logger)

    def feed(self, samples: np.ndarray, due: float | None = None) -> None:
        """Queue decoded sound: int16 interleaved stereo at 48 kHz, any length (cut into 20 ms blocks), to be
        heard at ``due`` (``time.monotonic()``; ``None``: as soon as it can)."""
        if self._failed or self._stop.is_set():
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="room-speaker", daemon=True)
            self._thread.start()
        flat = samples.reshape(-1)
        with self._lock:
            for number, start in enumerate(range(0, flat.size - BLOCK * CHANNELS + 1, BLOCK * CHANNELS)):
                block_due = None if due is None else due + number * BLOCK / SAMPLE_RATE
                self._blocks.append((flat[start : start + BLOCK * CHANNELS], block_due))
        self._wake.set()

    @property
    def sync(self) -> float | None:
        """How far behind its picture the sound was heard over the last second, in seconds (negative:
        ahead); ``None`` while the sound is not timed against a picture."""
        lags = list(self._lags)
        return statistics.median(lags) if lags else None

    def stats(self) -> dict[str, object]:
        """For the room's stats file: blocks played, underruns, blocks of silence waited and of sound
        skipped for lip sync, and how far behind its picture the sound is heard (ms; ``None``: untimed)."""
        sync = self.sync
        return {
            "played": self.played,
            "underruns": self.underruns,
            "waited": self.waited,
            "skipped": self.skipped,
            "behind_picture_ms": None if sync is None else round(sync * 1000),
            "muted": self.muted,
            "volume": self.volume,
        }

    def flush(self) -> None:
        """Forget what is buffered (the audible share changed, or went silent)."""
        with self._lock:
            self._blocks.clear()
        self._lags.clear()

    def close(self) -> None:
        """Stop playing; returns at once (the thread ends after its current block)."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        """Wait for the thread to have closed its output (blocking: call it off the event loop). The sound
        library aborts the process if it is still playing when the interpreter exits."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            soundcard: Any = importlib.import_module("soundcard")
            speaker = soundcard.get_speaker(self.device) if self.device else soundcard.default_speaker()
            player = speaker.player(samplerate=SAMPLE_RATE, channels=CHANNELS, blocksize=DEVICE_BUFFER)
            player.__enter__()
        except Exception as exc:  # no sound server, no such device: the room goes on, silent
            self._failed = True
            what = f"the sound output {self.device!r}" if self.device else "a sound output"
            logger.warning("cannot play shared sound: no %s here (%s)", what, exc)
            return
        logger.info("playing shared sound on %s", speaker.name)
        silence = np.zeros((BLOCK, CHANNELS), dtype=np.float32)
        started = False
        try:
            while not self._stop.is_set():
                with self._lock:
                    ready = len(self._blocks) >= (1 if started else START_BLOCKS)
                    head = self._blocks[0] if ready else None
                    queued = len(self._blocks)
                if head is None:
                    if started:
                        self.underruns += 1
                    started = False  # an underrun: buffer again before playing on
                    self._wake.clear()
                    player.play(silence)  # a block of silence keeps the output's clock (and buffer) going
                    continue
                started = True
                block, due = head
                self.output_latency = _output_latency(player)
                heard_at = time.monotonic() + self.output_latency
                action = cue(due, heard_at, queued)
                if action is Cue.WAIT:
                    self.waited += 1
                    player.play(silence)
                    continue
                with self._lock:
                    if not self._blocks or self._blocks[0] is not head:
                        continue  # flushed meanwhile
                    self._blocks.popleft()
                if action is Cue.SKIP:
                    self.skipped += 1
                    continue
                if due is not None:
                    self._lags.append(heard_at - due)
                gain = 0.0 if self.muted else self.volume
                player.play(block.reshape(BLOCK, CHANNELS).astype(np.float32) * (gain / 32768.0))
                self.played += 1
        except Exception as exc:  # the device went away mid-meeting
            self._log.warning("speaker", "shared sound stopped playing: %s", exc)
        finally:
            try:
                player.__exit__(None, None, None)
            except Exception as exc:
                logger.debug("closing the sound output: %s", exc)


def _output_latency(player: Any) -> float:
    """Seconds until sound written now is heard: what the sound server reports (PulseAudio and PipeWire),
    else the device buffer asked for (other systems, or before the server's first timing report)."""
    try:
        latency = float(player.latency)
    except (AttributeError, RuntimeError, TypeError, ValueError):
        latency = 0.0
    return latency if latency > 0 else DEVICE_BUFFER / SAMPLE_RATE
