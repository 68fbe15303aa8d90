"""The outgoing sound: what this computer plays (not its microphone), as an aiortc audio track.

:class:`SystemSound` captures the *loopback* of an output device: on Linux the monitor source of the
default sink of PulseAudio or PipeWire (pipewire-pulse), on Windows the WASAPI loopback of the default
output, both through the ``soundcard`` library (PyAV's wheels have no PulseAudio input). It reads 20 ms
blocks in a thread of its own and keeps only the newest :data:`MAX_QUEUED` of them, as the video path
keeps only the newest frame: a consumer that falls behind loses the oldest sound, never gains delay.

:class:`SoundTrack` sends a block every 20 ms by the wall clock, silence when the capture has none (an
idle sink, a paused share), so the Opus stream's timestamps follow real time and the room's playout
never drifts from the picture's.

macOS has no loopback device: there (macOS 13 and later) the sound comes from a ScreenCaptureKit stream
(:mod:`coalesce_common.media.mac_sound`), whose 20 ms blocks go into the same newest-blocks queue; its
capture thread only waits to stop the stream, which delivers on a queue of its own.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import importlib
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from coalesce_common.errors import SoundUnavailable

if TYPE_CHECKING:
    from coalesce_common.media.mac_sound import ScreenCaptureSound

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
CHANNELS = 2
BLOCK = 960
"""Samples per block and per frame: 20 ms, one Opus frame."""
BLOCK_S = BLOCK / SAMPLE_RATE
MAX_QUEUED = 5
"""Captured blocks kept for the track (100 ms); an older one is dropped when a new one comes."""
LIVE_BLOCKS = 2
"""Captured blocks the track may send behind the capture (40 ms): when more wait (the sound card's clock
ran ahead of this computer's), the oldest go, so the sound leaves no later than the picture grabbed with
it; the room times both by when they were sent."""
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
RESYNC_S = 0.2
"""A track this far behind the clock was not being read (detached), rather than late: it jumps ahead."""


def _soundcard() -> Any:
    """The ``soundcard`` module, imported on first use: on Linux importing it connects to the sound server
    (and fails without one), which must not happen for a share without sound."""
    try:
        return importlib.import_module("soundcard")
    except (AssertionError, RuntimeError, OSError, ImportError) as exc:
        logger.info("no sound server: %s", exc)
        raise SoundUnavailable(
            "No sound system answered on this computer (PulseAudio or PipeWire on Linux), so its sound "
            "cannot be shared. The screen is shared without it."
        ) from exc


class SystemSound:
    """Captures what ``device`` plays (an output's name or part of it; ``None``: the default output; on
    macOS always everything the Mac plays but Coalesce's own sound).

    :meth:`start` opens the loopback (raising :class:`SoundUnavailable` with what to do) and starts the
    capture thread; :meth:`take` returns the oldest kept block, with when it was played, or ``None``;
    :meth:`close` asks the thread to stop and returns at once (the thread ends after its current 20 ms
    read).
    """

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self.name = ""
        """The output being captured, as the sound system names it."""
        self._blocks: collections.deque[tuple[np.ndarray, float]] = collections.deque(maxlen=MAX_QUEUED)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.captured = 0
        """Blocks captured so far (tests and stats)."""
        self.dropped = 0
        """Blocks dropped because the track had fallen behind the capture."""

    def start(self) -> None:
        """Open the loopback and start capturing; blocking (call it in a thread)."""
        if sys.platform == "darwin":
            self._start_screen_capture_kit()
            return
        soundcard = _soundcard()
        try:
            speaker = soundcard.get_speaker(self.device) if self.device else soundcard.default_speaker()
            loopback = soundcard.get_microphone(speaker.name, include_loopback=True)
            recorder = loopback.recorder(samplerate=SAMPLE_RATE, channels=CHANNELS, blocksize=BLOCK)
            recorder.__enter__()
        except (IndexError, RuntimeError, AssertionError, OSError) as exc:
            what = f"the sound output {self.device!r}" if self.device else "this computer's sound output"
            raise SoundUnavailable(
                f"Cannot listen to {what}, so its sound cannot be shared: check that it exists in the "
                "sound settings. The screen is shared without it."
            ) from exc
        self.name = str(speaker.name)
        self._thread = threading.Thread(target=self._run, args=(recorder,), name="sound-capture", daemon=True)
        self._thread.start()
        logger.info("sharing the sound of %s", self.name)

    def _start_screen_capture_kit(self) -> None:
        from coalesce_common.media import mac_sound  # imports this module: not at the top

        if self.device:
            logger.info("ScreenCaptureKit captures all of this Mac's sound, not only %r", self.device)
        capture = mac_sound.open_capture(self._keep, on_stopped=self._screen_capture_kit_stopped)
        self.name = capture.name
        self._thread = threading.Thread(
            target=self._run_screen_capture_kit, args=(capture,), name="sound-capture", daemon=True
        )
        self._thread.start()
        logger.info("sharing the sound of %s", self.name)

    def _screen_capture_kit_stopped(self, reason: str) -> None:
        logger.warning("sound capture of %s stopped: %s", self.name, reason)
        self._stop.set()

    def _run_screen_capture_kit(self, capture: ScreenCaptureSound) -> None:
        self._stop.wait()
        capture.stop()

    def _keep(self, block: np.ndarray, played_at: float) -> None:
        self._blocks.append((block, played_at))
        self.captured += 1

    def take(self) -> tuple[np.ndarray, float] | None:
        """The oldest captured block not yet taken, of the newest :data:`LIVE_BLOCKS`: int16 of shape
        (BLOCK, CHANNELS), and when its first sample was played (``time.monotonic()``: the moment the
        block was read, less its length); ``None`` if none."""
        try:
            while len(self._blocks) > LIVE_BLOCKS:
                self._blocks.popleft()
                self.dropped += 1
            return self._blocks.popleft()
        except IndexError:
            return None

    def close(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        """Wait for the capture thread to have closed its stream (blocking: call it off the event loop).
        The sound library aborts the process if a stream is still open when the interpreter exits."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, recorder: Any) -> None:
        try:
            while not self._stop.is_set():
                block = recorder.record(numframes=BLOCK)  # float32, (BLOCK, CHANNELS), -1..1
                played_at = time.monotonic() - BLOCK_S
                self._keep(np.clip(block * 32767.0, -32768, 32767).astype(np.int16), played_at)
        except Exception as exc:  # the device went away: the share goes on, silent
            logger.warning("sound capture of %s stopped: %s", self.name, exc)
        finally:
            try:
                recorder.__exit__(None, None, None)
            except Exception as exc:  # closing a stream whose server went away
                logger.debug("closing the sound capture: %s", exc)


class SoundTrack(MediaStreamTrack):
    """An audio track sending 20 ms frames at the wall clock's pace: captured sound, else silence.

    The capture can be swapped (:meth:`switch_capture`; ``None``: silence) without the room seeing a new
    track. The track never ends for that: aiortc's RTP sender stops for good when ``recv`` raises.

    :attr:`captured_at` says when the sound of the frame ``recv`` returned last was played here, which
    the stream's sender reports carry to the room (:mod:`coalesce_common.media.sending`).
    """

    kind = "audio"

    def __init__(self, capture: SystemSound | None) -> None:
        super().__init__()
        self._capture = capture
        self._start: float | None = None
        self._sent = 0
        self._silence = np.zeros((1, BLOCK * CHANNELS), dtype=np.int16)
        self.silent = 0
        """Frames sent as silence because the capture had nothing yet (or none is attached)."""
        self.volume = 1.0
        """The gain put on the captured sound before it is encoded, 0 to 1 (the sender's volume)."""
        self.captured_at: float | None = None

    @property
    def capture(self) -> SystemSound | None:
        return self._capture

    def switch_capture(self, capture: SystemSound | None) -> SystemSound | None:
        """Send ``capture``'s sound from now on; returns the previous capture (for the caller to close)."""
        previous, self._capture = self._capture, capture
        return previous

    async def recv(self) -> av.AudioFrame:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        number = self._sent
        if now - (self._start + number * BLOCK_S) > RESYNC_S:
            # Not asked for frames for a while (the section was off, or paused): timestamps go on from the
            # clock, so the room's playout sees the gap as time that passed, not as sound to catch up on.
            number = int((now - self._start) / BLOCK_S)
        if (wait := self._start + number * BLOCK_S - now) > 0:
            await asyncio.sleep(wait)  # pacing: one frame per 20 ms of wall clock
        taken = self._capture.take() if self._capture is not None else None
        block, self.captured_at = taken if taken is not None else (None, time.monotonic())
        if block is not None and self.volume < 1.0:
            block = (block.astype(np.float32) * max(0.0, self.volume)).astype(np.int16)
        samples = block.reshape(1, -1) if block is not None else self._silence
        if block is None:
            self.silent += 1
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = number * BLOCK
        frame.time_base = TIME_BASE
        self._sent = number + 1
        return frame

    def stop(self) -> None:
        if self._capture is not None:
            self._capture.close()
        super().stop()


def open_system_sound(device: str | None = None) -> SystemSound:
    """A started :class:`SystemSound` (blocking: call it in a thread), or :class:`SoundUnavailable`."""
    capture = SystemSound(device)
    capture.start()
    return capture
