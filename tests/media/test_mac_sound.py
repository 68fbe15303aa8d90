"""macOS system sound through ScreenCaptureKit: the conversion and re-blocking of its PCM, the macOS version
gate, and :class:`SystemSound` driven through a stand-in for ScreenCaptureKit and CoreMedia.

The stand-in is a fake only because macOS's frameworks cannot run here: it replaces what
``mac_sound._import_framework`` returns, records what the code asks of it, and answers as PyObjC does
(completion handlers with ``(content, error)`` or ``(error,)``, ``(ok, error)`` from methods with an
``NSError **``, ``(status, bytes)`` from ``CMBlockBufferCopyDataBytes``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from coalesce_common.errors import SoundUnavailable
from coalesce_common.media import mac_sound
from coalesce_common.media.mac_sound import (
    FORMAT_FLAG_IS_FLOAT,
    FORMAT_FLAG_IS_NON_INTERLEAVED,
    PcmFormat,
    Reblocker,
    check_macos_release,
    pcm_to_stereo_int16,
    played_at,
    stream_format,
)
from coalesce_common.media.sound import BLOCK, CHANNELS, SAMPLE_RATE, SystemSound

INTERLEAVED = PcmFormat(sample_rate=48_000, channels=2, bits=32, is_float=True, planar=False)
PLANAR = PcmFormat(sample_rate=48_000, channels=2, bits=32, is_float=True, planar=True)
FLOAT_FLAGS = FORMAT_FLAG_IS_FLOAT | 0x8  # float, packed: what ScreenCaptureKit sends, with or without planes


def asbd(channels: int = 2, *, planar: bool = True, rate: float = 48_000.0) -> tuple[Any, ...]:
    """An AudioStreamBasicDescription as a tuple in field order, as recent PyObjC returns it."""
    flags = FLOAT_FLAGS | (FORMAT_FLAG_IS_NON_INTERLEAVED if planar else 0)
    per_frame = 4 if planar else 4 * channels
    return (rate, 0x6C70636D, flags, per_frame, 1, per_frame, channels, 32, 0)


# -- the pure parts -------------------------------------------------------------------------------------


def test_interleaved_float_becomes_int16_stereo_with_the_soundcard_scaling() -> None:
    frames = np.array([[0.0, 1.0], [-1.0, 0.5], [2.0, -2.0]], dtype=np.float32)  # 2.0: clipped
    out = pcm_to_stereo_int16(frames.tobytes(), INTERLEAVED)
    assert out.dtype == np.int16
    assert out.tolist() == [[0, 32767], [-32767, 16383], [32767, -32768]]


def test_planar_float_is_one_plane_per_channel_one_after_the_other() -> None:
    left = np.array([0.25, 0.5, 0.75], dtype=np.float32)
    right = np.array([-0.25, -0.5, -0.75], dtype=np.float32)
    out = pcm_to_stereo_int16(left.tobytes() + right.tobytes(), PLANAR)
    assert out.tolist() == [[8191, -8191], [16383, -16383], [24575, -24575]]


def test_mono_is_doubled_and_channels_past_two_are_left_out() -> None:
    mono = PcmFormat(sample_rate=48_000, channels=1, bits=32, is_float=True, planar=False)
    out = pcm_to_stereo_int16(np.array([0.5, -0.5], dtype=np.float32).tobytes(), mono)
    assert out.tolist() == [[16383, 16383], [-16383, -16383]]
    surround = PcmFormat(sample_rate=48_000, channels=3, bits=16, is_float=False, planar=False)
    out = pcm_to_stereo_int16(np.array([1, 2, 3, 4, 5, 6], dtype=np.int16).tobytes(), surround)
    assert out.tolist() == [[1, 2], [4, 5]]


def test_pcm_that_cannot_be_converted_is_refused() -> None:
    with pytest.raises(ValueError, match="44100 Hz"):
        pcm_to_stereo_int16(bytes(8), PcmFormat(44_100, 2, 32, True, False))
    with pytest.raises(ValueError, match="whole frames"):
        pcm_to_stereo_int16(np.zeros(3, dtype=np.float32).tobytes(), INTERLEAVED)
    with pytest.raises(ValueError, match="24-bit"):
        pcm_to_stereo_int16(bytes(12), PcmFormat(48_000, 2, 24, False, False))


@pytest.mark.parametrize(
    "description",
    [
        asbd(planar=True),
        (asbd(planar=True),),  # the pointer CoreMedia returns, as a one-element sequence
        SimpleNamespace(
            mSampleRate=48_000.0, mFormatFlags=FLOAT_FLAGS | 0x20, mChannelsPerFrame=2, mBitsPerChannel=32
        ),
    ],
)
def test_the_stream_description_is_read_by_field_names_or_positions(description: Any) -> None:
    assert stream_format(description) == PLANAR


def test_an_interleaved_description_is_not_planar() -> None:
    assert stream_format(asbd(planar=False)) == INTERLEAVED
    with pytest.raises(ValueError):
        stream_format(None)


def test_the_reblocker_cuts_exact_blocks_and_keeps_the_rest() -> None:
    ramp = np.arange(2 * 2500, dtype=np.int16).reshape(2500, 2)
    reblocker = Reblocker()
    assert reblocker.push(ramp[:500], 10.0) == []
    assert reblocker.pending == 500
    blocks = reblocker.push(ramp[500:2500], 10.0 + 500 / SAMPLE_RATE)
    assert [block.shape for block, _ in blocks] == [(BLOCK, CHANNELS)] * 2
    assert np.array_equal(blocks[0][0], ramp[:BLOCK])  # the block boundary spans the two buffers
    assert np.array_equal(blocks[1][0], ramp[BLOCK : 2 * BLOCK])
    assert blocks[0][1] == pytest.approx(10.0)
    assert blocks[1][1] == pytest.approx(10.0 + BLOCK / SAMPLE_RATE)
    assert reblocker.pending == 2500 - 2 * BLOCK
    (last, at), *rest = reblocker.push(ramp[: 3 * BLOCK - 2500], 20.0)
    assert rest == []
    assert np.array_equal(last[: 2500 - 2 * BLOCK], ramp[2 * BLOCK :])
    assert at == pytest.approx(20.0 - (2500 - 2 * BLOCK) / SAMPLE_RATE)  # placed by the newest buffer
    assert reblocker.pending == 0


def test_a_buffer_of_exactly_a_block_passes_whole() -> None:
    block = np.full((BLOCK, CHANNELS), 7, dtype=np.int16)
    [(out, at)] = Reblocker().push(block, 3.5)
    assert np.array_equal(out, block)
    assert at == 3.5


def test_played_at_follows_the_presentation_time_and_falls_back_to_the_buffer_length() -> None:
    assert played_at(100.0, 50.0, 49.97, 480) == pytest.approx(99.97)
    assert played_at(100.0, 50.0, 50.5, 480) == pytest.approx(100.0 - 0.01)  # future: another clock
    assert played_at(100.0, 50.0, 10.0, 960) == pytest.approx(100.0 - 0.02)  # 40 s old: another clock


@pytest.mark.parametrize("release", ["12.6.1", "11.7", "10.15.7", ""])
def test_before_macos_13_the_sound_is_refused_in_words(release: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr("platform.mac_ver", lambda: (release, ("", "", ""), "arm64"))
    monkeypatch.setattr(mac_sound, "_import_framework", _no_framework)
    with pytest.raises(SoundUnavailable) as caught:
        SystemSound().start()
    message = str(caught.value)
    assert "macOS 13 or later" in message
    assert "BlackHole" in message
    assert "shared without sound" in message


@pytest.mark.parametrize("release", ["13.0", "14.6.1", "26.0"])
def test_macos_13_and_later_pass_the_gate(release: str) -> None:
    check_macos_release(release)


def _no_framework(name: str) -> Any:
    raise AssertionError(f"{name} imported before the version check")


# -- a stand-in for ScreenCaptureKit and CoreMedia ------------------------------------------------------


@dataclass
class FakeError:
    """An NSError."""

    code_: int
    description: str = "refused"

    def code(self) -> int:
        return self.code_

    def localizedDescription(self) -> str:
        return self.description


@dataclass
class FakeApp:
    pid: int

    def processID(self) -> int:
        return self.pid


@dataclass
class FakeContent:
    apps: list[FakeApp]
    display_list: list[str] = field(default_factory=lambda: ["main display", "second display"])

    def applications(self) -> list[FakeApp]:
        return self.apps

    def displays(self) -> list[str]:
        return self.display_list


@dataclass
class FakeSampleBuffer:
    data: bytes
    description: Any
    presented: float


class FakeObject:
    """Stands in for NSObject: ``alloc().init()`` and nothing else."""

    @classmethod
    def alloc(cls) -> Any:
        return cls()

    def init(self) -> Any:
        return self


class FakeScreenCaptureKit:
    """The ScreenCaptureKit module, answering as told; it records the filter, configuration and stream."""

    SCStreamOutputTypeScreen = 0
    SCStreamOutputTypeAudio = 1
    NSObject = FakeObject

    def __init__(
        self, *, content_error: FakeError | None = None, start_error: FakeError | None = None
    ) -> None:
        self.content = FakeContent([FakeApp(4242), FakeApp(os.getpid()), FakeApp(7)])
        self.content_error = content_error
        self.start_error = start_error
        self.filters: list[dict[str, Any]] = []
        self.configurations: list[dict[str, Any]] = []
        self.streams: list[Any] = []
        fake = self

        class SCShareableContent:
            @staticmethod
            def getShareableContentWithCompletionHandler_(handler: Callable[..., None]) -> None:
                # answered on another thread, as ScreenCaptureKit does
                error = fake.content_error
                threading.Thread(target=handler, args=(None if error else fake.content, error)).start()

        class SCContentFilter(FakeObject):
            def initWithDisplay_excludingApplications_exceptingWindows_(
                self, display: Any, apps: list[FakeApp], windows: list[Any]
            ) -> Any:
                fake.filters.append({"display": display, "excluded": list(apps), "windows": list(windows)})
                return self

        class SCStreamConfiguration(FakeObject):
            def __getattr__(self, name: str) -> Callable[[Any], None]:
                if not (name.startswith("set") and name.endswith("_")):
                    raise AttributeError(name)
                settings = fake.configurations[-1] if fake.configurations else {}
                if not fake.configurations:
                    fake.configurations.append(settings)
                key = name[3].lower() + name[4:-1]
                return lambda value: settings.__setitem__(key, value)

        class SCStream(FakeObject):
            def initWithFilter_configuration_delegate_(self, filter: Any, config: Any, delegate: Any) -> Any:
                self.delegate = delegate
                self.outputs: list[tuple[Any, int, Any]] = []
                self.started = self.stopped = False
                fake.streams.append(self)
                return self

            def addStreamOutput_type_sampleHandlerQueue_error_(
                self, output: Any, kind: int, queue: Any, error: Any
            ) -> tuple[bool, Any]:
                self.outputs.append((output, kind, queue))
                return True, None

            def startCaptureWithCompletionHandler_(self, handler: Callable[..., None]) -> None:
                self.started = fake.start_error is None
                handler(fake.start_error)

            def stopCaptureWithCompletionHandler_(self, handler: Callable[..., None]) -> None:
                self.stopped = True
                handler(None)

            def deliver(self, sample_buffer: FakeSampleBuffer, kind: int = 1) -> None:
                """ScreenCaptureKit handing a sample buffer to each output."""
                for output, _, _ in self.outputs:
                    output.stream_didOutputSampleBuffer_ofType_(self, sample_buffer, kind)

        self.SCShareableContent = SCShareableContent
        self.SCContentFilter = SCContentFilter
        self.SCStreamConfiguration = SCStreamConfiguration
        self.SCStream = SCStream

    @property
    def stream(self) -> Any:
        [stream] = self.streams
        return stream


class FakeCoreMedia:
    """The CoreMedia functions the capture uses, over :class:`FakeSampleBuffer`; the host clock is 500 s."""

    HOST_NOW = 500.0

    def CMSampleBufferIsValid(self, buffer: FakeSampleBuffer) -> bool:
        return True

    def CMClockGetHostTimeClock(self) -> str:
        return "host clock"

    def CMClockGetTime(self, clock: str) -> float:
        return self.HOST_NOW

    def CMTimeGetSeconds(self, time: float) -> float:
        return time

    def CMTimeMake(self, value: int, timescale: int) -> tuple[int, int]:
        return (value, timescale)

    def CMSampleBufferGetPresentationTimeStamp(self, buffer: FakeSampleBuffer) -> float:
        return buffer.presented

    def CMSampleBufferGetFormatDescription(self, buffer: FakeSampleBuffer) -> FakeSampleBuffer:
        return buffer

    def CMAudioFormatDescriptionGetStreamBasicDescription(self, description: FakeSampleBuffer) -> Any:
        return description.description

    def CMSampleBufferGetDataBuffer(self, buffer: FakeSampleBuffer) -> bytes:
        return buffer.data

    def CMBlockBufferGetDataLength(self, block: bytes) -> int:
        return len(block)

    def CMBlockBufferCopyDataBytes(
        self, block: bytes, offset: int, length: int, out: None
    ) -> tuple[int, bytes]:
        assert out is None  # PyObjC allocates the output buffer and returns it
        return 0, block[offset : offset + length]


@pytest.fixture
def frameworks(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeScreenCaptureKit]:
    """Makes this "a Mac with macOS 14.6" whose ScreenCaptureKit answers as the returned fake is told."""

    def install(**answers: FakeError | None) -> FakeScreenCaptureKit:
        sck = FakeScreenCaptureKit(**answers)
        modules = {"ScreenCaptureKit": sck, "CoreMedia": FakeCoreMedia()}
        monkeypatch.setattr(sys, "platform", "darwin")
        monkeypatch.setattr("platform.mac_ver", lambda: ("14.6", ("", "", ""), "arm64"))
        monkeypatch.setattr(mac_sound, "_import_framework", modules.__getitem__)
        return sck

    return install


@pytest.fixture
def capture() -> Any:
    """A :class:`SystemSound` closed and joined after the test (its thread must not outlive it)."""
    sound = SystemSound()
    yield sound
    sound.close()
    sound.join(5.0)
    assert not sound.running


# -- the capture, driven through the stand-in -----------------------------------------------------------


@pytest.mark.parametrize("where", ["content_error", "start_error"])
def test_a_refused_screen_recording_permission_says_where_to_allow_it(
    where: str, frameworks: Callable[..., FakeScreenCaptureKit], capture: SystemSound
) -> None:
    frameworks(**{where: FakeError(mac_sound.USER_DECLINED, "The user declined TCCs")})
    with pytest.raises(SoundUnavailable) as caught:
        capture.start()
    message = str(caught.value)
    assert "System Settings > Privacy & Security > Screen & System Audio Recording" in message
    assert "allow Coalesce" in message
    assert not capture.running


def test_another_refusal_says_what_macos_said(
    frameworks: Callable[..., FakeScreenCaptureKit], capture: SystemSound
) -> None:
    frameworks(start_error=FakeError(-3802, "Failed to start the stream"))
    with pytest.raises(SoundUnavailable, match="Failed to start the stream") as caught:
        capture.start()
    assert "Privacy & Security" not in str(caught.value)


def test_the_stream_captures_the_main_displays_sound_without_coalesce_itself(
    frameworks: Callable[..., FakeScreenCaptureKit], capture: SystemSound
) -> None:
    sck = frameworks()
    capture.start()
    [content_filter] = sck.filters
    assert content_filter["display"] == "main display"
    assert [app.processID() for app in content_filter["excluded"]] == [os.getpid()]
    [settings] = sck.configurations
    assert settings["capturesAudio"] is True
    assert settings["excludesCurrentProcessAudio"] is True
    assert settings["sampleRate"] == 48_000
    assert settings["channelCount"] == 2
    assert (settings["width"], settings["height"]) == (2, 2)
    assert settings["minimumFrameInterval"] == (1, 1)
    [(output, kind, _)] = sck.stream.outputs
    assert kind == sck.SCStreamOutputTypeAudio
    assert sck.stream.delegate is output
    assert sck.stream.started
    assert capture.running
    assert capture.name


def test_delivered_sound_comes_out_of_take_in_blocks_with_when_it_was_played(
    frameworks: Callable[..., FakeScreenCaptureKit], capture: SystemSound
) -> None:
    sck = frameworks()
    capture.start()
    frames = 1024  # ScreenCaptureKit's buffers are not 20 ms long
    left = np.linspace(-0.5, 0.5, 2 * frames, dtype=np.float32)
    right = -left
    expected = np.clip(np.stack([left, right], axis=1) * 32767.0, -32768, 32767).astype(np.int16)
    presented = FakeCoreMedia.HOST_NOW - 0.05
    for part in range(2):
        chunk = slice(part * frames, (part + 1) * frames)
        planar = left[chunk].tobytes() + right[chunk].tobytes()
        sck.stream.deliver(
            FakeSampleBuffer(planar, asbd(planar=True), presented + part * frames / SAMPLE_RATE)
        )
    sck.stream.deliver(FakeSampleBuffer(b"\x00" * 64, asbd(), presented), kind=sck.SCStreamOutputTypeScreen)

    assert capture.captured == 2  # 2048 frames: two whole blocks, 128 waiting
    first, second = capture.take(), capture.take()
    assert first is not None and second is not None
    assert capture.take() is None
    assert np.array_equal(first[0], expected[:BLOCK])
    assert np.array_equal(second[0], expected[BLOCK : 2 * BLOCK])
    assert time.monotonic() - first[1] == pytest.approx(0.05, abs=0.05)  # presented 50 ms before it came
    assert second[1] - first[1] == pytest.approx(BLOCK / SAMPLE_RATE, abs=0.005)


def test_interleaved_buffers_and_a_bad_one_do_not_stop_the_capture(
    frameworks: Callable[..., FakeScreenCaptureKit], capture: SystemSound
) -> None:
    sck = frameworks()
    capture.start()
    sck.stream.deliver(FakeSampleBuffer(b"\x00" * 7, asbd(planar=False), 0.0))  # not whole frames
    interleaved = np.tile(np.array([0.5, -0.5], dtype=np.float32), BLOCK)
    sck.stream.deliver(FakeSampleBuffer(interleaved.tobytes(), asbd(planar=False), FakeCoreMedia.HOST_NOW))
    taken = capture.take()
    assert taken is not None
    assert taken[0].tolist() == [[16383, -16383]] * BLOCK


def test_close_stops_the_stream_and_join_waits_for_it(
    frameworks: Callable[..., FakeScreenCaptureKit], capture: SystemSound
) -> None:
    sck = frameworks()
    capture.start()
    assert not sck.stream.stopped
    capture.close()
    capture.join(5.0)
    assert sck.stream.stopped
    assert not capture.running


def test_a_stream_macos_ends_ends_the_capture(
    frameworks: Callable[..., FakeScreenCaptureKit], capture: SystemSound
) -> None:
    sck = frameworks()
    capture.start()
    sck.stream.delegate.stream_didStopWithError_(sck.stream, FakeError(-3805, "The display went away"))
    capture.join(5.0)
    assert not capture.running
    assert sck.stream.stopped
