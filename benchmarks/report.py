"""The benchmark's report: its JSON schema as frozen dataclasses, a strict parse, and the README tables.

``benchmarks/results/*.json`` are reports in this schema (``coalesce-benchmark/3``, described in
benchmarks/README.md); :mod:`benchmarks.run` writes them and parses what it wrote before printing, so a
report that prints is one that parses. ``python -m benchmarks report FILE [FILE ...] [--readme README.md]``
renders the tables from files (one set each, under its file name), and with ``--readme`` puts them
between the README's result markers, so the published tables are always regenerated from kept reports,
never edited by hand.

Each run's full result (``runs``) stays a JSON object: the tables read only the per-case summaries,
which this module types; a run's fields are described in the README for plots and audits.

Older schemas are refused by name, not guessed at: schema 2 had one fixed rival ("baseline") and its only
latency was at the decoder, so reading it as schema 3 would put decoder figures in the glass column.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA = "coalesce-benchmark/3"
OURS = "coalesce"
SIDE_LABELS = {
    "coalesce": "Coalesce",
    "ffmpeg": "ffmpeg",
    "chromium": "Chromium",
    "web": "Chromium page → Coalesce",
}
README_BEGIN = "<!-- benchmark-results:begin (python -m benchmarks report results/FILE.json --readme) -->"
README_END = "<!-- benchmark-results:end -->"


class ReportError(Exception):
    """A report file that is not valid JSON in :data:`SCHEMA`; the message names the field."""


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ReportError(f"{where}: the field {key!r} is missing")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise ReportError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _number(data: Mapping[str, Any], key: str, where: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportError(f"{where}.{key}: expected a number or null, got {value!r}")
    return float(value)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ReportError(f"{where}: expected an object, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Spread:
    """A figure over a case's passed runs."""

    median: float
    min: float
    max: float

    @classmethod
    def parse(cls, data: Any, where: str) -> Spread:
        obj = _object(data, where)
        values = [_get(obj, key, (int, float), where) for key in ("median", "min", "max")]
        return cls(*(float(v) for v in values))


@dataclasses.dataclass(frozen=True)
class Summary:
    """One side (Coalesce or a rival) of a case, over its runs."""

    ok: bool
    runs: int
    ok_runs: int
    errors: tuple[str, ...]
    codec: str | None
    samples: int
    figures: Mapping[str, Spread | None]

    @classmethod
    def parse(cls, data: Any, where: str) -> Summary:
        obj = _object(data, where)
        errors = _get(obj, "errors", list, where)
        if not all(isinstance(e, str) for e in errors):
            raise ReportError(f"{where}.errors: expected strings")
        codec = obj.get("codec")
        if codec is not None and not isinstance(codec, str):
            raise ReportError(f"{where}.codec: expected a string or null, got {codec!r}")
        figures = _get(obj, "figures", dict, where)
        return cls(
            ok=_get(obj, "ok", bool, where),
            runs=_get(obj, "runs", int, where),
            ok_runs=_get(obj, "ok_runs", int, where),
            errors=tuple(errors),
            codec=codec,
            samples=_get(obj, "samples", int, where),
            figures={
                k: None if v is None else Spread.parse(v, f"{where}.figures.{k}") for k, v in figures.items()
            },
        )


@dataclasses.dataclass(frozen=True)
class Floor:
    """The glass sampler reading the senders' own screen, once per case: what the sampling alone costs."""

    latency_median_ms: float | None
    latency_p95_ms: float | None
    displayed_fps: float | None
    samples: int
    unreadable: int

    @classmethod
    def parse(cls, data: Any, where: str) -> Floor:
        obj = _object(data, where)
        latency = _object(_get(obj, "latency_ms", dict, where), f"{where}.latency_ms")
        return cls(
            latency_median_ms=_number(latency, "median", f"{where}.latency_ms"),
            latency_p95_ms=_number(latency, "p95", f"{where}.latency_ms"),
            displayed_fps=_number(obj, "displayed_fps", where),
            samples=_get(obj, "samples", int, where),
            unreadable=_get(obj, "unreadable", int, where),
        )


