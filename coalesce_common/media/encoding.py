"""Video encoder settings for screen sharing: the encoders aiortc's senders use instead of its own.

This module owns how aiortc encodes video. aiortc's defaults suit a 30 fps webcam call: H.264 with
libx264's ``medium`` preset at level 3.1 capped at 3 Mbps, VP8 capped at 1.5 Mbps on one thread, and
both rebuild the encoder (forcing a key frame) whenever the receiver's bandwidth estimate (REMB) moves by
10%. Screen content at 1080p needs a faster preset, a level that allows the frame size and more bits.

aiortc has no hook for encoder settings: :mod:`coalesce_common.media.aiortc_patches` makes its senders
ask :func:`tuned_encoder` first, which returns the subclasses below for H.264 and VP8 (and ``None``, so
aiortc's own, for everything else), and gives VP8 :func:`vp8_threads`. The subclasses keep aiortc's
packetization and override only what is set here:

- :class:`TunedH264Encoder` re-implements ``_encode_frame`` (codec setup): a hardware encoder when one
  works (:data:`HARDWARE_H264_ENCODERS`), else libx264 with ``preset=ultrafast``, ``tune=zerolatency``, a
  level fitting the frame size and threads for this machine; always no B-frames and a 1/90000 time base
  so wall-clock timestamps above 30 fps stay distinct.
- :class:`TunedVp8Encoder` keeps aiortc's codec setup; its thread count comes from :func:`vp8_threads`,
  which replaces aiortc's ``number_of_threads`` because the setup has no other seam.
- Both clamp REMB to our own caps and rebuild only when the estimate moves by more than
  :data:`REBUILD_THRESHOLD`. (Changing ``bit_rate`` on an open libx264 context is allowed by PyAV but has
  no effect on the output without a VBV, measured with PyAV 18.1, so a rebuild is the only way to apply
  a new rate; with a VBV x264 would take it, but PyAV cannot change ``maxrate`` on an open context.)

Rate control is told the truth, so that both codecs send what they are asked to at any frame rate:

- The frame rate: libx264 without lookahead (zerolatency) plans each frame's bits, and the VBV's refill,
  as ``bitrate / framerate``; told a nominal 30 fps at 60 it sent 1.7-2.2x its target (measured at
  640x360, 1 Mbit/s). :class:`FrameRateMeter` measures the rate the encoder gets from the frames'
  timestamps (rather than the capture rate: frames the encoder was too slow for never reach it, and the
  encoder does not see the track), and the codec is opened at it. A codec opened before there was a
  measurement, at :data:`INITIAL_FPS`, is rebuilt once when the first one differs; later differences
  beyond :data:`FRAME_RATE_TOLERANCE` wait for the next key frame, which the new codec's first frame
  then is, so a change of rate costs no extra key frame. libvpx measures the rate from timestamps itself
  (within 10% of its target at 30 and 60 fps), so VP8 needs none of this.
- The key-frame interval, :data:`KEYFRAME_INTERVAL`, in seconds of frame time (:class:`KeyFrameSchedule`,
  for both codecs, by forcing the frame's picture type), not in frames: at a nominal 30 fps, "60 frames"
  was 1 s at 60 fps. The encoders' own counts are set far beyond it.
- A VBV for H.264 (:func:`vbv_options`): ``maxrate`` = the target, ``bufsize`` =
  :data:`VBV_BUFFER_SECONDS` of it, for every H.264 encoder (FFmpeg's generic options). VP8 keeps
  aiortc's, which is libwebrtc's: CBR (``minrate`` = ``maxrate`` = target), a 1 s buffer
  (``rc_buf_sz`` 1000 ms), 15% overshoot.

The receiving side's tuning (jitter buffer, socket buffers) is :mod:`coalesce_common.media.receiving`.

:func:`prefer_codec` puts H.264 first in a transceiver's codec preferences.
"""

from __future__ import annotations

import collections
import fractions
import logging
import math
import os
from collections.abc import Iterator

import av
from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import VIDEO_TIME_BASE
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame
from av.video.codeccontext import VideoCodecContext

from coalesce_common.media.limits import hints_of

logger = logging.getLogger(__name__)

H264_MIN_BITRATE = 500_000
H264_DEFAULT_BITRATE = 4_000_000
H264_MAX_BITRATE = 12_000_000
VP8_MIN_BITRATE = 250_000
VP8_DEFAULT_BITRATE = 2_000_000
VP8_MAX_BITRATE = 6_000_000

REBUILD_THRESHOLD = 0.5
"""Relative change of the bandwidth estimate worth a new encoder (and the key frame it starts with)."""

