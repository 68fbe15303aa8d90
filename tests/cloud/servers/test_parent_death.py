"""A managed server dies with the process that started it, and not with the thread that started it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from coalesce_cloud.servers.process import pid_alive

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

# Starts `sleep` from a worker thread of asyncio.to_thread, which ends when asyncio.run returns, then waits
# for the test to kill it.
PARENT = """
import asyncio, sys
from pathlib import Path
from coalesce_cloud.servers.process import ManagedProcess
sleeper = ManagedProcess("sleeper", ["sleep", "300"], log_path=Path(sys.argv[1]))
asyncio.run(asyncio.to_thread(sleeper.launch))
print(sleeper.pid, flush=True)
sys.stdin.read()
"""


def exits_within(pid: int, timeout: float) -> bool:
    """True if ``pid`` (any process, not only a child) exits within ``timeout`` s; waits on its pidfd."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable) or not pid_alive(pid)
    finally:
        os.close(pidfd)


def test_a_server_outlives_the_thread_that_forked_it_but_not_its_parent_process(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "sleeper.log")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    sleeper: int | None = None
    try:
        assert parent.stdout is not None
        sleeper = int(parent.stdout.readline())
        # Forked straight from the worker thread, the sleeper would get its death signal as that thread
        # ends: a bounded wait for an exit that must not come.
        assert not exits_within(sleeper, 1.0), "the server died with the thread that started it"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert exits_within(sleeper, 10.0), f"sleep (pid {sleeper}) outlived its killed parent"
    finally:
        parent.kill()
        parent.wait(10)
        if sleeper is not None and pid_alive(sleeper):
            os.kill(sleeper, signal.SIGKILL)
