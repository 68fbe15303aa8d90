"""What a benchmark run is made of: its cases, its settings, what the sides of a case share, and the
standard matrix. Every other module of the orchestrator builds on these."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks import report as report_module
from benchmarks import validity
from benchmarks.links import LOOPBACK, Network
from benchmarks.procs import (
    PatternChild,
    XServer,
)

PIN = "4821"
ROOM_NAME = "Benchmark room"
"""The room the senders find over mDNS (announced only on the receivers' address)."""


START_TIMEOUT = 30.0


DEFAULT_BITRATE = 4_000_000


MIN_BASELINE_BITRATE = 500_000


DEFAULT_SECONDS = 30.0
"""A window long enough for a p99 of 60 Hz samples to rest on ~18 samples, not one."""


PATTERN_RATE = 0.95
"""The content changes a little slower than capture runs, so the phase between the two sweeps round a few
times a second: latency then averages over every phase, as it would for an event at a random moment. At
the same rate, the phase would stay where the processes happened to start, worth up to a frame interval
of difference from one run to the next."""


@dataclasses.dataclass(frozen=True)
class Case:
    width: int
    height: int
    content: str
    codec: str
    senders: int
    link: str = "loopback"
    """A key of :data:`benchmarks.links.LINKS`: the network between the senders and the receivers."""
    bitrate: int | None = None
    """Bits per second each sender's encoder is held at (``--bitrates``), for quality per bitrate; None
    lets Coalesce's congestion control choose, and the rivals are matched to what it reached."""

    @property
    def name(self) -> str:
        base = f"{self.width}x{self.height} {self.content} {self.codec} x{self.senders}"
        if self.link != "loopback":
            base = f"{base} {self.link}"
        return base if self.bitrate is None else f"{base} {self.bitrate / 1e6:g}Mbps"


@dataclasses.dataclass(frozen=True)
class Settings:
    seconds: float
    warmup: float
    fps: float
    pattern_fps: float
    sides: tuple[str, ...]
    log_dir: Path
    profile_dir: Path | None = None
    runs: int = 5
    max_load: float = validity.MAX_BUSY_FRACTION
    max_steal: float = validity.MAX_STEAL_FRACTION
    pin: bool = False
    """Receiving side on CPU 0, sending side on the others (``--pin``; :func:`benchmarks.procs.pin`)."""

    def recorded(self) -> report_module.Settings:
        """What a report keeps of these settings (not where this machine put its logs)."""
        return report_module.Settings(
            seconds=self.seconds,
            warmup=self.warmup,
            fps=self.fps,
            pattern_fps=self.pattern_fps,
            sides=self.sides,
            runs=self.runs,
            max_load=self.max_load,
            max_steal=self.max_steal,
            pin=self.pin,
        )


@dataclasses.dataclass
class Stage:
    """What the sides of one case share besides the senders' screen and its pattern.

    ``room`` is the room's own screen (the same size), where a side shows what it received; ``bitrate`` is
    the rate the rivals are matched to, the one Coalesce last reached in this case (bits per second,
    all streams together)."""

    room: XServer
    bitrate: int
    network: Network = LOOPBACK
    """Where the senders run and the addresses each end uses (:mod:`benchmarks.links`)."""


SideRun = Callable[[Case, XServer, PatternChild, Settings, Stage], Awaitable[dict[str, Any]]]
"""One run of one side: ``(case, the senders' screen, its pattern, settings, stage) -> result``."""


STANDARD_CASES = (
    Case(1920, 1080, "motion", "h264", 1),
    Case(1920, 1080, "static", "h264", 1),
    Case(1280, 720, "motion", "h264", 1),
    Case(1280, 720, "motion", "h264", 1, "loss2"),
    Case(1280, 720, "motion", "h264", 1, "loss5"),
    Case(1280, 720, "motion", "h264", 1, "delay50"),
    Case(1280, 720, "motion", "h264", 1, "cap10"),
)
"""The published matrix: the issue's target case (1080p60 full motion) and a slide deck at 1080p, 720p
motion on loopback and over each impaired link. VP8, several senders and 4K are a ``--codecs``,
``--senders`` or ``--sizes`` away (Chromium takes no part in a multi-share case: it shares one screen to
one receiver)."""


QUICK_CASES = (Case(320, 240, "motion", "h264", 1),)
