"""The ffmpeg baseline: the same job as a share, done by two ffmpeg processes per stream, over RTP.

The sending ffmpeg grabs the same X screen with x11grab, converts to yuv420p with libswscale and encodes
like Coalesce's encoder (:mod:`coalesce_common.media.encoding`): libx264 ``ultrafast``/``zerolatency``,
Baseline profile, no B-frames (or libvpx ``realtime``, ``cpu-used -6``, no lag, CBR), a key frame every
2 s, at the bitrate Coalesce reached in the same case, with the same VBV (:func:`encoder_args`). It
sends RTP over loopback UDP, as a share does (less DTLS, SRTP and ICE).

The receiving ffmpeg reads the RTP stream from an SDP written here, decodes it and writes only the
top-left corner of each frame, as grey, to its stdout, where :class:`BaselineStream` reads the timestamp
strip just as the Coalesce receiver does. Its options are the lowest-delay ones ffmpeg 5.1 has, each
for a measured reason:

- ``-flags low_delay``: no frame threading in the decoder.
- ``-probesize 32 -analyzeduration 1``: no probing backlog (``-analyzeduration 0`` means FFmpeg's
  default, 5 s, so one microsecond).
- ``-reorder_queue_size 0``: the RTP demuxer hands on each packet as it arrives instead of holding some
  for reordering (loopback does not reorder).
- ``-threads 1`` on the rawvideo output: ffmpeg 5.1's rawvideo encoder is frame-threaded by default and
  hands frame N out only when N+1 arrives (one frame interval, 16.7 ms at 60 fps; 500 ms at 2 fps).
- no ``-fflags nobuffer``: it discards the packets read while probing, the first IDR among them, so the
  first picture waited a whole GOP (2 s; 4.4 s at 4K). The decoder also starts before the encoder, so the
  encoder's first key frame is the first packet it receives.

One delay remains that Coalesce's receiver does not have: one frame interval (measured at 10 fps: 97 ms
behind Coalesce). The likely holder is ffmpeg's H.264 parser, which finds the end of a frame only when
the next frame's first packet arrives (it ignores the RTP marker bit), as aiortc's own jitter buffer did
before ``FrameEndJitterBuffer``. That is what a user of ffmpeg's RTP receiver gets, so it stays in the
figure; the README says so beside it.

With a viewer (``BaselineStream(..., viewer=XServer)``) the picture is also shown, borderless over the
whole of that X screen with its aspect kept (where :meth:`benchmarks.glass.Placement.fitted` looks for
it), as its best user would show it with the least delay, and the decoder-point figure stays. Two ways
are built (:data:`VIEWER_PROGRAMS`):

- ``ffplay`` (the default): the encoder sends the same RTP packets to two ports (``-f tee``), to the
  decoder above and to ffplay with the same input options and ``-framedrop -sync ext -vf setpts=0``. Its
  decoding and drawing run in threads of their own, and a frame it cannot draw in time is dropped.
- ``ffmpeg``: the decoder itself, its frame ``split`` to the pipe first and then to the SDL output device.
  One decode, and no player clock or queue, but ffmpeg 5.1 does all of it in one thread: when drawing a
  frame takes longer than a frame interval, the input backs up in the UDP demuxer's queue and the delay
  grows without bound (1.3 s at 720p60 on two loaded cores, where ffplay stayed at 0.2-0.25 s).

The sender's FFmpeg is the system's (``ffmpeg -version``), Coalesce's is PyAV's bundled libraries; the
report records both (:func:`ffmpeg_version`, ``av.library_versions``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import timecode
from benchmarks.cases import MIN_BASELINE_BITRATE, START_TIMEOUT, Case, Settings, Stage
from benchmarks.glass import start_glass, take_snapshots
from benchmarks.links import LOOPBACK, Network
from benchmarks.outcome import combine, cpu_delta, screen_cpu
from benchmarks.procs import (
    BenchmarkError,
    Child,
    PatternChild,
    XServer,
    child_env,
    cpu_seconds,
    memory_mib,
    pin_sides,
    stop_process,
)
from benchmarks.samples import StripSamples
from coalesce_common.media.encoding import KEYFRAME_INTERVAL, vbv_options

RTP_PAYLOAD_TYPE = 96
RTP_PACKET_SIZE = 1200
"""Payload size like aiortc's (it packetizes to about 1200 bytes)."""
RECEIVE_BUFFER = 1 << 20
"""Socket receive buffer of the decoder, the same 1 MiB Coalesce's receiver asks for (capped by
``net.core.rmem_max``)."""
DECODER_INPUT = [
    "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "1", "-reorder_queue_size", "0",
    "-buffer_size", str(RECEIVE_BUFFER), "-protocol_whitelist", "file,udp,rtp",
]  # fmt: skip
"""Input options of every program that receives the RTP stream (the module docstring says why)."""
IMPAIRED_INPUT = [
    "-reorder_queue_size", "500", "-max_delay", "100000",
]  # fmt: skip
"""On an impaired link, in place of ``-reorder_queue_size 0``: ffmpeg's own defaults (a 500-packet queue
waiting at most 100 ms for a late packet), as its user would keep them on a network that reorders. With
no queue, a packet overtaken by jitter is a hole in its frame."""


