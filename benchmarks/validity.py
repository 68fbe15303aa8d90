"""Whether a run's figures can be published: the checks that fail a run, each with the reason it gives.

A benchmark that prints figures measured against a dead pattern window, an idle stream or a machine busy
with someone else's work is worse than none. These are pure functions over a run's result and over
samples of ``/proc/stat``, so the test suite can drive them with recorded figures; :mod:`benchmarks.run`
applies them to every run and marks a failed run ``ok: false`` with the reasons joined in ``error``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MAX_UNREADABLE_RATIO = 0.01
"""Decoded frames (or grabs of the room's screen) whose strip could not be read, above which the latency
figures are not trusted (a blocky or half-painted strip is rare on a working run: 0-2 of ~500 frames
here)."""
MAX_BUSY_FRACTION = 0.25
"""Share of all CPUs busy with other work just before a run, above which the run is refused."""
MAX_STEAL_FRACTION = 0.05
"""Share of CPU time the hypervisor gave to other guests just before a run, above which it is refused."""
LOAD_SAMPLE_SECONDS = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class CpuTimes:
    """Cumulative jiffies of all CPUs from the first line of ``/proc/stat``."""

    total: int
    busy: int
    steal: int

    @classmethod
    def parse(cls, proc_stat: str) -> CpuTimes:
        fields = [int(x) for x in proc_stat.split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        return cls(total=sum(fields), busy=user + nice + system + irq + softirq + steal, steal=steal)

    @classmethod
    def read(cls) -> CpuTimes:
        return cls.parse(Path("/proc/stat").read_text())

    @property
    def busy_seconds(self) -> float:
        """CPU seconds all processors have spent busy (anything but idle and I/O wait) since boot."""
        return self.busy / CLOCK_TICKS


@dataclasses.dataclass(frozen=True)
class MachineLoad:
    """How busy the machine was over a short sample: fractions of all CPUs (0..1), and the load average."""

    busy: float
    steal: float
    loadavg: float

    @classmethod
    def between(
        cls, before: CpuTimes, after: CpuTimes, loadavg: float, own_seconds: float = 0.0
    ) -> MachineLoad:
        """The load between two samples, less ``own_seconds`` of CPU the benchmark's screen used."""
        total = max(1, after.total - before.total)
        own = own_seconds * CLOCK_TICKS
        return cls(
            busy=max(0.0, after.busy - before.busy - own) / total,
            steal=(after.steal - before.steal) / total,
            loadavg=loadavg,
        )


async def sample_load(
    seconds: float = LOAD_SAMPLE_SECONDS, own: Callable[[], float] = lambda: 0.0
) -> MachineLoad:
    """The machine's load over the next ``seconds``, less ``own()``: the CPU seconds of the benchmark's
    X server and pattern window, which keep painting between runs."""
    before, own_before = CpuTimes.read(), own()
    await asyncio.sleep(seconds)  # a measurement interval, not synchronization
    return MachineLoad.between(before, CpuTimes.read(), os.getloadavg()[0], own() - own_before)


def load_problem(
    load: MachineLoad, *, max_busy: float = MAX_BUSY_FRACTION, max_steal: float = MAX_STEAL_FRACTION
) -> str | None:
    """Why the machine is too busy to measure on, or ``None``."""
    if load.steal > max_steal:
        return (
            f"the hypervisor took {load.steal:.0%} of the CPU time just before the run (limit "
            f"{max_steal:.0%}): run again when the host is quieter, or raise --max-steal"
        )
    if load.busy > max_busy:
        return (
            f"other programs kept {load.busy:.0%} of the CPUs busy just before the run "
            f"(limit {max_busy:.0%}, load average {load.loadavg:.1f}): stop them or raise --max-load"
        )
    return None


def result_problems(
    result: Mapping[str, Any], *, streams: int, pattern_exit: int | None, lossy: bool = False
) -> list[str]:
    """Why one side's result cannot be published (empty when it can).

    ``result`` is one side of a run as :mod:`benchmarks.run` builds it; ``streams`` how many streams the
    case has; ``pattern_exit`` the pattern window's exit status, ``None`` while it runs. ``lossy``: the
    case's link loses or reorders packets, so damaged pictures (an unreadable strip) are what is measured
    there, not a fault of the harness, and they do not fail the run.
    """
    problems = []
    if pattern_exit is not None:
        problems.append(
            f"the pattern window exited ({pattern_exit}) during the run, so the screen stood still"
        )
    pattern_cpu = result.get("pattern_cpu")
    if pattern_exit is None and pattern_cpu is not None and pattern_cpu <= 0:
        problems.append("the pattern window used no CPU in the window: it was not painting")
    delivered = int(result.get("streams") or 0)
    if delivered < streams:
        problems.append(f"only {delivered} of {streams} streams delivered frames")
    frames, unreadable = int(result.get("frames") or 0), int(result.get("unreadable_frames") or 0)
    if lossy:
        return problems
    if frames and unreadable / frames > MAX_UNREADABLE_RATIO:
        problems.append(
            f"{unreadable} of {frames} frames ({unreadable / frames:.1%}) had an unreadable timestamp strip "
            f"(limit {MAX_UNREADABLE_RATIO:.0%})"
        )
    grabs, illegible = int(result.get("glass_samples") or 0), int(result.get("glass_unreadable") or 0)
    if grabs and illegible / grabs > MAX_UNREADABLE_RATIO:
        problems.append(
            f"{illegible} of {grabs} grabs of the room's screen ({illegible / grabs:.1%}) showed no legible "
            f"timestamp strip (limit {MAX_UNREADABLE_RATIO:.0%}): the picture is not where the window said"
            " or something covers the strip"
        )
    return problems
