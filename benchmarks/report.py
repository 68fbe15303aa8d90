"""The benchmark's report: its JSON schema as frozen dataclasses, a strict parse, and the README tables.

``benchmarks/results/*.json`` are reports in this schema (``coalesce-benchmark/2``, described in
benchmarks/README.md); :mod:`benchmarks.run` writes them and parses what it wrote before printing, so a
report that prints is one that parses. ``python -m benchmarks report FILE [--readme README.md]`` renders
the tables from a file, and with ``--readme`` puts them between the README's result markers, so the
published tables are always regenerated from a kept report, never edited by hand.

Each run's full result (``runs``) stays a JSON object: the tables read only the per-case summaries,
which this module types; a run's fields are described in the README for plots and audits.
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

SCHEMA = "coalesce-benchmark/2"
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
    """One side (Coalesce or the baseline) of a case, over its runs."""

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
class CaseReport:
    name: str
    width: int
    height: int
    content: str
    codec: str
    senders: int
    coalesce: Summary
    baseline: Summary | None
    ratios: Mapping[str, float | None]
    runs: tuple[Mapping[str, Any], ...]

    @classmethod
    def parse(cls, data: Any, where: str) -> CaseReport:
        obj = _object(data, where)
        ratios = _get(obj, "ratios", dict, where)
        baseline = obj.get("baseline")
        return cls(
            name=_get(obj, "name", str, where),
            width=_get(obj, "width", int, where),
            height=_get(obj, "height", int, where),
            content=_get(obj, "content", str, where),
            codec=_get(obj, "codec", str, where),
            senders=_get(obj, "senders", int, where),
            coalesce=Summary.parse(obj.get("coalesce"), f"{where}.coalesce"),
            baseline=None if baseline is None else Summary.parse(baseline, f"{where}.baseline"),
            ratios={k: _number(ratios, k, f"{where}.ratios") for k in ratios},
            runs=tuple(
                _object(r, f"{where}.runs[{i}]") for i, r in enumerate(_get(obj, "runs", list, where))
            ),
        )


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
        optional = {k: str(obj.get(k) or "") for k in ("av_ffmpeg", "x264", "qt")}
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
    baseline: bool
    runs: int
    max_load: float
    max_steal: float

    @classmethod
    def parse(cls, data: Any, where: str = "settings") -> Settings:
        obj = _object(data, where)
        numbers = {
            k: float(_get(obj, k, (int, float), where))
            for k in ("seconds", "warmup", "fps", "pattern_fps", "max_load", "max_steal")
        }
        return cls(baseline=_get(obj, "baseline", bool, where), runs=_get(obj, "runs", int, where), **numbers)


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
            raise ReportError(f"report: schema is {schema!r}, this version reads {SCHEMA!r}")
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


def _cell(case: CaseReport, figure: str, digits: int, with_baseline: bool, *, spread: bool = False) -> str:
    ours = _span(case.coalesce, figure, digits, spread=spread)
    if not with_baseline:
        return ours
    text = f"{ours} / {_span(case.baseline, figure, digits, spread=spread)}"
    ratio = case.ratios.get(figure)
    return f"{text} ({ratio:.2f}x)" if ratio is not None else text


def _status(case: CaseReport) -> str:
    """' (ffmpeg 1/5 runs failed)' after a case's name when a side had failed runs."""
    notes = []
    for summary, label in ((case.coalesce, "Coalesce"), (case.baseline, "ffmpeg")):
        if summary is not None and summary.ok_runs < summary.runs:
            notes.append(f"{label} {summary.runs - summary.ok_runs}/{summary.runs} runs failed")
    return f" ({'; '.join(notes)})" if notes else ""


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
        f"baseline ffmpeg {m.ffmpeg or 'absent'} ({m.x264 or 'libx264 ?'}); "
        f"{settings.runs} runs per case, {settings.seconds:g} s windows, runs refused above "
        f"{settings.max_load:.0%} other load or {settings.max_steal:.0%} steal; {report.started}"
    )


def format_tables(report: Report) -> str:
    """Two Markdown tables (latency and start-up; throughput and cost), each with the machine under it.

    Each cell is the median over the case's runs that passed the checks (latency with the runs' min-max),
    as ``Coalesce / ffmpeg (ratio)``.
    """
    with_baseline = report.settings.baseline
    rows_a, rows_b = [], []
    for case in report.cases:
        cell = functools.partial(_cell, case, with_baseline=with_baseline)
        name = case.name + _status(case)
        rows_a.append(
            [
                name,
                cell("latency_median_ms", 0, spread=True),
                cell("latency_p95_ms", 0, spread=True),
                cell("latency_max_ms", 0),
                f"{case.coalesce.samples} in {case.coalesce.runs}",
                cell("first_frame_s", 2),
            ]
        )
        rows_b.append(
            [
                name,
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
    versus = " (Coalesce / ffmpeg (ratio))" if with_baseline else ""
    head_a = ["case", "latency median ms", "p95 ms", "max ms", "samples in runs", "first frame s"]
    head_b = [
        "case",
        "fps",
        "unique fps",
        "dropped %",
        "unreadable",
        "sender CPU s/s",
        "receiver CPU s/s",
        "Mbps",
        "other CPU s/s",
    ]
    machine = f"Machine: {machine_line(report)}"
    return (
        f"Glass to decoded frame: latency and time to first frame{versus}\n\n"
        + _markdown(head_a, rows_a)
        + f"\n\n{machine}\n\nFrame rate, CPU and bitrate{versus}\n\n"
        + _markdown(head_b, rows_b)
        + f"\n\n{machine}\n"
    )


def replace_in_readme(readme: str, tables: str) -> str:
    """``readme`` with the text between :data:`README_BEGIN` and :data:`README_END` replaced by ``tables``."""
    begin, end = readme.find(README_BEGIN), readme.find(README_END)
    if begin < 0 or end < begin:
        raise ReportError(f"the README has no result markers; add the lines\n{README_BEGIN}\n{README_END}")
    return readme[: begin + len(README_BEGIN)] + "\n\n" + tables + "\n" + readme[end:]


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks report FILE [--readme PATH]``: print the tables, or write them into a README."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks report", description="Render a benchmark report's tables."
    )
    parser.add_argument("file", type=Path, help="a report, e.g. benchmarks/results/2026-12-01.json")
    parser.add_argument("--readme", type=Path, help="replace the tables between the README's result markers")
    args = parser.parse_args(argv)
    try:
        tables = format_tables(Report.load(args.file))
        if args.readme is not None:
            args.readme.write_text(replace_in_readme(args.readme.read_text(), tables))
        else:
            print(tables)
    except (ReportError, OSError) as exc:
        print(f"benchmark report: {exc}")
        return 2
    return 0
