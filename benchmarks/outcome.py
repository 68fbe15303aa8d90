"""What one run of one side yields (:func:`combine`), the figures the report keeps of it, and their
summary over a case's runs: medians, ranges and ratios against Coalesce."""

from __future__ import annotations

import math
import statistics
from typing import Any

from benchmarks import validity
from benchmarks.procs import (
    Child,
    XServer,
    cpu_seconds,
)
from benchmarks.samples import latency_summary, summarize_stream

RATIO_FIGURES = (
    "glass_latency_median_ms",
    "glass_latency_p95_ms",
    "glass_latency_p99_ms",
    "glass_latency_max_ms",
    "decoder_latency_median_ms",
    "decoder_latency_p95_ms",
    "decoder_latency_max_ms",
    "displayed_fps",
    "fps",
    "sender_cpu",
    "receiver_cpu",
    "bitrate_mbps",
    "first_frame_s",
)


def failed(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


def screen_cpu(xserver: XServer, pattern: Child) -> tuple[float, float, float]:
    """CPU seconds so far of the X server and the pattern, and of the whole machine."""
    return cpu_seconds(xserver.pid), pattern.cpu_seconds(), validity.CpuTimes.read().busy_seconds


def cpu_delta(
    after: tuple[float, float, float], before: tuple[float, float, float]
) -> tuple[float, float, float]:
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def _mean(streams: list[dict[str, Any]], key: str) -> float:
    values = [s[key] for s in streams if not math.isnan(s[key])]
    return statistics.fmean(values) if values else math.nan


def combine(
    windows: list[dict[str, Any]],
    *,
    glass: list[dict[str, Any]] | None = None,
    codec: str,
    elapsed: float,
    sender_cpu: float,
    receiver_cpu: float,
    screen_cpu: tuple[float, float, float],
    bytes_sent: int,
    first_frame: list[float],
    first_frame_from_launch: list[float],
    capture_drops: int | None,
    glass_cpu: float = 0.0,
    room_x_cpu: float = 0.0,
    snapshots: list[dict[str, Any]] | None = None,
    memory: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """One side's run as the report keeps it.

    ``windows`` are the decoder point's per-stream windows (:meth:`StripSamples.report`), ``glass`` the
    glass sampler's per-stream windows on the side's viewing screen, or ``None`` where the side has no
    glass yet. Every CPU figure is CPU seconds over the window; ``glass_cpu`` (the samplers') and
    ``room_x_cpu`` (the X server of the screen the side shows its picture on) are left out of "other CPU".
    ``memory``: the sending and the receiving side's PSS at the window's end (:func:`procs.memory_mib`).
    """
    own = glass_cpu + room_x_cpu
    streams = [summarize_stream(w) for w in windows]
    decoder = [x for s in streams for x in s["latencies_ms"]]
    seen = [summarize_stream(w) for w in glass] if glass is not None else []
    at_glass = [x for s in seen for x in s["latencies_ms"]]
    # Drops and shown frames at the glass where it is read: what the room saw; else at the decoder.
    counted = seen if glass is not None else streams
    shown = sum(s["shown_frames"] for s in counted)
    dropped = sum(s["dropped_frames"] for s in counted)
    headline = at_glass if glass is not None else decoder
    error = None
    if not decoder and not at_glass:
        error = "no frame with a legible timestamp strip arrived in the window"
    elif glass is not None and not at_glass:
        error = "the room's screen never showed a legible timestamp strip in the window"
    return {
        "ok": error is None and bool(streams or seen),
        "error": error,
        "codec": codec,
        "streams": len(streams) if streams else len(seen),
        "frames": sum(s["frames"] for s in streams),
        "glass_latency_ms": latency_summary(at_glass) if glass is not None else None,
        "decoder_latency_ms": latency_summary(decoder) if windows else None,
        "fps": _mean(streams, "fps"),
        "unique_fps": _mean(streams, "unique_fps"),
        "displayed_fps": _mean(seen, "unique_fps") if glass is not None else None,
        "source_fps": _mean(seen or streams, "source_fps"),
        "dropped_frames": dropped,
        "dropped_ratio": dropped / shown if shown else math.nan,
        "capture_drops": capture_drops,
        "unreadable_frames": sum(s["unreadable_frames"] for s in streams),
        "glass_samples": sum(s["frames"] for s in seen) if glass is not None else None,
        "glass_unreadable": sum(s["unreadable_frames"] for s in seen) if glass is not None else None,
        "sender_cpu": sender_cpu / elapsed,
        "receiver_cpu": receiver_cpu / elapsed,
        "x_server_cpu": screen_cpu[0] / elapsed,
        "pattern_cpu": screen_cpu[1] / elapsed,
        "glass_cpu": glass_cpu / elapsed,
        "room_x_cpu": room_x_cpu / elapsed,
        "other_cpu": max(0.0, screen_cpu[2] - sender_cpu - receiver_cpu - sum(screen_cpu[:2]) - own)
        / elapsed,
        "bitrate_mbps": bytes_sent * 8 / elapsed / 1e6,
        "first_frame_s": statistics.fmean(first_frame) if first_frame else math.nan,
        "first_frame_from_launch_s": statistics.fmean(first_frame_from_launch)
        if first_frame_from_launch
        else math.nan,
        "window_s": elapsed,
        "latencies_ms": headline,
        "decoder_latencies_ms": decoder,
        "snapshots": snapshots or [],
        "per_share": [
            {
                "glass_latency_ms": latency_summary(share["latencies_ms"]),
                "displayed_fps": share["unique_fps"],
            }
            for share in seen
        ],
        "receiver_cpu_per_share": receiver_cpu / elapsed / max(1, len(streams) or len(seen)),
        "sender_memory_mib": None if memory is None else memory[0],
        "receiver_memory_mib": None if memory is None else memory[1],
    }


def _spreadfigures(prefix: str, latency: dict[str, Any] | None) -> dict[str, float]:
    keys = ("median", "p95", "p99", "max")
    if latency is None:
        return {f"{prefix}_{k}_ms": math.nan for k in keys}
    return {f"{prefix}_{k}_ms": latency.get(k, math.nan) for k in keys}


def run_figures(result: dict[str, Any] | None) -> dict[str, float]:
    """The figures of one passed run that :data:`SUMMARY_FIGURES` names (NaN where unmeasured)."""
    if not result or not result.get("ok"):
        return {}
    dropped = result.get("dropped_ratio")
    displayed = result.get("displayed_fps")
    return {
        **_spreadfigures("glass_latency", result.get("glass_latency_ms")),
        **_spreadfigures("decoder_latency", result.get("decoder_latency_ms")),
        "displayed_fps": math.nan if displayed is None else displayed,
        "fps": result["fps"],
        "sender_cpu": result["sender_cpu"],
        "receiver_cpu": result["receiver_cpu"],
        "bitrate_mbps": result["bitrate_mbps"],
        "first_frame_s": result["first_frame_s"],
        "unique_fps": result["unique_fps"],
        "dropped_pct": math.nan if dropped is None else 100 * dropped,
        "unreadable_frames": float(result["unreadable_frames"]),
        "glass_unreadable": math.nan
        if result.get("glass_unreadable") is None
        else result["glass_unreadable"],
        "other_cpu": result["other_cpu"],
        "psnr_db": _or_nan(result.get("psnr_db")),
        "ssim": _or_nan(result.get("ssim")),
        "receiver_cpu_per_share": _or_nan(result.get("receiver_cpu_per_share")),
        "sender_memory_mib": _or_nan(result.get("sender_memory_mib")),
        "receiver_memory_mib": _or_nan(result.get("receiver_memory_mib")),
    }


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


SUMMARY_FIGURES = (
    *RATIO_FIGURES,
    "psnr_db",
    "ssim",
    "receiver_cpu_per_share",
    "sender_memory_mib",
    "receiver_memory_mib",
    "decoder_latency_p99_ms",
    "unique_fps",
    "dropped_pct",
    "unreadable_frames",
    "glass_unreadable",
    "other_cpu",
)
"""Figures summarized over a case's runs (median, min and max of the runs that passed the checks)."""


def summarize_runs(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of each figure over the runs that passed; the failures' reasons beside them."""
    passed = [r for r in results if r.get("ok")]
    figures: dict[str, dict[str, float] | None] = {}
    for key in SUMMARY_FIGURES:
        values = [v for r in passed if not math.isnan(v := run_figures(r).get(key, math.nan))]
        figures[key] = (
            {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None
        )
    return {
        "ok": bool(passed) and len(passed) == len(results),
        "runs": len(results),
        "ok_runs": len(passed),
        "errors": [r["error"] for r in results if not r.get("ok")],
        "codec": passed[0]["codec"] if passed else None,
        "samples": sum(len(r["latencies_ms"]) for r in passed),
        "figures": figures,
    }


def summary_ratios(ours: dict[str, Any], rival: dict[str, Any]) -> dict[str, float | None]:
    """Coalesce's median over the rival's, per figure in :data:`RATIO_FIGURES`."""
    result: dict[str, float | None] = {}
    for key in RATIO_FIGURES:
        a = (ours["figures"].get(key) or {}).get("median")
        b = (rival["figures"].get(key) or {}).get("median")
        result[key] = a / b if a is not None and b else None
    return result


def clean(value: Any) -> Any:
    """NaN and infinities become None and tuples lists, recursively, so the JSON is standard (and is what
    parsing it back gives)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value
