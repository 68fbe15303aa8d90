"""What a Mac plays, captured with ScreenCaptureKit (macOS 13 and later), in 20 ms stereo int16 blocks.

macOS has no loopback device, but since macOS 13 ScreenCaptureKit streams the system's sound alongside a
display. :func:`open_capture` starts such a stream for the main display, leaving out Coalesce's own
application and its own sound (the room's sound played here must not go back to the room), with the
smallest picture ScreenCaptureKit accepts (2x2, one frame a second): it needs a video configuration even
when only the sound is wanted. Each audio sample buffer it delivers (float32 PCM, interleaved or one plane
per channel) becomes int16 stereo, is cut into :data:`~coalesce_common.media.sound.BLOCK`-frame blocks by a
:class:`Reblocker` and handed, with when its first sample was played (``time.monotonic()``), to a sink:
:class:`~coalesce_common.media.sound.SystemSound` keeps the newest of them as on Linux and Windows.

The pure parts (:func:`check_macos_release`, :func:`stream_format`, :func:`pcm_to_stereo_int16`,
:func:`played_at`, :class:`Reblocker`) need no Mac. The frameworks (``pyobjc-framework-ScreenCaptureKit``,
which brings ``CoreMedia``) are imported on first use, through :func:`_import_framework`, so this module
imports anywhere. Failures the user can act on (an old macOS, the Screen Recording permission refused)
are :class:`SoundUnavailable` saying what to do.
"""

from __future__ import annotations

import importlib
import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from coalesce_common.errors import SoundUnavailable
from coalesce_common.media.sound import BLOCK, CHANNELS, SAMPLE_RATE

logger = logging.getLogger(__name__)

MIN_MACOS = 13
"""ScreenCaptureKit captures sound from macOS 13 on (12.3 has it for pictures only)."""

ANSWER_TIMEOUT_S = 15.0
"""How long to wait for ScreenCaptureKit's completion handlers (listing the content, starting the stream)."""

MAX_AGE_S = 1.0
"""A sample buffer presented longer ago than this (or in the future) has a timestamp on another clock:
it is then taken as played just before it came."""

USER_DECLINED = -3801
"""``SCStreamErrorUserDeclined``: the Screen Recording permission was refused."""

FORMAT_FLAG_IS_FLOAT = 0x1
FORMAT_FLAG_IS_NON_INTERLEAVED = 0x20
"""``kAudioFormatFlagIsFloat`` and ``kAudioFormatFlagIsNonInterleaved`` of an AudioStreamBasicDescription."""

PERMISSION_MESSAGE = (
    "Coalesce is not allowed to record this Mac's sound: allow Coalesce in System Settings > "
    "Privacy & Security > Screen & System Audio Recording (Screen Recording on macOS 13 and 14), "
    "then quit and reopen Coalesce and share again. The screen is shared without sound."
)

Sink = Callable[[np.ndarray, float], None]
"""Takes an int16 block of shape (BLOCK, CHANNELS) and when its first sample was played."""


# -- the pure parts ------------------------------------------------------------------------------------


def check_macos_release(release: str) -> None:
    """Raise :class:`SoundUnavailable` unless ``release`` (``platform.mac_ver()[0]``, "13.4.1") is at
    least :data:`MIN_MACOS`."""
    try:
        major = int(release.split(".")[0])
    except ValueError:
        major = 0
    if major < MIN_MACOS:
        which = f"macOS {release}" if release else "an unknown version of macOS"
        raise SoundUnavailable(
            f"Sharing this Mac's sound needs macOS {MIN_MACOS} or later, and this Mac runs {which}: update "
            "macOS to share its sound. Before that, the only way is a virtual loopback device such as "
            "BlackHole, which this version of Coalesce cannot listen to yet. The screen is shared without "
            "sound."
        )


@dataclass(frozen=True)
class PcmFormat:
    """The parts of an AudioStreamBasicDescription the conversion needs."""

    sample_rate: float
    channels: int
    bits: int
    is_float: bool
    planar: bool
    """One plane per channel (``kAudioFormatFlagIsNonInterleaved``) rather than frames of all channels."""


_ASBD_FIELDS = ("mSampleRate", "mFormatID", "mFormatFlags", "mBytesPerPacket", "mFramesPerPacket")
_ASBD_CHANNELS, _ASBD_BITS = 6, 7  # positions of mChannelsPerFrame and mBitsPerChannel


