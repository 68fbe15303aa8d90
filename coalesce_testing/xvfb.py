"""A private Xvfb: it picks a free display number and writes it to a pipe (``-displayfd``) once it accepts
clients, which is the readiness signal; nothing polls or sleeps.

``-nolisten tcp`` keeps it local; ``-noreset`` keeps the root window (and its colour) when the last client
leaves. Errors are :class:`XvfbError` (:class:`XvfbMissing` when it is not installed), which each caller
maps: a test skips or fails, a benchmark stops, a script exits with the message.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


class XvfbError(RuntimeError):
    """Xvfb could not be started."""


class XvfbMissing(XvfbError):
    def __init__(self) -> None:
        super().__init__("Xvfb is not installed (bash scripts/setup.sh installs it: apt-get install xvfb)")


@dataclass(frozen=True)
class XServer:
    """A running Xvfb: ``display`` (":5"), its screen size, and its process; :meth:`stop` ends it."""

    display: str
    width: int
    height: int
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def env(self, **extra: str) -> dict[str, str]:
        """A copy of this process's environment for a child that should draw on this X server with Qt."""
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env["QT_QPA_PLATFORM"] = "xcb"
        env.pop("WAYLAND_DISPLAY", None)
        env.update(extra)
        return env

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; safe to call again."""
        stop_process(self.process)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> XServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_xvfb(
    width: int,
    height: int,
    *,
    depth: int = 24,
    log_path: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> XServer:
    """A new Xvfb of ``width`` x ``height`` x ``depth``; its output goes to ``log_path`` (else nowhere)."""
    executable = shutil.which("Xvfb")
    if executable is None:
        raise XvfbMissing()
    read_fd, write_fd = os.pipe()
    try:
        with open(log_path or os.devnull, "wb") as log:
            process = subprocess.Popen(
                [executable, "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x{depth}",
                 "-nolisten", "tcp", "-noreset"],
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        os.close(write_fd)
        write_fd = -1
        try:
            number = read_line(read_fd, timeout, "Xvfb -displayfd").strip()
        except BaseException:
            stop_process(process)
            raise
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if not number.isdigit():
        stop_process(process)
        tail = log_path.read_text(errors="replace")[-2000:] if log_path is not None else ""
        raise XvfbError(f"Xvfb {width}x{height} did not start: {tail or 'it exited'}")
    return XServer(display=f":{number}", width=width, height=height, process=process)


def read_line(fd: int, timeout: float, what: str) -> str:
    """One line from a pipe without blocking past ``timeout``; '' when the writer closed it first.

    Raises :class:`TimeoutError` naming ``what`` when no line came in time.
    """
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what}: no line within {timeout:.0f} s (got {data!r})")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return data.decode(errors="replace")
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace")


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; safe on a process that has exited."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