def decoder_input(network: Network) -> list[str]:
    """:data:`DECODER_INPUT`, with the reordering queue back on an impaired link."""
    if network.name == "loopback":
        return list(DECODER_INPUT)
    at = DECODER_INPUT.index("-reorder_queue_size")
    return [*DECODER_INPUT[:at], *DECODER_INPUT[at + 2 :], *IMPAIRED_INPUT]


VIEWER_PROGRAMS = ("ffplay", "ffmpeg")
"""How the picture is shown on a viewer screen: ``ffplay`` on a second copy of the RTP stream (the
default), or ``ffmpeg``, the decoder itself, through its SDL output device. The README says which
showed frames sooner, and why the default is the default."""
VIEWER_ENV = {"SDL_VIDEODRIVER": "x11", "SDL_RENDER_DRIVER": "software"}
"""SDL on the viewer's Xvfb: the software renderer drew 1080p at 37 fps where SDL's default (OpenGL on
Mesa's llvmpipe) drew 22 and ffmpeg's ``opengl`` device 26 (2 loaded cores: only their order counts)."""


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise BenchmarkError(
            "ffmpeg is not installed (apt-get install ffmpeg) and --no-baseline was not given"
        )
    return path


def ffplay_path() -> str:
    path = shutil.which("ffplay")
    if path is None:
        raise BenchmarkError(
            "ffplay is not installed (apt-get install ffmpeg): it shows the baseline's picture"
        )
    return path


def ffmpeg_version() -> str:
    """The system ffmpeg's version ("5.1.9-0+deb12u1"), or "" when it is absent."""
    try:
        out = subprocess.run([ffmpeg_path(), "-version"], capture_output=True, text=True, check=False).stdout
    except BenchmarkError:
        return ""
    return out.split("\n", 1)[0].removeprefix("ffmpeg version ").split(" ", 1)[0]


def encoder_args(codec: str, bitrate: int, fps: float) -> list[str]:
    """Encoder options set as Coalesce's encoders set theirs (:mod:`coalesce_common.media.encoding`).

    The key-frame interval is the same in seconds (``-g`` counts frames of the capture rate, which
    x11grab also gives the encoder as its frame rate, as Coalesce's encoder is told the rate it gets);
    H.264 has the same VBV (:func:`~coalesce_common.media.encoding.vbv_options`), VP8 aiortc's libvpx
    settings: CBR with a 1 s buffer, 15 % overshoot, quantizers 2-56.
    """
    gop = str(round(KEYFRAME_INTERVAL * fps))
    if codec == "h264":
        vbv = vbv_options(bitrate)
        return [
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline",
            "-pix_fmt", "yuv420p", "-b:v", str(bitrate), "-maxrate", vbv["maxrate"],
            "-bufsize", vbv["bufsize"], "-g", gop, "-bf", "0",
        ]  # fmt: skip
    if codec == "vp8":
        return [
            "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "-6", "-lag-in-frames", "0",
            "-pix_fmt", "yuv420p", "-b:v", str(bitrate), "-minrate", str(bitrate),
            "-maxrate", str(bitrate), "-bufsize", str(bitrate), "-qmin", "2", "-qmax", "56",
            "-overshoot-pct", "15", "-undershoot-pct", "100", "-static-thresh", "1",
            "-noise-sensitivity", "4", "-g", gop,
        ]  # fmt: skip
    raise ValueError(f"no baseline for codec {codec!r}")


