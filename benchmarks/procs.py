"""Child processes of the benchmark: Xvfb, the pattern, receivers, senders and ffmpeg, and their CPU time.

Every process the benchmark measures runs on its own, so its CPU time (user + system, all threads, read
from ``/proc/<pid>/stat``) is its own. Python children talk to the orchestrator in JSON lines: a command
on stdin, one answer on stdout; their logs go to a file in the run's log folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from coalesce_testing import xvfb
from coalesce_testing.xvfb import XServer as XServer  # the benchmark's modules import it from here

STOP_TIMEOUT = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent


class BenchmarkError(Exception):
    """A part of the benchmark could not run (a process did not start or answer)."""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` has used so far, all its threads; 0 once it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # Fields after the command name, which is in parentheses and may itself contain spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a browser's renderers and helpers), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


RECEIVING_CPUS = frozenset({0})


def sending_cpus() -> frozenset[int]:
    """The CPUs ``--pin`` gives the sending side: all but CPU 0 (all of them on a one-CPU machine)."""
    others = frozenset(os.sched_getaffinity(0)) - RECEIVING_CPUS
    return others or RECEIVING_CPUS


def pin(pids: Sequence[int], cpus: frozenset[int]) -> None:
    """Keep every thread of these processes (and of their children) on ``cpus`` from now on.

    Threads are pinned one by one (``/proc/<pid>/task``): the affinity of a process is its threads', and
    threads started later inherit it from the thread that starts them."""
    for root in pids:
        for pid in descendants(root):
            try:
                tasks = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
            except OSError:
                continue
            for task in tasks:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(task, cpus)


def pin_sides(sending: Sequence[int], receiving: Sequence[int]) -> None:
    """``--pin``: the sending processes (with the senders' X server and pattern) on :func:`sending_cpus`,
    the receiving ones (with the room's X server and the glass samplers) on CPU 0."""
    pin(sending, sending_cpus())
    pin(receiving, RECEIVING_CPUS)


def memory_mib(pids: Sequence[int]) -> float:
    """Proportional set size (PSS) of these processes together, in MiB; 0 for those that have exited.

    PSS rather than RSS: a page several processes share (a browser's libraries, a forked helper's) is
    counted once over them, split, so a side of many processes is not charged for its sharing."""
    total_kib = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total_kib += int(line.split()[1])
                break
    return total_kib / 1024


def child_env(display: str | None = None, *, address: str = "127.0.0.1", **extra: str) -> dict[str, str]:
    """This environment for a child: the project importable, Qt on xcb, ICE on ``address`` only."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["COALESCE_ICE_HOST_ADDRESSES"] = address
    if display is not None:
        env["DISPLAY"] = display
        env["QT_QPA_PLATFORM"] = "xcb"
        env.pop("WAYLAND_DISPLAY", None)
    env.update(extra)
    return env


async def stop_process(process: asyncio.subprocess.Process, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; safe on a process that has exited."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


async def start_xvfb(width: int, height: int, log_path: Path) -> XServer:
    """A private ``width`` x ``height`` x 24 Xvfb (:func:`coalesce_testing.xvfb.start_xvfb`)."""
    try:
        return await asyncio.to_thread(xvfb.start_xvfb, width, height, log_path=log_path)
    except (xvfb.XvfbError, TimeoutError) as exc:
        raise BenchmarkError(str(exc)) from exc


ANSWER_LIMIT = 64 * 1024 * 1024
"""Longest line a child may answer with: a receiver's "end" carries every glass sample of every stream
(four 30 s streams at 60 Hz are a few MB), far past asyncio's default 64 KiB line limit."""


class Child:
    """A Python child speaking JSON lines: :meth:`request` sends a command and returns its answer."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path
        self.spawned_at = time.monotonic()

    @classmethod
    async def spawn(
        cls,
        name: str,
        module: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        prefix: Sequence[str] = (),
    ) -> Self:
        """``python -m module args``, after ``prefix`` (``ip netns exec NAME`` runs it in a namespace; that
        command execs, so the child's pid is the Python process's)."""
        log_path = log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            spawned_at = time.monotonic()
            process = await asyncio.create_subprocess_exec(
                *prefix,
                sys.executable,
                "-m",
                module,
                *args,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=str(ROOT),
                limit=ANSWER_LIMIT,
            )
        child = cls(name, process, log_path)
        child.spawned_at = spawned_at
        return child

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    async def read(self, timeout: float) -> dict[str, Any]:
        """The next JSON line the child prints."""
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchmarkError(
                f"{self.name} gave no answer within {timeout:.0f} s; its log ends with:\n"
                + _tail(self.log_path)
            ) from None
        if not line:
            await self.process.wait()
            raise BenchmarkError(
                f"{self.name} exited ({self.process.returncode}); its log ends with:\n{_tail(self.log_path)}"
            )
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise BenchmarkError(f"{self.name}: {message['error']}")
        return message

    async def request(self, command: str, answer_within: float = 30.0, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": command, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        return await self.read(answer_within)

    async def aclose(self) -> None:
        """Ask the child to quit (close its stdin), then make sure it has."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            await stop_process(self.process)


@dataclass(frozen=True)
class PatternRecord:
    """What the pattern writes so that any frame it painted can be rebuilt (:mod:`benchmarks.quality`).

    ``frames_log``: one line per painted frame, ``counter timestamp_ms dx dy``; ``background``: the picture
    every frame is cut from, RGB ``uint8`` (``numpy.save``). See :mod:`benchmarks.pattern`.
    """

    frames_log: Path
    background: Path

    @classmethod
    def in_folder(cls, log_dir: Path, name: str) -> PatternRecord:
        return cls(log_dir / f"{name}.frames.log", log_dir / f"{name}.background.npy")

    def pattern_args(self) -> list[str]:
        """The pattern's options that make it write this record."""
        return ["--frames-log", str(self.frames_log), "--background", str(self.background)]


class PatternChild(Child):
    """The pattern's process; ``record`` is where it writes what it painted (set by :func:`start_pattern`)."""

    record: PatternRecord


async def start_pattern(content: str, fps: float, xserver: XServer, log_dir: Path) -> PatternChild:
    """The pattern window on ``xserver``; returns once it has painted its first full frame."""
    name = f"pattern-{xserver.width}x{xserver.height}-{content}"
    record = PatternRecord.in_folder(log_dir, name)
    child = await PatternChild.spawn(
        name,
        "benchmarks.pattern",
        [content, "--fps", str(fps), *record.pattern_args()],
        child_env(xserver.display),
        log_dir,
    )
    child.record = record
    assert child.process.stdout is not None
    try:
        line = await asyncio.wait_for(child.process.stdout.readline(), 30.0)
    except TimeoutError:
        line = b""
    if line.strip() != b"ready":
        await child.aclose()
        raise BenchmarkError(f"the pattern window did not start: {_tail(child.log_path)}")
    return child


# -- the child side ---------------------------------------------------------------------------------


def emit(message: Mapping[str, Any]) -> None:
    """Print one JSON line for the orchestrator (children only)."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def commands() -> asyncio.StreamReader:
    """stdin as an asyncio stream (children only)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader
