"""The room's sound output: one share's sound at a time, through a short jitter buffer, to an output device.

A thread of its own plays 20 ms blocks to the output (the ``soundcard`` library: PulseAudio or PipeWire
on Linux, WASAPI on Windows, Core Audio on macOS), taking them from a buffer that the audible share's
sound fills as it is decoded. The buffer holds at most :data:`MAX_BUFFERED` blocks: when the network
delivers a burst, the oldest sound is dropped rather than the room falling behind the picture; when it
delivers nothing, the output plays silence. Playback starts once :data:`START_BLOCKS` are buffered, which
absorbs the usual jitter of a LAN or a relay without adding more delay than that.

The device is opened on first use, not at start: a room box without sound hardware runs as before, and
says once that it cannot play sound.
"""

from __future__ import annotations

import collections
import importlib
import logging
import threading
from typing import Any

import numpy as np

from coalesce_common.logutil import RateLimitedLog

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
CHANNELS = 2
BLOCK = 960  # 20 ms
START_BLOCKS = 2
"""Blocks buffered before playback starts (60 ms): the jitter an audio path needs, no more."""
MAX_BUFFERED = 8
"""Blocks kept at most (160 ms); more means the room fell behind, and the oldest go."""
DEVICE_BUFFER = 4 * BLOCK
"""Samples the sound server holds ahead of the speaker (40 ms): with one block only, any pause of this
thread longer than 20 ms was heard as a gap."""


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
        self._blocks: collections.deque[np.ndarray] = collections.deque(maxlen=MAX_BUFFERED)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed = False
        self._log = RateLimitedLog(logger)

    def feed(self, samples: np.ndarray) -> None:
        """Queue decoded sound: int16 interleaved stereo at 48 kHz, any length (cut into 20 ms blocks)."""
        if self._failed or self._stop.is_set():
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="room-speaker", daemon=True)
            self._thread.start()
        flat = samples.reshape(-1)
        with self._lock:
            for start in range(0, flat.size - BLOCK * CHANNELS + 1, BLOCK * CHANNELS):
                self._blocks.append(flat[start : start + BLOCK * CHANNELS])
        self._wake.set()

    def flush(self) -> None:
        """Forget what is buffered (the audible share changed, or went silent)."""
        with self._lock:
            self._blocks.clear()

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
                    block = self._blocks.popleft() if ready else None
                if block is None:
                    if started:
                        self.underruns += 1
                    started = False  # an underrun: buffer again before playing on
                    self._wake.clear()
                    player.play(silence)  # a block of silence keeps the output's clock (and buffer) going
                    continue
                started = True
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