def sdp(codec: str, port: int) -> str:
    """The session description the decoding ffmpeg reads: one video stream on ``port`` of 127.0.0.1."""
    rtpmap = {"h264": "H264/90000", "vp8": "VP8/90000"}[codec]
    lines = [
        "v=0",
        "o=- 0 0 IN IP4 127.0.0.1",
        "s=coalesce-benchmark-baseline",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=video {port} RTP/AVP {RTP_PAYLOAD_TYPE}",
        f"a=rtpmap:{RTP_PAYLOAD_TYPE} {rtpmap}",
    ]
    if codec == "h264":
        lines.append(f"a=fmtp:{RTP_PAYLOAD_TYPE} packetization-mode=1")
    return "\r\n".join(lines) + "\r\n"


def decoder_outputs(geometry: timecode.StripGeometry, viewer: XServer | None) -> list[str]:
    """The decoding ffmpeg's outputs: the strip corner as grey to stdout, and (``viewer``: with the
    ``"ffmpeg"`` :data:`VIEWER_PROGRAMS`) the picture through SDL, fitted to ``viewer``'s screen.

    Both come from one decoded frame through ``split``, in this order, so the pipe (the decoder-point
    figure) is written before the picture is drawn. Every output's rawvideo encoder runs with ``-threads
    1``, or it would hold each frame until the next one.
    """
    corner = f"crop={geometry.right}:{geometry.bottom}:0:0,format=gray"
    pipe = ["-fps_mode", "passthrough", "-flush_packets", "1", "-threads", "1", "-f", "rawvideo", "pipe:1"]
    if viewer is None:
        return ["-vf", corner, *pipe]
    return [
        "-filter_complex", f"[0:v]split=2[corner][shown];[corner]{corner}[strip]",
        "-map", "[strip]", *pipe,
        "-map", "[shown]", "-fps_mode", "passthrough", "-threads", "1",
        "-f", "sdl", "-window_borderless", "1", "-window_x", "0", "-window_y", "0",
        "-window_size", f"{viewer.width}x{viewer.height}", "coalesce-baseline",
    ]  # fmt: skip


def player_args(sdp_path: Path, viewer: XServer, network: Network = LOOPBACK) -> list[str]:
    """ffplay showing the stream of ``sdp_path`` borderless over all of ``viewer``'s screen.

    Its input options are the decoder's; ``-framedrop -sync ext -vf setpts=0`` is the usual low-latency
    recipe: every frame is due at once (no pacing by timestamps) and one that is late is dropped, so the
    picture never queues behind a slow display. ``-fflags nobuffer`` is left out, as for the decoder.
    ffplay fits the picture to its window with the aspect kept, centred.
    """
    return [
        "-hide_banner", "-loglevel", "warning", "-nostats", "-an",
        *decoder_input(network), "-framedrop", "-sync", "ext", "-vf", "setpts=0",
        "-noborder", "-left", "0", "-top", "0", "-x", str(viewer.width), "-y", str(viewer.height),
        "-window_title", "coalesce-baseline", "-f", "sdp", "-i", str(sdp_path),
    ]  # fmt: skip


ELEMENTARY_FORMATS = {"h264": "h264", "vp8": "ivf"}
"""The container of the encoded stream's copy to a file, beside the RTP outputs of a ``tee``."""