def stream_format(description: Any) -> PcmFormat:
    """The :class:`PcmFormat` of an AudioStreamBasicDescription as PyObjC returns it: a struct with named
    fields, the same as a tuple in field order, or either wrapped in a one-element sequence (the pointer
    CoreMedia returns). Raises ``ValueError`` for anything else."""
    if isinstance(description, (tuple, list)) and len(description) == 1:
        description = description[0]
    if description is None:
        raise ValueError("the sample buffer has no audio format")
    if hasattr(description, "mFormatFlags"):
        rate, flags = description.mSampleRate, description.mFormatFlags
        channels, bits = description.mChannelsPerFrame, description.mBitsPerChannel
    else:
        fields = tuple(description)
        if len(fields) <= _ASBD_BITS:
            raise ValueError(f"not an audio stream description: {description!r}")
        rate, flags = fields[_ASBD_FIELDS.index("mSampleRate")], fields[_ASBD_FIELDS.index("mFormatFlags")]
        channels, bits = fields[_ASBD_CHANNELS], fields[_ASBD_BITS]
    flags = int(flags)
    return PcmFormat(
        sample_rate=float(rate),
        channels=int(channels),
        bits=int(bits),
        is_float=bool(flags & FORMAT_FLAG_IS_FLOAT),
        planar=bool(flags & FORMAT_FLAG_IS_NON_INTERLEAVED),
    )


def pcm_to_stereo_int16(data: bytes, pcm: PcmFormat) -> np.ndarray:
    """Linear PCM bytes (float32 -1..1 or int16; interleaved, or one plane per channel one after the other)
    as int16 of shape (frames, :data:`CHANNELS`): mono is doubled, channels past the second are left out.
    Raises ``ValueError`` for another format or a length that is not whole frames."""
    if pcm.sample_rate != SAMPLE_RATE:
        raise ValueError(f"sound at {pcm.sample_rate:g} Hz, not {SAMPLE_RATE}")
    if pcm.is_float and pcm.bits == 32:
        dtype: type[np.generic] = np.float32
    elif not pcm.is_float and pcm.bits == 16:
        dtype = np.int16
    else:
        raise ValueError(f"unsupported PCM: {pcm.bits}-bit {'float' if pcm.is_float else 'integer'}")
    if pcm.channels < 1:
        raise ValueError("PCM with no channel")
    samples = np.frombuffer(data, dtype=dtype)
    if samples.size % pcm.channels:
        raise ValueError(f"{samples.size} samples are not whole frames of {pcm.channels} channels")
    frames = samples.size // pcm.channels
    if pcm.planar:
        per_frame = samples.reshape(pcm.channels, frames).T
    else:
        per_frame = samples.reshape(frames, pcm.channels)
    if pcm.channels == 1:
        per_frame = np.repeat(per_frame, CHANNELS, axis=1)
    per_frame = per_frame[:, :CHANNELS]
    if dtype is np.int16:
        return np.ascontiguousarray(per_frame)
    # the scaling of the soundcard path in sound.py, so both platforms sound the same
    return np.clip(per_frame * 32767.0, -32768, 32767).astype(np.int16)


def played_at(now: float, host_now: float, presented: float, frames: int) -> float:
    """When (``time.monotonic()``) the first sample of a buffer was played, given ``now``
    (``time.monotonic()`` at its arrival), the host clock's time then, and the buffer's presentation time
    on that clock. A presentation time that is not a plausible past moment is taken as the buffer having
    been played just before it came, as the soundcard path does."""
    age = host_now - presented
    if not 0.0 <= age <= MAX_AGE_S:
        age = frames / SAMPLE_RATE
    return now - age


class Reblocker:
    """Cuts stereo int16 sound arriving in buffers of any length into blocks of exactly :data:`BLOCK`
    frames, each with when its first sample was played; the frames left over wait for the next buffer.

    Each buffer's timestamp places the frames still waiting from before it (they were played just before
    it), so a block's time follows the newest buffer's clock rather than an accumulated sum.
    """

    def __init__(self) -> None:
        self._pending = np.zeros((0, CHANNELS), dtype=np.int16)

    @property
    def pending(self) -> int:
        """Frames waiting for a block to be complete."""
        return len(self._pending)

    def push(self, samples: np.ndarray, first_played_at: float) -> list[tuple[np.ndarray, float]]:
        """Add ``samples`` (int16, (frames, CHANNELS)) whose first frame was played at ``first_played_at``;
        returns the blocks now complete, oldest first."""
        start = first_played_at - len(self._pending) / SAMPLE_RATE
        joined = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        whole = len(joined) // BLOCK * BLOCK
        blocks = [
            (np.ascontiguousarray(joined[offset : offset + BLOCK]), start + offset / SAMPLE_RATE)
            for offset in range(0, whole, BLOCK)
        ]
        self._pending = np.array(joined[whole:], dtype=np.int16)
        return blocks


