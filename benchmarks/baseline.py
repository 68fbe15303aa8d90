"""The ffmpeg baseline: the same job as a share, done by two ffmpeg processes per stream.

The sending ffmpeg grabs the same X screen with x11grab, converts to yuv420p with libswscale and encodes
with the encoder settings Coalesce uses (libx264 ``ultrafast``/``zerolatency``, Baseline profile, no
B-frames; or libvpx ``realtime``, ``cpu-used -6``, no lag) at the bitrate Coalesce reached in the same
case; it writes NUT to a pipe. The receiving ffmpeg decodes that pipe (low-delay flags, so no frame
threading and no probing backlog) and writes only the top-left corner of each frame, as grey, to its
stdout, where :class:`BaselineStream` reads the timestamp strip just as the Coalesce receiver does.

NUT rather than MPEG-TS over UDP: NUT frames carry their size, so the decoder gets each frame as soon as
it is written; a TS or raw H.264 demuxer holds a frame until the next one starts, which would add a
whole frame interval to the baseline's latency that is an artefact of the container, not of the job.
The decoder's ``-analyzeduration 1`` (one microsecond) because 0 means FFmpeg's default, 5 s.

The ffmpeg command line itself is not free of delay: x11grab straight to rawvideo, with no codec at all,
measured 33-44 ms from paint to output at 60 fps here, against 10 ms for a direct XShmGetImage. So the
baseline's latency is a reference point, not a lower bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from benchmarks import timecode
from benchmarks.procs import BenchmarkError, XServer, cpu_seconds, stop_process
from benchmarks.samples import StripSamples

KEYFRAME_INTERVAL_S = 2.0


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise BenchmarkError(
            "ffmpeg is not installed (apt-get install ffmpeg) and --no-baseline was not given"
        )
    return path


def ffmpeg_version() -> str:
    try:
        out = subprocess.run([ffmpeg_path(), "-version"], capture_output=True, text=True, check=False).stdout
    except BenchmarkError:
        return ""
    return out.split("\n", 1)[0].removeprefix("ffmpeg version ").split(" ", 1)[0]


def encoder_args(codec: str, bitrate: int, fps: float) -> list[str]:
    gop = str(round(KEYFRAME_INTERVAL_S * fps))
    rate = ["-b:v", str(bitrate), "-maxrate", str(bitrate), "-bufsize", str(bitrate)]
    if codec == "h264":
        return [
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline",
            "-pix_fmt", "yuv420p", *rate, "-g", gop, "-bf", "0",
        ]  # fmt: skip
    if codec == "vp8":
        return [
            "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "-6", "-lag-in-frames", "0",
            "-error-resilient", "1", "-pix_fmt", "yuv420p", *rate, "-g", gop,
        ]  # fmt: skip
    raise ValueError(f"no baseline for codec {codec!r}")


class BaselineStream:
    """One ffmpeg sender and one ffmpeg receiver, connected by a pipe, and the reader of the receiver."""

    def __init__(
        self, index: int, xserver: XServer, codec: str, bitrate: int, fps: float, log_dir: Path
    ) -> None:
        self.index = index
        self.xserver = xserver
        self.codec = codec
        self.bitrate = bitrate
        self.fps = fps
        self.log_dir = log_dir
        self.geometry = timecode.strip_geometry(xserver.width, xserver.height)
        self.samples = StripSamples(self.geometry)
        self.progress_path = log_dir / f"baseline-{index}.progress"
        self.encoder: asyncio.subprocess.Process | None = None
        self.decoder: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self._reader: asyncio.Task[None] | None = None
        self.first_frame = asyncio.Event()

    async def start(self) -> None:
        ffmpeg = ffmpeg_path()
        x = self.xserver
        read_fd, write_fd = os.pipe()
        common = ["-hide_banner", "-loglevel", "warning", "-nostdin"]
        self.started_at = time.monotonic()
        try:
            with (self.log_dir / f"baseline-{self.index}-encoder.log").open("wb") as log:
                self.encoder = await asyncio.create_subprocess_exec(
                    ffmpeg, *common,
                    "-probesize", "32", "-analyzeduration", "1",
                    "-f", "x11grab", "-draw_mouse", "0", "-framerate", f"{self.fps:g}",
                    "-video_size", f"{x.width}x{x.height}", "-i", f"{x.display}+0,0",
                    *encoder_args(self.codec, self.bitrate, self.fps),
                    "-fps_mode", "passthrough", "-flush_packets", "1",
                    "-progress", str(self.progress_path), "-stats_period", "0.5",
                    "-f", "nut", "-write_index", "0", "pipe:1",
                    stdin=subprocess.DEVNULL, stdout=write_fd, stderr=log,
                )  # fmt: skip
            crop = f"crop={self.geometry.right}:{self.geometry.bottom}:0:0,format=gray"
            with (self.log_dir / f"baseline-{self.index}-decoder.log").open("wb") as log:
                self.decoder = await asyncio.create_subprocess_exec(
                    ffmpeg, *common,
                    "-fflags", "nobuffer", "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "1",
                    "-f", "nut", "-i", "pipe:0",
                    "-vf", crop, "-fps_mode", "passthrough", "-flush_packets", "1",
                    "-f", "rawvideo", "pipe:1",
                    stdin=read_fd, stdout=subprocess.PIPE, stderr=log,
                )  # fmt: skip
        finally:
            os.close(read_fd)
            os.close(write_fd)
        self._reader = asyncio.ensure_future(self._read())

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
        """Bytes the encoder has muxed so far, from its latest progress report."""
        try:
            text = self.progress_path.read_text()
        except OSError:
            return 0
        sizes = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("total_size=")]
        numbers = [int(s) for s in sizes if s.strip().isdigit()]
        return numbers[-1] if numbers else 0

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of the sending and the receiving ffmpeg."""
        assert self.encoder is not None and self.decoder is not None
        return cpu_seconds(self.encoder.pid), cpu_seconds(self.decoder.pid)

    def describe_failure(self) -> str:
        logs = []
        for part in ("encoder", "decoder"):
            path = self.log_dir / f"baseline-{self.index}-{part}.log"
            with contextlib.suppress(OSError):
                logs.append(f"{part}: {path.read_text(errors='replace')[-1500:]}")
        return "\n".join(logs)

    async def aclose(self) -> None:
        for process in (self.encoder, self.decoder):
            if process is not None:
                await stop_process(process)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
