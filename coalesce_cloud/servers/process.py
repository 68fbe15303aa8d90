"""Child processes for the cloud's servers: start one, wait until it is ready, stop it by PID.

:class:`ManagedProcess` owns one server process. It starts the process in a session (and so a process
group) of its own, with stdin closed and stdout+stderr appended to a log file in the server's state
directory. Readiness is a callback (a TCP port accepting, an HTTP check) polled until a deadline; the pause
between probes is a wait on the process itself, so a server that dies while starting is reported at once,
with the tail of its log. Stopping sends one signal (SIGTERM unless told otherwise), escalates to SIGKILL
after a timeout, and then kills whatever is left in the process group: helpers the server forked (beam.smp
under the ejabberdctl shell, postgres backends) cannot outlive it. The exit is observed before the process
is reaped (pidfd on Linux, ``waitid(WNOWAIT)`` elsewhere), so the group id cannot have been reused when it
is signalled.

No server outlives us: each child asks the kernel (Linux ``PR_SET_PDEATHSIG``) for SIGKILL when its parent
dies, so a ``coalesce-cloud up`` that is itself SIGKILLed takes its servers with it. That signal fires when
the *thread* that forked the child exits, not the process, so the fork happens in a thread of our own that
lives exactly as long as the child (a worker thread of ``asyncio.to_thread`` may end earlier). Helpers a
server forks do not inherit the setting; a server that forks its real work off (ejabberdctl runs erl as its
child) passes it on itself (see :mod:`coalesce_cloud.servers.ejabberd.node`).

The blocking API (``start``/``stop``) suits fixtures and CLIs; ``async_start``/``aclose`` run it in a
worker thread for asyncio callers.
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import contextlib
import ctypes
import functools
import logging
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from coalesce_cloud.servers.errors import (
    ServerNotInstalledError,
    ServerStartError,
    ServerStopError,
)

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], bool]
"""Returns True once the server answers; must not block for long (use short socket timeouts)."""

DEFAULT_START_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 15.0
FIRST_PROBE_INTERVAL = 0.01
MAX_PROBE_INTERVAL = 0.25
LOG_TAIL_CHARS = 3000
PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""


def find_executable(name: str, *, package: str, search: Sequence[Path] = ()) -> Path:
    """The path of ``name``, looked up in ``search`` first and then on PATH (and /usr/sbin, /sbin).

    Raises :class:`ServerNotInstalledError` naming the Debian ``package`` to install.
    """
    for directory in search:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    path = os.environ.get("PATH", os.defpath) + os.pathsep + "/usr/sbin:/sbin"
    found = shutil.which(name, path=path)
    if found is None:
        raise ServerNotInstalledError(
            f"{name} is not installed: install the Debian package {package} (bash scripts/setup.sh does)"
        )
    return Path(found)


def tcp_port_accepts(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """True if a TCP connection to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, *, method: str = "POST", body: bytes = b"{}", timeout: float = 2.0) -> int | None:
    """The HTTP status ``url`` answers with, or None when nothing answers (refused, reset, timeout)."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True if a process with this PID exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # The state follows the command name, which is in parentheses and may itself contain spaces.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in {"Z", "X"}


class ManagedProcess:
    """One server process in a process group of its own, logging to ``log_path``.

    ``user`` (only when running as root) runs the process as that system user, with its primary group
    and no supplementary groups; the PID stays the server's own (no ``su`` in between). Used as a context
    manager it stops the process on exit; starting is up to the caller (:meth:`start` needs a readiness
    check). ``parent_death_signal`` is what the process gets if we die without stopping it (Linux only;
    None: nothing, it is orphaned).
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str | Path],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        parent_death_signal: signal.Signals | None = signal.SIGKILL,
    ) -> None:
        self.name = name
        self.args = [str(arg) for arg in args]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self.parent_death_signal = parent_death_signal
        self._popen: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} running={self.running}>"

    # ------------------------------------------------------------------------------------------ state

    @property
    def pid(self) -> int | None:
        """The PID of the last process started (also its process-group id), None before ``start``."""
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.returncode is None and not self._exited_unreaped()

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode if self._popen is not None else None

    def log_tail(self, limit: int = LOG_TAIL_CHARS) -> str:
        """The end of what the current run wrote to its log ('' when there is nothing)."""
        try:
            with self.log_path.open("rb") as log_file:
                size = log_file.seek(0, os.SEEK_END)
                log_file.seek(max(self._log_offset, size - limit))
                return log_file.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    # ----------------------------------------------------------------------------------------- start

    def launch(self) -> None:
        """Start the process without waiting for it to be ready (see :meth:`wait_ready`)."""
        if self.running:
            raise ServerStartError(f"{self.name} is already running (pid {self.pid})")
        self._popen = None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        user_kwargs: dict[str, object] = {}
        if self.user is not None and os.geteuid() == 0:
            entry = pwd.getpwnam(self.user)
            user_kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        with self.log_path.open("ab") as log_file:
            self._log_offset = log_file.tell()
            log.debug("starting %s: %s", self.name, " ".join(self.args))

            def spawn(preexec_fn: Callable[[], None] | None) -> subprocess.Popen[bytes]:
                return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
                    self.args,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    env=self.env,
                    start_new_session=True,
                    preexec_fn=preexec_fn,
                    **user_kwargs,
                )

            try:
                self._popen = _spawn_tied_to_us(spawn, self.parent_death_signal, self.name)
            except OSError as exc:
                raise ServerStartError(f"could not run {self.name} ({self.args[0]}): {exc.strerror}") from exc
        self._pidfd = None
        if hasattr(os, "pidfd_open"):
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(self._popen.pid)
        log.info("%s started (pid %d, log %s)", self.name, self._popen.pid, self.log_path)

    def wait_ready(self, ready: ReadinessCheck, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Poll ``ready`` until it returns True; raise :class:`ServerStartError` if the process exits first
        or the deadline passes (the process is left running in that case: call :meth:`stop`)."""
        if self._popen is None:
            raise ServerStartError(f"{self.name} was never started")
        deadline = time.monotonic() + timeout
        interval = FIRST_PROBE_INTERVAL
        while not ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerStartError(
                    f"{self.name} (pid {self.pid}) was not ready within {timeout:.0f} s; "
                    f"end of {self.log_path}:\n{self.log_tail()}"
                )
            if self._wait_exited(min(interval, remaining)):
                code = self._reap()
                raise ServerStartError(
                    f"{self.name} exited with status {code} before it was ready; "
                    f"end of {self.log_path}:\n{self.log_tail()}"
                )
            interval = min(interval * 2, MAX_PROBE_INTERVAL)

    def start(self, ready: ReadinessCheck | None = None, *, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Start the process and wait until ``ready`` (if given) says so; on failure nothing is left."""
        began = time.monotonic()
        self.launch()
        if ready is None:
            return
        try:
            self.wait_ready(ready, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        log.info("%s ready in %.2f s", self.name, time.monotonic() - began)

    # ------------------------------------------------------------------------------------------ stop

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the process (not its group); nothing happens once it has exited."""
        if self._popen is not None and self._popen.returncode is None and not self._exited_unreaped():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._popen.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to exit; True if it has (it is then reaped)."""
        if self._popen is None:
            return True
        if self._popen.returncode is None and not self._wait_exited(timeout):
            return False
        self._reap()
        return True

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop the process: ``stop_signal``, then SIGKILL after ``timeout`` (default ``stop_timeout``), then
        SIGKILL for anything left in its process group. Returns the exit status; safe to call again."""
        if self._popen is None:
            return None
        if self._popen.returncode is not None:
            return self._popen.returncode
        timeout = self.stop_timeout if timeout is None else timeout
        began = time.monotonic()
        if not self._exited_unreaped():
            self.send_signal(self.stop_signal)
            if not self._wait_exited(timeout):
                log.warning(
                    "%s (pid %d) ignored %s for %.1f s; killing it",
                    self.name,
                    self._popen.pid,
                    self.stop_signal.name,
                    timeout,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._popen.pid, signal.SIGKILL)
                if not self._wait_exited(timeout):
                    raise ServerStopError(f"{self.name} (pid {self._popen.pid}) survived SIGKILL")
        code = self._reap()
        log.info(
            "%s stopped (pid %d, status %s) in %.2f s",
            self.name,
            self._popen.pid,
            code,
            time.monotonic() - began,
        )
        return code

    async def async_start(
        self, ready: ReadinessCheck | None = None, *, timeout: float = DEFAULT_START_TIMEOUT
    ) -> None:
        await asyncio.to_thread(self.start, ready, timeout=timeout)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -------------------------------------------------------------------------------------- internals

    def _exited_unreaped(self) -> bool:
        """True once the process has exited, without reaping it (its PID, hence its group id, stays taken)."""
        assert self._popen is not None
        if self._popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self._popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _wait_exited(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to exit, without reaping it."""
        if self._exited_unreaped():
            return True
        if self._pidfd is not None:
            readable, _, _ = select.select([self._pidfd], [], [], max(0.0, timeout))
            return bool(readable) or self._exited_unreaped()
        deadline = time.monotonic() + timeout
        while not self._exited_unreaped():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(MAX_PROBE_INTERVAL, remaining))
        return True

    def _reap(self) -> int:
        """Kill what is left of the process group of an exited process, then reap the process."""
        assert self._popen is not None
        if self._popen.returncode is None:
            pgid = self._popen.pid
            leftovers = living_group_members(pgid, exclude=pgid)
            if leftovers:
                log.warning("%s left processes %s in its group; killing them", self.name, leftovers)
            # Harmless when the group holds only the zombie leader; catches stragglers /proc cannot show.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            if leftovers:
                self._wait_group_gone(pgid)
        code = self._popen.wait()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return code

    def _wait_group_gone(self, pgid: int) -> None:
        """SIGKILL is delivered asynchronously: wait until the stragglers are really dead (or zombies)."""
        deadline = time.monotonic() + self.stop_timeout
        interval = FIRST_PROBE_INTERVAL
        while survivors := living_group_members(pgid, exclude=pgid):
            if time.monotonic() >= deadline:
                raise ServerStopError(f"processes {survivors} of {self.name} survived SIGKILL")
            time.sleep(interval)
            interval = min(interval * 2, MAX_PROBE_INTERVAL)


_Spawn = Callable[[Callable[[], None] | None], "subprocess.Popen[bytes]"]
"""Starts the child, given the ``preexec_fn`` to run in it."""


def _spawn_tied_to_us(
    spawn: _Spawn, death_signal: signal.Signals | None, name: str
) -> subprocess.Popen[bytes]:
    """``spawn(preexec_fn)``, with the child set to get ``death_signal`` when we die (where Linux can).

    The fork happens in a daemon thread that then waits for the child's exit (without reaping it), so the
    thread the kernel watches for ``PR_SET_PDEATHSIG`` ends with the child or with our process, never
    before."""
    prctl = _prctl()
    if death_signal is None or prctl is None:
        return spawn(None)
    result: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
    parent, signum = os.getpid(), int(death_signal)

    def tie_to_parent() -> None:  # in the child, between fork and exec: system calls only, no locks
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # we died before the prctl took effect: nobody would signal the child
            os.kill(os.getpid(), signum)

    def fork_and_keep() -> None:
        try:
            popen = spawn(tie_to_parent)
        except BaseException as exc:
            result.set_exception(exc)
            return
        try:
            pidfd: int | None = os.pidfd_open(popen.pid)
        except OSError:  # Linux before 5.3
            pidfd = None
        result.set_result(popen)
        if pidfd is None:
            with contextlib.suppress(ChildProcessError):
                os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOWAIT)
            return
        try:
            select.select([pidfd], [], [])
        finally:
            os.close(pidfd)

    threading.Thread(target=fork_and_keep, name=f"{name} parent", daemon=True).start()
    return result.result()


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux, loaded before any fork (the child only calls it); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def living_group_members(pgid: int, *, exclude: int | None = None) -> list[int]:
    """PIDs of the non-zombie processes in process group ``pgid`` (Linux /proc; [] elsewhere)."""
    members: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in {"Z", "X"}:
            members.append(int(entry.name))
    return sorted(members)


class ServerLifecycle(abc.ABC):
    """What every managed server offers: blocking ``start``/``stop`` (idempotent), their asyncio forms run
    in a worker thread, and sync and async context managers that start on entry and stop on exit."""

    @abc.abstractmethod
    def start(self, *, timeout: float = DEFAULT_START_TIMEOUT) -> None: ...

    @abc.abstractmethod
    def stop(self) -> None: ...

    async def async_start(self, *, timeout: float | None = None) -> None:
        if timeout is None:
            await asyncio.to_thread(self.start)
        else:
            await asyncio.to_thread(self.start, timeout=timeout)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await self.async_start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