# -- the ScreenCaptureKit stream -------------------------------------------------------------------------


def _import_framework(name: str) -> Any:
    """A PyObjC framework module (``ScreenCaptureKit``, ``CoreMedia``), imported on first use; the tests
    replace this to stand in for macOS."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise SoundUnavailable(
            "This installation of Coalesce lacks the macOS part that records sound "
            f"(pyobjc-framework-ScreenCaptureKit: {exc}); reinstall Coalesce to share this Mac's sound. "
            "The screen is shared without sound."
        ) from exc


def _refused(error: Any, doing: str) -> SoundUnavailable:
    """The :class:`SoundUnavailable` for the ``NSError`` (or ``None``) ScreenCaptureKit answered with."""
    if error is not None and int(error.code()) == USER_DECLINED:
        return SoundUnavailable(PERMISSION_MESSAGE)
    why = f" ({error.localizedDescription()})" if error is not None else ""
    return SoundUnavailable(
        f"macOS would not {doing}{why}, so this Mac's sound cannot be shared. The screen is shared without "
        "sound."
    )


def _await_answer(call: Callable[[Callable[..., None]], None], doing: str) -> tuple[Any, ...]:
    """Call ``call`` with a completion handler and wait (blocking) for what it is called with."""
    answered = threading.Event()
    answer: list[tuple[Any, ...]] = []

    def handler(*args: Any) -> None:
        answer.append(args)
        answered.set()

    call(handler)
    if not answered.wait(ANSWER_TIMEOUT_S):
        raise SoundUnavailable(
            f"macOS did not answer within {ANSWER_TIMEOUT_S:g} s when asked to {doing}, so this Mac's sound "
            "cannot be shared. The screen is shared without sound."
        )
    return answer[0]


class _AudioReceiver:
    """Turns ScreenCaptureKit's audio sample buffers into blocks for the sink (on ScreenCaptureKit's
    queue); never raises into it."""

    def __init__(self, core_media: Any, sink: Sink, on_stopped: Callable[[str], None]) -> None:
        self._cm = core_media
        self._sink = sink
        self._on_stopped = on_stopped
        self._reblocker = Reblocker()
        self.failures = 0
        """Sample buffers that could not be read (logged: the first, then every 500th)."""

    def sample_buffer(self, sample_buffer: Any) -> None:
        try:
            self._convert(sample_buffer)
        except Exception as exc:  # a bad buffer costs 10-20 ms of sound, never the capture
            self.failures += 1
            if self.failures % 500 == 1:
                logger.warning("unreadable system sound buffer (%d so far): %s", self.failures, exc)

    def _convert(self, sample_buffer: Any) -> None:
        cm = self._cm
        if not cm.CMSampleBufferIsValid(sample_buffer):
            return
        now = time.monotonic()
        host_now = cm.CMTimeGetSeconds(cm.CMClockGetTime(cm.CMClockGetHostTimeClock()))
        presented = cm.CMTimeGetSeconds(cm.CMSampleBufferGetPresentationTimeStamp(sample_buffer))
        description = cm.CMAudioFormatDescriptionGetStreamBasicDescription(
            cm.CMSampleBufferGetFormatDescription(sample_buffer)
        )
        pcm = stream_format(description)
        block_buffer = cm.CMSampleBufferGetDataBuffer(sample_buffer)
        if block_buffer is None:
            return
        length = int(cm.CMBlockBufferGetDataLength(block_buffer))
        if length == 0:
            return
        # A non-interleaved buffer list points into one block buffer, channel after channel.
        status, data = cm.CMBlockBufferCopyDataBytes(block_buffer, 0, length, None)
        if status != 0 or data is None:
            raise ValueError(f"CMBlockBufferCopyDataBytes failed with status {status}")
        samples = pcm_to_stereo_int16(bytes(data), pcm)
        first = played_at(now, float(host_now), float(presented), len(samples))
        for block, block_played_at in self._reblocker.push(samples, first):
            self._sink(block, block_played_at)

    def stopped(self, error: Any) -> None:
        description = error.localizedDescription() if error is not None else "no reason given"
        self._on_stopped(str(description))


_output_classes: dict[int, Any] = {}


def _output_class(sck: Any) -> Any:
    """The NSObject subclass that is both the stream's output and its delegate; created once per
    ScreenCaptureKit module (an Objective-C class name can be registered only once)."""
    if (cls := _output_classes.get(id(sck))) is not None:
        return cls
    audio = sck.SCStreamOutputTypeAudio

    class CoalesceSystemSoundOutput(sck.NSObject):  # type: ignore[misc]
        # PyObjC takes the selectors' types from the SCStreamOutput and SCStreamDelegate protocols.
        def stream_didOutputSampleBuffer_ofType_(self, stream: Any, sample_buffer: Any, kind: int) -> None:
            if kind == audio and (receiver := getattr(self, "receiver", None)) is not None:
                receiver.sample_buffer(sample_buffer)

        def stream_didStopWithError_(self, stream: Any, error: Any) -> None:
            if (receiver := getattr(self, "receiver", None)) is not None:
                receiver.stopped(error)

    _output_classes[id(sck)] = CoalesceSystemSoundOutput
    return CoalesceSystemSoundOutput


def _excluded_applications(content: Any, pid: int) -> list[Any]:
    """Coalesce's own application among the shareable content's (none when it is not listed)."""
    return [app for app in content.applications() if int(app.processID()) == pid]


def _configuration(sck: Any, core_media: Any) -> Any:
    config = sck.SCStreamConfiguration.alloc().init()
    config.setCapturesAudio_(True)
    config.setExcludesCurrentProcessAudio_(True)
    config.setSampleRate_(SAMPLE_RATE)
    config.setChannelCount_(CHANNELS)
    # No picture is wanted, but a stream has one: the smallest, at one frame a second.
    config.setWidth_(2)
    config.setHeight_(2)
    config.setMinimumFrameInterval_(core_media.CMTimeMake(1, 1))
    return config


class ScreenCaptureSound:
    """A running ScreenCaptureKit stream of the system's sound; made by :func:`open_capture`."""

    def __init__(self, stream: Any, output: Any, name: str) -> None:
        self._stream = stream
        self._output = output  # alive as long as the stream, whatever ScreenCaptureKit itself holds
        self.name = name

    def stop(self, timeout: float = ANSWER_TIMEOUT_S) -> None:
        """Stop the stream and wait (blocking) until ScreenCaptureKit says it has, or ``timeout``."""
        stopped = threading.Event()

        def handler(error: Any) -> None:
            if error is not None:  # already stopped (it ended with an error): nothing left to close
                logger.debug("stopping the system sound capture: %s", error.localizedDescription())
            stopped.set()

        self._stream.stopCaptureWithCompletionHandler_(handler)
        if not stopped.wait(timeout):
            logger.warning("ScreenCaptureKit did not confirm the end of the sound capture in %g s", timeout)