@dataclasses.dataclass(frozen=True)
class CaseReport:
    name: str
    width: int
    height: int
    content: str
    codec: str
    senders: int
    link: str
    """The network between senders and receivers (``loopback``, or a key of ``benchmarks.links.LINKS``)."""
    bitrate: int | None
    """Bit/s each sender was held at (``--bitrates``); None (or absent) when Coalesce chose its own."""
    sides: Mapping[str, Summary]
    """Per side by name, Coalesce first."""
    ratios: Mapping[str, Mapping[str, float | None]]
    """Per rival: Coalesce's median over the rival's, per figure."""
    floor: Floor | None
    runs: tuple[Mapping[str, Any], ...]

    @classmethod
    def parse(cls, data: Any, where: str) -> CaseReport:
        obj = _object(data, where)
        sides = _get(obj, "sides", dict, where)
        if OURS not in sides:
            raise ReportError(f"{where}.sides: Coalesce's side {OURS!r} is missing")
        ratios = _get(obj, "ratios", dict, where)
        for rival in ratios:
            if rival not in sides or rival == OURS:
                raise ReportError(f"{where}.ratios.{rival}: not a rival in this case's sides")
        floor = obj.get("floor")
        return cls(
            name=_get(obj, "name", str, where),
            width=_get(obj, "width", int, where),
            height=_get(obj, "height", int, where),
            content=_get(obj, "content", str, where),
            codec=_get(obj, "codec", str, where),
            senders=_get(obj, "senders", int, where),
            link=_get(obj, "link", str, where),
            bitrate=None if obj.get("bitrate") is None else _get(obj, "bitrate", int, where),
            sides={k: Summary.parse(v, f"{where}.sides.{k}") for k, v in sides.items()},
            ratios={
                rival: {
                    k: _number(figures, k, f"{where}.ratios.{rival}")
                    for k in _object(figures, f"{where}.ratios.{rival}")
                }
                for rival, figures in ratios.items()
            },
            floor=None if floor is None else Floor.parse(floor, f"{where}.floor"),
            runs=tuple(
                _object(r, f"{where}.runs[{i}]") for i, r in enumerate(_get(obj, "runs", list, where))
            ),
        )

    @property
    def rivals(self) -> list[str]:
        return [side for side in self.sides if side != OURS]


@dataclasses.dataclass(frozen=True)
class Machine:
    cpu: str
    cpus: int
    memory_gib: float | None
    kernel: str
    python: str
    aiortc: str
    av: str
    av_ffmpeg: str
    ffmpeg: str
    x264: str
    qt: str
    chromium: str
    rmem_max: int | None
    busy_before: float | None
    steal_before: float | None
    loadavg_before: float | None

    @classmethod
    def parse(cls, data: Any, where: str = "machine") -> Machine:
        obj = _object(data, where)
        rmem = obj.get("rmem_max")
        if rmem is not None and not isinstance(rmem, int):
            raise ReportError(f"{where}.rmem_max: expected an integer or null, got {rmem!r}")
        text = {k: _get(obj, k, str, where) for k in ("cpu", "kernel", "python", "aiortc", "av", "ffmpeg")}
        optional = {k: str(obj.get(k) or "") for k in ("av_ffmpeg", "x264", "qt", "chromium")}
        return cls(
            cpus=_get(obj, "cpus", int, where),
            memory_gib=_number(obj, "memory_gib", where),
            rmem_max=rmem,
            busy_before=_number(obj, "busy_before", where),
            steal_before=_number(obj, "steal_before", where),
            loadavg_before=_number(obj, "loadavg_before", where),
            **text,
            **optional,
        )


@dataclasses.dataclass(frozen=True)
class Settings:
    seconds: float
    warmup: float
    fps: float
    pattern_fps: float
    sides: tuple[str, ...]
    runs: int
    max_load: float
    max_steal: float
    pin: bool

    @classmethod
    def parse(cls, data: Any, where: str = "settings") -> Settings:
        obj = _object(data, where)
        numbers = {
            k: float(_get(obj, k, (int, float), where))
            for k in ("seconds", "warmup", "fps", "pattern_fps", "max_load", "max_steal")
        }
        sides = _get(obj, "sides", list, where)
        if not sides or sides[0] != OURS or not all(isinstance(x, str) for x in sides):
            raise ReportError(f"{where}.sides: expected side names with {OURS!r} first, got {sides!r}")
        return cls(
            sides=tuple(sides),
            runs=_get(obj, "runs", int, where),
            pin=_get(obj, "pin", bool, where),
            **numbers,
        )


