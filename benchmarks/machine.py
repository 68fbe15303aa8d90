"""The machine line of a report: CPU, cores, memory, kernel buffers and every version that matters."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import av

from benchmarks import validity
from benchmarks.baseline import ffmpeg_version
from benchmarks.browser import chromium_version


def _sysctl(name: str) -> int | None:
    try:
        return int(Path("/proc/sys", *name.split(".")).read_text())
    except (OSError, ValueError):
        return None


def _soname(library: str) -> str:
    """The installed shared library's file name ("libx264.so.164": its ABI is x264's build number)."""
    found = sorted(Path("/lib/x86_64-linux-gnu").glob(f"{library}.so.*")) + sorted(
        Path("/usr/lib").glob(f"{library}.so.*")
    )
    return found[0].name if found else ""


def machine(load: validity.MachineLoad | None = None) -> dict[str, Any]:
    """What a reader needs to judge the figures: the CPU, its load, the kernel's buffers, every version."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = math.nan
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024**2
                break

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return ""

    return {
        "cpu": cpu,
        "cpus": os.cpu_count() or 0,
        "memory_gib": round(memory, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiortc": version("aiortc"),
        "av": version("av"),
        "av_ffmpeg": str(getattr(av, "ffmpeg_version_info", "")),
        "ffmpeg": ffmpeg_version() if shutil.which("ffmpeg") else "",
        "x264": _soname("libx264"),
        "qt": version("PySide6") or version("PySide6-Essentials"),
        "chromium": chromium_version(),
        "rmem_max": _sysctl("net.core.rmem_max"),
        "busy_before": None if load is None else load.busy,
        "steal_before": None if load is None else load.steal,
        "loadavg_before": None if load is None else load.loadavg,
    }