def open_capture(sink: Sink, *, on_stopped: Callable[[str], None]) -> ScreenCaptureSound:
    """Start capturing what this Mac plays (blocking: call it in a thread): ``sink`` gets each 20 ms
    block, on ScreenCaptureKit's queue; ``on_stopped`` gets the reason if macOS ends the stream.

    Raises :class:`SoundUnavailable` before macOS 13, without the Screen Recording permission, or when
    macOS refuses the stream."""
    check_macos_release(platform.mac_ver()[0])
    sck = _import_framework("ScreenCaptureKit")
    core_media = _import_framework("CoreMedia")

    content, error = _await_answer(
        sck.SCShareableContent.getShareableContentWithCompletionHandler_, "list what can be captured"
    )
    if error is not None:
        raise _refused(error, "list what can be captured")
    if content is None:
        raise SoundUnavailable(PERMISSION_MESSAGE)
    displays = list(content.displays())
    if not displays:
        raise SoundUnavailable(
            "macOS lists no display to capture this Mac's sound with, so it cannot be shared. The screen "
            "is shared without sound."
        )
    excluded = _excluded_applications(content, os.getpid())
    content_filter = sck.SCContentFilter.alloc().initWithDisplay_excludingApplications_exceptingWindows_(
        displays[0], excluded, []
    )

    output = _output_class(sck).alloc().init()
    output.receiver = _AudioReceiver(core_media, sink, on_stopped)
    stream = sck.SCStream.alloc().initWithFilter_configuration_delegate_(
        content_filter, _configuration(sck, core_media), output
    )
    # No queue of our own: ScreenCaptureKit then delivers on one of its own, off the event loop.
    added, error = stream.addStreamOutput_type_sampleHandlerQueue_error_(
        output, sck.SCStreamOutputTypeAudio, None, None
    )
    if not added:
        raise _refused(error, "add a sound output to the capture")
    (error,) = _await_answer(stream.startCaptureWithCompletionHandler_, "start capturing the sound")
    if error is not None:
        raise _refused(error, "start capturing the sound")
    logger.info("capturing this Mac's sound with ScreenCaptureKit (excluding %d own app)", len(excluded))
    return ScreenCaptureSound(stream, output, "this Mac's sound (ScreenCaptureKit)")