@dataclasses.dataclass(frozen=True)
class Report:
    started: str
    wall_seconds: float
    machine: Machine
    settings: Settings
    cases: tuple[CaseReport, ...]

    @classmethod
    def parse(cls, data: Any) -> Report:
        obj = _object(data, "report")
        schema = obj.get("schema")
        if schema != SCHEMA:
            raise ReportError(
                f"report: schema is {schema!r}, this version reads {SCHEMA!r} only (older reports have no"
                " figure at the room's glass; their tables stay in the README as text)"
            )
        cases = _get(obj, "cases", list, "report")
        return cls(
            started=_get(obj, "started", str, "report"),
            wall_seconds=float(_get(obj, "wall_seconds", (int, float), "report")),
            machine=Machine.parse(obj.get("machine")),
            settings=Settings.parse(obj.get("settings")),
            cases=tuple(CaseReport.parse(c, f"cases[{i}]") for i, c in enumerate(cases)),
        )

    @classmethod
    def load(cls, path: Path) -> Report:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ReportError(f"{path}: cannot read a JSON report ({exc})") from exc
        try:
            return cls.parse(data)
        except ReportError as exc:
            raise ReportError(f"{path}: {exc}") from exc


# -- the tables ----------------------------------------------------------------------------------------


def _format(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}f}"


def _span(summary: Summary | None, figure: str, digits: int, *, spread: bool) -> str:
    """A figure's median over the runs, with its min-max when ``spread`` and more than one run passed."""
    value = None if summary is None else summary.figures.get(figure)
    if value is None or summary is None:
        return "-"
    text = _format(value.median, digits)
    if spread and summary.ok_runs > 1:
        text += f" ({_format(value.min, digits)}-{_format(value.max, digits)})"
    return text


def _cell(case: CaseReport, rivals: Iterable[str], figure: str, digits: int, *, spread: bool = False) -> str:
    """``Coalesce / rival (ratio) / ...``: each side's median, each rival's with Coalesce's ratio to it, in
    the report's order of ``rivals``; ``n/a`` for a rival this case did not run (Chromium shares one
    screen to one receiver, so it has no multi-share case)."""
    parts = [_span(case.sides[OURS], figure, digits, spread=spread)]
    for rival in rivals:
        if rival not in case.sides:
            parts.append("n/a")
            continue
        text = _span(case.sides[rival], figure, digits, spread=spread)
        ratio = case.ratios.get(rival, {}).get(figure)
        parts.append(f"{text} ({ratio:.2f}x)" if ratio is not None else text)
    return " / ".join(parts)


def _status(case: CaseReport) -> str:
    """' (ffmpeg 1/5 runs failed)' after a case's name when a side had failed runs."""
    notes = []
    for side, summary in case.sides.items():
        if summary.ok_runs < summary.runs:
            notes.append(
                f"{SIDE_LABELS.get(side, side)} {summary.runs - summary.ok_runs}/{summary.runs} runs failed"
            )
    return f" ({'; '.join(notes)})" if notes else ""


def _floor(case: CaseReport) -> str:
    floor = case.floor
    if floor is None:
        return "-"
    return f"{_format(floor.latency_median_ms, 0)} ({_format(floor.displayed_fps, 0)} fps)"


def _markdown(head: list[str], rows: Iterable[list[str]]) -> str:
    table = [head, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, table[1:])])


def machine_line(report: Report) -> str:
    m, settings = report.machine, report.settings
    steal = "" if m.steal_before is None else f", steal {m.steal_before:.1%} before the run"
    return (
        f"{m.cpu}, {m.cpus} CPUs, {_format(m.memory_gib, 1)} GiB{steal}; Linux {m.kernel}, "
        f"net.core.rmem_max {m.rmem_max if m.rmem_max is not None else '?'}; Python {m.python}, "
        f"aiortc {m.aiortc}, PyAV {m.av} (FFmpeg {m.av_ffmpeg or '?'}), Qt {m.qt or '?'}; "
        f"rivals ffmpeg {m.ffmpeg or 'absent'} ({m.x264 or 'libx264 ?'}), Chromium {m.chromium or 'absent'}; "
        f"{settings.runs} runs per case, {settings.seconds:g} s windows, runs refused above "
        f"{settings.max_load:.0%} other load or {settings.max_steal:.0%} steal"
        + ("; receiving side pinned to CPU 0, sending side to the others" if settings.pin else "")
        + f"; {report.started}"
    )