KEYFRAME_INTERVAL = 2.0
"""Seconds of frame time between key frames, so a receiver that lost a packet or joined late recovers
quickly; counted on the frames' timestamps, whatever the frame rate."""

VBV_BUFFER_SECONDS = 0.3
"""Size of the VBV buffer in seconds of the target bitrate (``bufsize``; ``maxrate`` is the target).

No frame can exceed it, so no frame takes more than 0.3 s to cross a link of the target rate: the size
libwebrtc lets a VP8 key frame grow to (``MaxIntraTarget``: half its 600 ms optimal buffer). x264's own
low-latency advice, one frame's worth (``maxrate / fps``), is meant with periodic intra refresh; with
key frames it leaves a 1080p key frame 67 kbit at 4 Mbit/s and 60 fps, blurring the text of every
key frame.
"""

INITIAL_FPS = 30.0
"""Frame rate an H.264 encoder is opened at before it has measured one: the sender's default capture
rate (and aiortc's ``MAX_FRAME_RATE``)."""

FRAME_RATE_WINDOW = 1.0
"""Seconds of frame timestamps the frame rate is measured over."""

FRAME_RATE_MIN_FRAMES = 5
"""Frames needed before the measured rate is trusted (the first gap includes the codec's opening)."""

FRAME_RATE_TOLERANCE = 0.2
"""Relative difference between the measured rate and the one an H.264 encoder was opened at that is
worth a new encoder; 60 against 52 fps (a busy sender) is not."""

MIN_FPS = 1.0
MAX_FPS = 240.0
"""Measured rates are clamped to these (a stalled capture still sends a frame a second)."""

ENCODER_GOP_BACKSTOP = 4 * KEYFRAME_INTERVAL
"""Seconds at :data:`MAX_FPS` after which an encoder makes a key frame on its own count of frames."""

SOFTWARE_H264_ENCODER = "libx264"

HARDWARE_H264_ENCODERS: dict[str, dict[str, str]] = {
    # NVENC: lowest-latency tuning; without these it buffers and reorders frames (aiortc issue #588).
    "h264_nvenc": {"preset": "p1", "tune": "ull", "zerolatency": "1", "delay": "0", "rc": "cbr"},
    "h264_qsv": {"preset": "veryfast", "async_depth": "1", "look_ahead": "0"},
    "h264_amf": {"usage": "ultralowlatency", "quality": "speed", "rc": "cbr"},
    "h264_videotoolbox": {"realtime": "1", "allow_sw": "0"},
    "h264_mf": {"scenario": "display_remoting", "hw_encoding": "1"},
}
"""Hardware H.264 encoders tried, in this order, before libx264, with their low-latency options.

Each is used only if this FFmpeg build has it and it opens and encodes (a missing device fails at the
first frame, which then goes to the next encoder). ``h264_vaapi`` is not here: it needs frames uploaded to
VAAPI surfaces, which PyAV does not do. ``COALESCE_H264_ENCODERS`` (comma-separated names) replaces the
order, e.g. ``libx264`` to force software.
"""

_FAILED_H264_ENCODERS: set[str] = set()
"""Encoders that failed in this process: not tried again."""


def h264_encoder_candidates() -> list[str]:
    """The H.264 encoders to try, best first, without those that failed already; libx264 always last."""
    chosen = os.environ.get("COALESCE_H264_ENCODERS", "")
    names = [n.strip() for n in chosen.split(",") if n.strip()] or list(HARDWARE_H264_ENCODERS)
    names = [n for n in names if n != SOFTWARE_H264_ENCODER and n not in _FAILED_H264_ENCODERS]
    return [*names, SOFTWARE_H264_ENCODER]


# H.264 level limits (ITU-T H.264 Table A-1): (level, max macroblocks per frame, max macroblocks per second).
_H264_LEVELS = (
    ("4.2", 8_704, 522_240),  # 1080p60
    ("5.1", 36_864, 983_040),  # 4K30
    ("5.2", 36_864, 2_073_600),  # 4K60
    ("6.0", 139_264, 4_177_920),  # 8K30
)


def h264_level(width: int, height: int, fps: float = 60) -> str:
    """The lowest H.264 level, from 4.2 up, whose limits allow ``width`` x ``height`` at ``fps``."""
    macroblocks = math.ceil(width / 16) * math.ceil(height / 16)
    for level, max_frame, max_rate in _H264_LEVELS:
        if macroblocks <= max_frame and macroblocks * fps <= max_rate:
            return level
    return _H264_LEVELS[-1][0]