def rtp_output(
    ports: list[int], host: str = "127.0.0.1", *, codec: str = "h264", counted: Path | None = None
) -> list[str]:
    """The encoder's output: RTP to each of ``ports`` on ``host`` (the same packets, by ``tee``).

    A ``tee`` reports no output size in ``-progress``, so with several ports the encoded stream is also
    written to ``counted``, whose size is then the bytes sent (the payload, as Coalesce's ``bytesSent``
    counts it; RTP's own 12-byte headers are in neither)."""
    urls = [f"rtp://{host}:{port}?pkt_size={RTP_PACKET_SIZE}" for port in ports]
    if len(urls) == 1:
        return ["-f", "rtp", "-payload_type", str(RTP_PAYLOAD_TYPE), urls[0]]
    slaves = [f"[f=rtp:payload_type={RTP_PAYLOAD_TYPE}]{url}" for url in urls]
    if counted is not None:
        # Written as it goes: unflushed, the copy grows in 256 KiB steps, so a short window at a low rate
        # saw no bytes at all (measured: 0 B after 4 s at 0.5 Mbit/s, then 256 KiB at once).
        slaves.append(f"[f={ELEMENTARY_FORMATS[codec]}:flush_packets=1]{counted}")
    return ["-map", "0:v", "-f", "tee", "|".join(slaves)]