def format_tables(report: Report) -> str:
    """Three Markdown tables (at the room's glass; at the decoder and what it costs; the picture's quality
    and memory), each with the machine.

    Each cell is the median over the case's runs that passed the checks (latency with the runs' min-max),
    as ``Coalesce / rival (ratio) / ...`` in the order of the report's sides, the ratio being Coalesce's
    median over that rival's. A rival whose glass is not read yet shows ``-`` there.
    """
    rows_a, rows_b, rows_c = [], [], []
    for case in report.cases:
        cell = functools.partial(_cell, case, report.settings.sides[1:])
        name = case.name + _status(case)
        rows_a.append(
            [
                name,
                cell("glass_latency_median_ms", 0, spread=True),
                cell("glass_latency_p95_ms", 0, spread=True),
                cell("glass_latency_p99_ms", 0),
                cell("glass_latency_max_ms", 0),
                cell("displayed_fps", 1),
                _floor(case),
                f"{case.sides[OURS].samples} in {case.sides[OURS].runs}",
                cell("first_frame_s", 2),
            ]
        )
        rows_c.append(
            [
                name,
                cell("psnr_db", 1),
                cell("ssim", 3),
                cell("bitrate_mbps", 1),
                cell("sender_memory_mib", 0),
                cell("receiver_memory_mib", 0),
                cell("receiver_cpu_per_share", 2),
            ]
        )
        rows_b.append(
            [
                name,
                cell("decoder_latency_median_ms", 0, spread=True),
                cell("decoder_latency_p95_ms", 0),
                cell("fps", 1),
                cell("unique_fps", 1),
                cell("dropped_pct", 0),
                cell("unreadable_frames", 0),
                cell("sender_cpu", 2),
                cell("receiver_cpu", 2),
                cell("bitrate_mbps", 1),
                cell("other_cpu", 2),
            ]
        )
    labels = [SIDE_LABELS.get(side, side) for side in report.settings.sides]
    versus = f" ({' / '.join([labels[0], *(f'{label} (ratio)' for label in labels[1:])])})"
    head_a = [
        "case",
        "glass median ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "displayed fps",
        "floor ms",
        "samples in runs",
        "first frame s",
    ]
    head_b = [
        "case",
        "decoder median ms",
        "p95 ms",
        "decoded fps",
        "unique fps",
        "dropped %",
        "unreadable",
        "sender CPU s/s",
        "receiver CPU s/s",
        "Mbps",
        "other CPU s/s",
    ]
    head_c = [
        "case",
        "PSNR dB",
        "SSIM",
        "Mbps",
        "sender memory MiB",
        "receiver memory MiB",
        "receiver CPU s/s per share",
    ]
    machine = f"Machine: {machine_line(report)}"
    return (
        f"Glass to glass at the room's screen: latency, displayed fps, first frame{versus}\n\n"
        + _markdown(head_a, rows_a)
        + f"\n\n{machine}\n\n"
        + f"At the decoder (screen to decoded frame), frame rate, CPU and bitrate{versus}\n\n"
        + _markdown(head_b, rows_b)
        + f"\n\n{machine}\n\n"
        + f"The picture at the glass (against the frame the pattern painted) and memory{versus}\n\n"
        + _markdown(head_c, rows_c)
        + f"\n\n{machine}\n"
    )


def replace_in_readme(readme: str, tables: str) -> str:
    """``readme`` with the text between :data:`README_BEGIN` and :data:`README_END` replaced by ``tables``."""
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        raise ReportError(f"the README has no result markers; add the lines\n{README_BEGIN}\n{README_END}")
    return readme[: begin + len(README_BEGIN)] + "\n\n" + tables + "\n" + readme[end:]


def _titled(path: Path, title: bool) -> str:
    """The tables of the report at ``path``, under its file name when several reports are rendered."""
    tables = format_tables(Report.load(path))
    return f"#### From `results/{path.name}`\n\n{tables}" if title else tables


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks report FILE [FILE ...] [--readme PATH]``: print the tables, or write them
    into a README."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks report", description="Render a benchmark report's tables."
    )
    parser.add_argument(
        "files", nargs="+", type=Path, help="reports, e.g. benchmarks/results/2026-12-01-glass.json"
    )
    parser.add_argument("--readme", type=Path, help="replace the tables between the README's result markers")
    args = parser.parse_args(argv)
    try:
        tables = "\n".join(_titled(path, len(args.files) > 1) for path in args.files)
        if args.readme is not None:
            args.readme.write_text(replace_in_readme(args.readme.read_text(), tables))
        else:
            print(tables)
    except (ReportError, OSError) as exc:
        print(f"benchmark report: {exc}")
        return 2
    return 0