def encoder_threads(width: int, height: int, cpus: int | None = None) -> int:
    """Threads for one encoder: more for bigger frames, never more than the machine has (at most 8)."""
    cpus = cpus or os.cpu_count() or 1
    pixels = width * height
    wanted = 2 if pixels <= 640 * 480 else 4 if pixels <= 1920 * 1080 else 8
    return max(1, min(cpus, wanted))


def vp8_threads(pixels: int, cpus: int) -> int:
    """Threads for a VP8 encoder; aiortc's ``number_of_threads`` (same signature) gives 1 at 1080p on 8 CPUs
    or fewer, which held VP8 at 22 fps where 2 threads reached 44 (notes/aiortc-and-friends.md)."""
    return encoder_threads(pixels, 1, cpus) if pixels > 320 * 240 else 1


class FrameRateMeter:
    """Frames per second an encoder gets, measured on the timestamps of the frames of the last second.

    The encoder is told the rate it gets, not the capture rate: frames the encoder was too slow to take
    are dropped before it (:class:`~coalesce_common.media.capture.FrameSlot`), and a rate it never gets
    would make x264 plan too few bits per frame. libvpx measures its rate from timestamps on its own;
    libx264 without lookahead (zerolatency) gives every frame ``1 / framerate`` of the bitrate.
    """

    def __init__(self, window: float = FRAME_RATE_WINDOW) -> None:
        self._window = window
        self._times: collections.deque[float] = collections.deque()

    def observe(self, seconds: float) -> None:
        """Count a frame stamped ``seconds`` (increasing from frame to frame)."""
        self._times.append(seconds)
        while seconds - self._times[0] > self._window:
            self._times.popleft()

    @property
    def rate(self) -> float | None:
        """Frames per second over the window, or ``None`` before :data:`FRAME_RATE_MIN_FRAMES` frames."""
        if len(self._times) < FRAME_RATE_MIN_FRAMES:
            return None
        span = self._times[-1] - self._times[0]
        if span <= 0:
            return None
        return max(MIN_FPS, min((len(self._times) - 1) / span, MAX_FPS))


class KeyFrameSchedule:
    """A key frame every :data:`KEYFRAME_INTERVAL` seconds of frame time.

    Counted in seconds, not in frames as encoders count ``gop_size``, so that the interval holds whatever
    rate the frames come at (the same code gives VP8, whose setup aiortc owns, key frames).
    """

    def __init__(self, interval: float = KEYFRAME_INTERVAL) -> None:
        self._interval = interval
        self._next: float | None = None

    def due(self, seconds: float) -> bool:
        """Whether the frame stamped ``seconds`` should be a key frame (the first one always is)."""
        return self._next is None or seconds >= self._next

    def sent(self, seconds: float) -> None:
        """A key frame stamped ``seconds`` was made: the next is due one interval later."""
        self._next = seconds + self._interval


def frame_seconds(frame: av.VideoFrame) -> float:
    """The frame's timestamp in seconds (the track stamps frames with the wall clock)."""
    if frame.pts is None or frame.time_base is None:
        raise ValueError("video frames for the encoder need a pts and a time base")
    return float(frame.pts * frame.time_base)


def vbv_options(bitrate: int) -> dict[str, str]:
    """FFmpeg's generic rate options for a VBV of :data:`VBV_BUFFER_SECONDS` at ``bitrate``.

    ``maxrate`` and ``bufsize`` are ``AVCodecContext`` options, so every encoder accepts them; libx264,
    NVENC, QSV and AMF read them (as VBV or HRD limits), the others ignore what they do not use.
    """
    return {"maxrate": str(bitrate), "bufsize": str(round(bitrate * VBV_BUFFER_SECONDS))}