def free_rtp_port() -> int:
    """An even UDP port on 127.0.0.1 whose successor (RTCP) is free too, at the moment of asking."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1]) & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp,
            ):
                rtp.bind(("127.0.0.1", port))
                rtcp.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise BenchmarkError("found no free pair of UDP ports on 127.0.0.1 for the ffmpeg baseline")


async def port_bound(port: int, process: asyncio.subprocess.Process, timeout: float = 10.0) -> bool:
    """Whether ``process`` bound UDP ``port`` on 127.0.0.1 within ``timeout`` (False once it exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(("127.0.0.1", port))
        except OSError:
            return True  # taken: the process listens
        if process.returncode is not None:
            return False
        await asyncio.sleep(0.01)  # polling a port the child binds: there is no event to wait for
    return False


class BaselineStream:
    """One ffmpeg sender and one ffmpeg receiver, joined by RTP on loopback, and the receiver's reader;
    with ``viewer``, the picture shown on that X server too (by ``viewer_program``)."""

    def __init__(
        self,
        index: int,
        xserver: XServer,
        codec: str,
        bitrate: int,
        fps: float,
        log_dir: Path,
        viewer: XServer | None = None,
        viewer_program: str = VIEWER_PROGRAMS[0],
        network: Network = LOOPBACK,
    ) -> None:
        if viewer_program not in VIEWER_PROGRAMS:
            raise ValueError(f"no viewer program {viewer_program!r}; one of {VIEWER_PROGRAMS}")
        self.index = index
        self.xserver = xserver
        self.viewer = viewer
        """The X server the decoded picture is shown on, full screen; ``None``: not shown."""
        self.viewer_program = viewer_program
        self.network = network
        """The encoder runs where the case's senders do and sends to the receivers' address; the decoders
        bind every address (ffmpeg's SDP input binds its port on all of them)."""
        self.codec = codec
        self.bitrate = bitrate
        self.fps = fps
        self.log_dir = log_dir
        self.geometry = timecode.strip_geometry(xserver.width, xserver.height)
        self.samples = StripSamples(self.geometry)
        self.progress_path = log_dir / f"baseline-{index}.progress"
        self.sdp_path = log_dir / f"baseline-{index}.sdp"
        self.counted_path = log_dir / f"baseline-{index}.{ELEMENTARY_FORMATS[codec]}"
        self.encoder: asyncio.subprocess.Process | None = None
        self.decoder: asyncio.subprocess.Process | None = None
        self.player: asyncio.subprocess.Process | None = None
        """ffplay, when it shows the picture (``viewer_program="ffplay"``)."""
        self.started_at = 0.0
        self._reader: asyncio.Task[None] | None = None
        self.first_frame = asyncio.Event()

    async def start(self) -> None:
        ffmpeg = ffmpeg_path()
        x = self.xserver
        port = free_rtp_port()
        self.sdp_path.write_text(sdp(self.codec, port))
        ports = [port]
        common = ["-hide_banner", "-loglevel", "warning", "-nostdin"]
        self.started_at = time.monotonic()
        shown_by_decoder = self.viewer if self.viewer_program == "ffmpeg" else None
        with (self.log_dir / f"baseline-{self.index}-decoder.log").open("wb") as log:
            self.decoder = await asyncio.create_subprocess_exec(
                ffmpeg, *common, *decoder_input(self.network), "-f", "sdp", "-i", str(self.sdp_path),
                *decoder_outputs(self.geometry, shown_by_decoder),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env=None if shown_by_decoder is None else child_env(shown_by_decoder.display, **VIEWER_ENV),
            )  # fmt: skip
        self._reader = asyncio.ensure_future(self._read())
        await self._wait_listening(port, self.decoder)
        if self.viewer is not None and self.viewer_program == "ffplay":
            ports.append(await self._start_player(self.viewer))
        with (self.log_dir / f"baseline-{self.index}-encoder.log").open("wb") as log:
            self.encoder = await asyncio.create_subprocess_exec(
                *self.network.sender_prefix, ffmpeg, *common,
                "-probesize", "32", "-analyzeduration", "1",
                "-f", "x11grab", "-draw_mouse", "0", "-framerate", f"{self.fps:g}",
                "-video_size", f"{x.width}x{x.height}", "-i", f"{x.display}+0,0",
                *encoder_args(self.codec, self.bitrate, self.fps),
                "-fps_mode", "passthrough",
                "-progress", str(self.progress_path), "-stats_period", "0.5",
                *rtp_output(ports, self.network.receiver_ip, codec=self.codec, counted=self.counted_path),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    async def _start_player(self, viewer: XServer) -> int:
        """Start ffplay on an RTP port of its own and return the port once it listens."""
        port = free_rtp_port()  # the decoder's are bound by now, so this is another pair
        sdp_path = self.log_dir / f"baseline-{self.index}-player.sdp"
        sdp_path.write_text(sdp(self.codec, port))
        with (self.log_dir / f"baseline-{self.index}-player.log").open("wb") as log:
            self.player = await asyncio.create_subprocess_exec(
                ffplay_path(), *player_args(sdp_path, viewer, self.network),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                env=child_env(viewer.display, **VIEWER_ENV),
            )  # fmt: skip
        await self._wait_listening(port, self.player)
        return port

    async def _wait_listening(
        self, port: int, process: asyncio.subprocess.Process, timeout: float = 10.0
    ) -> None:
        """Until ``process`` has bound its RTP port, so the encoder's first key frame reaches it."""
        if not await port_bound(port, process, timeout):
            raise BenchmarkError(
                "the ffmpeg baseline's receiver did not open its RTP port:\n" + self.describe_failure()
            )

    async def _read(self) -> None:
        assert self.decoder is not None and self.decoder.stdout is not None
        shape = (self.geometry.bottom, self.geometry.right)
        size = (self.xserver.width, self.xserver.height)
        with contextlib.suppress(asyncio.IncompleteReadError):
            while True:
                data = await self.decoder.stdout.readexactly(shape[0] * shape[1])
                self.samples.observe(np.frombuffer(data, dtype=np.uint8).reshape(shape), size)
                self.first_frame.set()

    def bytes_written(self) -> int:
        """Bytes the encoder has muxed so far: its copy's size (with a viewer), else its progress report."""
        if self.player is not None:
            try:
                return self.counted_path.stat().st_size
            except OSError:
                return 0
        try:
            text = self.progress_path.read_text()
        except OSError:
            return 0
        sizes = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("total_size=")]
        numbers = [int(s) for s in sizes if s.strip().isdigit()]
        return numbers[-1] if numbers else 0

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of the sending ffmpeg, and of the receiving side (decoder and ffplay)."""
        assert self.encoder is not None and self.decoder is not None
        receiving = cpu_seconds(self.decoder.pid)
        if self.player is not None:
            receiving += cpu_seconds(self.player.pid)
        return cpu_seconds(self.encoder.pid), receiving

    def describe_failure(self) -> str:
        logs = []
        for part in ("encoder", "decoder", "player"):
            path = self.log_dir / f"baseline-{self.index}-{part}.log"
            with contextlib.suppress(OSError):
                logs.append(f"{part}: {path.read_text(errors='replace')[-1500:]}")
        return "\n".join(logs)

    async def aclose(self) -> None:
        for process in (self.encoder, self.decoder, self.player):
            if process is not None:
                await stop_process(process)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


# -- one run of the ffmpeg side ------------------------------------------------------------------------


async def run_ffmpeg(
    case: Case, xserver: XServer, pattern: PatternChild, settings: Settings, stage: Stage
) -> dict[str, Any]:
    """The ffmpeg/RTP baseline at the bitrate Coalesce reached (per stream, at least 0.5 Mbps).

    With one stream its picture is shown full screen on the room's screen (``stage.room``, ffplay) and
    read there by a glass sampler, as Coalesce's is; the decoder-point figure comes from the pipe decoder.
    With several streams there is no viewer (their windows would cover each other): decoder point only."""
    bitrate = max(MIN_BASELINE_BITRATE, stage.bitrate // case.senders)
    print(f"#   ffmpeg at {bitrate / 1e6:.1f} Mbps per stream", file=sys.stderr, flush=True)
    viewer = stage.room if case.senders == 1 else None
    streams = [
        BaselineStream(
            index, xserver, case.codec, bitrate, settings.fps, settings.log_dir, viewer, network=stage.network
        )
        for index in range(case.senders)
    ]
    glass: Child | None = None
    try:
        for stream in streams:
            await stream.start()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await asyncio.gather(*(s.first_frame.wait() for s in streams))
        except TimeoutError:
            raise BenchmarkError(
                "the ffmpeg baseline decoded no frame:\n" + "\n".join(s.describe_failure() for s in streams)
            ) from None
        first_frame = [s.samples.first_frame_at - s.started_at for s in streams if s.samples.first_frame_at]
        if viewer is not None:
            glass = await start_glass("glass-ffmpeg", viewer.display, settings.log_dir)
        if settings.pin:
            pin_sides(
                [*(s.encoder.pid for s in streams if s.encoder), xserver.pid, pattern.pid],
                [
                    *(p.pid for s in streams for p in (s.decoder, s.player) if p is not None),
                    *([] if viewer is None else [viewer.pid]),
                    *([] if glass is None else [glass.pid]),
                ],
            )
        await asyncio.sleep(settings.warmup)

        def snapshot() -> tuple[float, float, int, tuple[float, float, float], float, float]:
            cpus = [s.cpu() for s in streams]
            return (
                sum(c[0] for c in cpus),
                sum(c[1] for c in cpus),
                sum(s.bytes_written() for s in streams),
                screen_cpu(xserver, pattern),
                0.0 if glass is None else glass.cpu_seconds(),
                0.0 if viewer is None else cpu_seconds(viewer.pid),
            )

        before = snapshot()
        for stream in streams:
            stream.samples.reset()
        if glass is not None:
            await glass.request("begin", source=[case.width, case.height], rect=None)
        began = time.monotonic()
        await asyncio.sleep(settings.seconds)  # the measurement window
        windows = [s.samples.report() for s in streams]
        glass_window = None if glass is None else await glass.request("end")
        elapsed = time.monotonic() - began
        after = snapshot()
        memory = (
            memory_mib([s.encoder.pid for s in streams if s.encoder is not None]),
            memory_mib([p.pid for s in streams for p in (s.decoder, s.player) if p is not None]),
        )
        snapshots = [] if glass is None else await take_snapshots(glass, settings.log_dir, "ffmpeg")
    finally:
        if glass is not None:
            await glass.aclose()
        await asyncio.gather(*(s.aclose() for s in streams))
    return combine(
        [w for w in windows if w["frames"]],
        glass=None if glass_window is None else [glass_window] if glass_window["frames"] else [],
        codec={"h264": "libx264", "vp8": "libvpx"}[case.codec],
        elapsed=elapsed,
        sender_cpu=after[0] - before[0],
        receiver_cpu=after[1] - before[1],
        screen_cpu=cpu_delta(after[3], before[3]),
        glass_cpu=after[4] - before[4],
        room_x_cpu=after[5] - before[5],
        bytes_sent=after[2] - before[2],
        first_frame=first_frame,
        first_frame_from_launch=first_frame,
        capture_drops=None,
        snapshots=snapshots,
        memory=memory,
    )