class _BitrateHysteresis:
    """Target bitrate clamped to our caps, moved only by changes above :data:`REBUILD_THRESHOLD`.

    aiortc's encoders rebuild when ``target_bitrate`` differs from the open codec's rate by 10%; as the
    value they read only changes by more than the threshold, they rebuild only then.
    """

    min_bitrate: int
    default_bitrate: int
    max_bitrate: int

    def _init_bitrate(self) -> None:
        self._bitrate = self.default_bitrate
        self._room_cap: int | None = None

    @property
    def target_bitrate(self) -> int:
        """The bandwidth estimate's rate (with hysteresis), at most what the room asked for."""
        if self._room_cap is None:
            return self._bitrate
        return max(self.min_bitrate, min(self._bitrate, self._room_cap))

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        bitrate = max(self.min_bitrate, min(bitrate, self.max_bitrate))
        if abs(bitrate - self._bitrate) > REBUILD_THRESHOLD * self._bitrate:
            logger.debug("encoder target bitrate %d -> %d bps", self._bitrate, bitrate)
            self._bitrate = bitrate
            self._bitrate_changed(self.target_bitrate)

    def _bitrate_changed(self, bitrate: int) -> None:
        """Hook for state a base class keeps beside ``target_bitrate``."""

    def _take_hints(self, frame: Frame) -> bool:
        """Follow what the room asked of this stream (:class:`FrameHints` on the frame): its bitrate cap
        from now on; returns whether it wants this frame to be a key frame."""
        hints = hints_of(frame)
        cap = None if hints is None else hints.max_bitrate
        if cap != self._room_cap:
            before = self.target_bitrate
            self._room_cap = cap
            if self.target_bitrate != before:
                logger.debug("encoder bitrate cap from the room: %s bps", cap)
                self._bitrate_changed(self.target_bitrate)
        return hints is not None and hints.keyframe


class TunedH264Encoder(_BitrateHysteresis, H264Encoder):
    """aiortc's H.264 encoder with libx264 set up for low-latency screen content."""

    min_bitrate = H264_MIN_BITRATE
    default_bitrate = H264_DEFAULT_BITRATE
    max_bitrate = H264_MAX_BITRATE

    def __init__(self) -> None:
        super().__init__()
        self._init_bitrate()
        # The rate the open codec was given: libx264 reports it back rounded down to whole kbit/s, so
        # comparing codec.bit_rate with the target would rebuild the codec (and send a key frame) on every
        # frame after any estimate that is not a multiple of 1000.
        self._codec_bitrate = 0
        self._codec_fps = INITIAL_FPS  # the rate the open codec was told
        self._codec_fps_checked = False  # ... compared with a measured rate since it was opened
        self._codec_worked = False  # the open codec has encoded a frame
        self._frame_rate = FrameRateMeter()
        self._keyframes = KeyFrameSchedule()

    def _encode_frame(self, frame: av.VideoFrame, force_keyframe: bool) -> Iterator[bytes]:
        seconds = frame_seconds(frame)
        self._frame_rate.observe(seconds)
        keyframe = self._take_hints(frame) or force_keyframe or self._keyframes.due(seconds)
        codec = self.codec
        if codec is not None and (
            frame.width != codec.width
            or frame.height != codec.height
            or self._codec_bitrate != self.target_bitrate
            or self._rate_is_off(keyframe)
        ):
            self.buffer_data = b""
            self.buffer_pts = None
            codec = self.codec = None
        if codec is None:
            keyframe = True  # a new codec starts with one anyway
        if keyframe:
            self._keyframes.sent(seconds)

        # NONE lets the encoder choose; a frame may carry I from an earlier use.
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE

        while True:
            if codec is None:
                codec = self.codec = self._open_codec(frame.width, frame.height)
            try:
                data = b"".join(bytes(packet) for packet in codec.encode(self._fit(frame, codec)))
            except av.FFmpegError as exc:
                if codec.name == SOFTWARE_H264_ENCODER:
                    raise
                # A hardware encoder is created even without its device and fails only here, at open
                # (or later, if the device goes away): note it and carry on with the next one.
                log = logger.warning if self._codec_worked else logger.info
                log("H.264 encoder %s is not usable here (%s); trying the next one", codec.name, exc)
                _FAILED_H264_ENCODERS.add(codec.name)
                codec = self.codec = None
                continue
            self._codec_worked = True
            break
        if data:
            yield from self._split_bitstream(data)

    def _rate_is_off(self, keyframe: bool) -> bool:
        """Whether the open codec's frame rate is off the measured one by more than the tolerance, at a
        moment worth a new codec: a key frame is due anyway, or the codec was opened at a guess and this is
        the first measurement (once, a few frames into a stream at another rate than :data:`INITIAL_FPS`)."""
        rate = self._frame_rate.rate
        if rate is None or not (keyframe or not self._codec_fps_checked):
            return False
        self._codec_fps_checked = True
        return abs(rate - self._codec_fps) > FRAME_RATE_TOLERANCE * self._codec_fps

    @staticmethod
    def _fit(frame: av.VideoFrame, codec: VideoCodecContext) -> av.VideoFrame:
        if frame.format.name == codec.pix_fmt:
            return frame
        fitted = frame.reformat(format=codec.pix_fmt)  # NV12 for the encoders that take nothing else
        fitted.pts, fitted.time_base, fitted.pict_type = frame.pts, frame.time_base, frame.pict_type
        return fitted

    def _open_codec(self, width: int, height: int) -> VideoCodecContext:
        for name in h264_encoder_candidates():
            try:
                codec = av.CodecContext.create(name, "w")
            except (av.FFmpegError, ValueError):  # not in this FFmpeg build
                codec = None
            if not isinstance(codec, VideoCodecContext):
                _FAILED_H264_ENCODERS.add(name)
                continue
            formats = [f.name for f in codec.codec.video_formats or ()]
            codec.width = width
            codec.height = height
            codec.pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
            codec.bit_rate = self._codec_bitrate = self.target_bitrate
            self._codec_worked = False
            measured = self._frame_rate.rate
            self._codec_fps_checked = measured is not None
            self._codec_fps = measured if measured is not None else INITIAL_FPS
            # x264 without lookahead gives each frame 1/framerate of the bitrate (and of the VBV's refill).
            codec.framerate = fractions.Fraction(self._codec_fps).limit_denominator(1001)
            # The track's 90 kHz wall-clock pts pass unchanged; aiortc's 1/30 merges pts at 60 fps.
            codec.time_base = VIDEO_TIME_BASE
            # Key frames come from KeyFrameSchedule, in seconds; the encoder's own count, in frames, is
            # only a backstop well beyond it, so that a rate above the one it was told adds none.
            codec.gop_size = round(ENCODER_GOP_BACKSTOP * MAX_FPS)
            codec.max_b_frames = 0
            options = vbv_options(self.target_bitrate)
            if name == SOFTWARE_H264_ENCODER:
                codec.thread_count = encoder_threads(width, height)
                codec.profile = "Baseline"  # what aiortc offers in SDP (42e01f / 42001f)
                options |= {
                    "preset": "ultrafast",
                    "tune": "zerolatency",
                    "level": h264_level(width, height),
                }
            else:
                options |= HARDWARE_H264_ENCODERS[name]
            codec.options = options
            logger.info(
                "H.264 encoder %s %dx%d at %d bps, %.1f fps, %s",
                name,
                width,
                height,
                codec.bit_rate,
                self._codec_fps,
                ", ".join(f"{k}={v}" for k, v in codec.options.items()),
            )
            return codec
        raise av.FFmpegError(0, "no usable H.264 encoder")  # unreachable while libx264 is in the list


class TunedVp8Encoder(_BitrateHysteresis, Vp8Encoder):
    """aiortc's VP8 encoder with our bitrate caps and hysteresis."""

    min_bitrate = VP8_MIN_BITRATE
    default_bitrate = VP8_DEFAULT_BITRATE
    max_bitrate = VP8_MAX_BITRATE

    def __init__(self) -> None:
        super().__init__()
        self._init_bitrate()
        self._bitrate_changed(self._bitrate)
        self._keyframes = KeyFrameSchedule()

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        # aiortc's setup keeps libvpx's own interval at 3000 frames and its rate control on timestamps,
        # already honest at any rate (libvpx measures the rate itself) with libwebrtc's 1 s CBR buffer.
        assert isinstance(frame, av.VideoFrame)
        seconds = frame_seconds(frame)
        keyframe = self._take_hints(frame) or force_keyframe or self._keyframes.due(seconds)
        if keyframe:
            self._keyframes.sent(seconds)
        return super().encode(frame, keyframe)

    def _bitrate_changed(self, bitrate: int) -> None:
        # Vp8Encoder sizes its rate-control buffer from its private copy of the target, not the property.
        self._Vp8Encoder__target_bitrate = bitrate


def tuned_encoder(codec: RTCRtpCodecParameters) -> Encoder | None:
    """Our encoder for ``codec`` (H.264 or VP8), or ``None`` to leave it to aiortc."""
    mime = codec.mimeType.lower()
    if mime == "video/h264":
        return TunedH264Encoder()
    if mime == "video/vp8":
        return TunedVp8Encoder()
    return None


def prefer_codec(transceiver: RTCRtpTransceiver, mime: str = "video/H264") -> bool:
    """Offer ``mime`` first (then everything else aiortc can do) on ``transceiver``.

    Returns ``False``, leaving aiortc's default order, if aiortc cannot encode ``mime``.
    """
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    preferred = [c for c in codecs if c.mimeType.lower() == mime.lower()]
    if not preferred:
        logger.warning("codec %s is not available; keeping aiortc's default preferences", mime)
        return False
    others = [c for c in codecs if c.mimeType.lower() != mime.lower()]
    try:
        transceiver.setCodecPreferences(preferred + others)
    except ValueError as exc:
        logger.warning("could not prefer %s: %s", mime, exc)
        return False
    return True
